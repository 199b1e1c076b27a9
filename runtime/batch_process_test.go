package runtime

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
)

const (
	batchProcs      = 4
	batchGoroutines = 100
	batchIDs        = 400 // ids 0..359 exist, 360..399 do not
)

// TestBatchProcesses: 4 OS processes × 100 goroutines call overlapping
// batches on cold ids at the same moment; every id is loaded exactly once
// in all, every caller gets the right map.
func TestBatchProcesses(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ns := testNamespace(t)
		start := time.Now().Add(time.Second).UnixNano()
		env := func(p int) []string {
			e := []string{"CACHEGEN_BATCH_CHILD=" + strconv.Itoa(p), "CACHEGEN_BATCH_NS=" + ns,
				"CACHEGEN_BATCH_START=" + strconv.FormatInt(start, 10)}
			if cl, ok := rdb.(*redis.ClusterClient); ok {
				e = append(e, "CACHEGEN_CLUSTER_ADDRS="+strings.Join(cl.Options().Addrs, ","))
			}
			return e
		}
		outs, errs := runChildren(t, batchProcs, env, 60*time.Second, 0, nil)
		if len(errs) > 0 {
			t.Fatalf("children failed: %v\n%s", errs, strings.Join(outs, "\n"))
		}
		loads := map[int64]int{}
		calls := 0
		for p, out := range outs {
			line := lastLine(out, "batch: ")
			if line == "" || !strings.Contains(line, " wrong=0 ") {
				t.Fatalf("child %d:\n%s", p, out)
			}
			f := strings.Fields(line)
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "calls":
					n, _ := strconv.Atoi(v)
					calls += n
				case "loaded":
					for _, s := range strings.Split(v, ",") {
						if s != "" {
							id, _ := strconv.ParseInt(s, 10, 64)
							loads[id]++
						}
					}
				}
			}
		}
		for id := range int64(batchIDs) {
			if loads[id] != 1 && !t.Failed() {
				for _, out := range outs {
					t.Log(lastLine(out, "stats: "))
					t.Log(lastLine(out, "redis error: "))
				}
			}
			if loads[id] != 1 {
				t.Errorf("id %d loaded %d times", id, loads[id])
			}
		}
		t.Logf("%d ids loaded once each in %d source calls across %d processes × %d goroutines", len(loads), calls, batchProcs, batchGoroutines)
	})
}

// batchChild is one process of TestBatchProcesses.
func batchChild(p int) {
	var rdb redis.UniversalClient
	if addrs := os.Getenv("CACHEGEN_CLUSTER_ADDRS"); addrs != "" {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ","), ContextTimeoutEnabled: true, PoolSize: 4 * batchGoroutines})
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(), ContextTimeoutEnabled: true, PoolSize: 4 * batchGoroutines})
	}
	// A generous budget, lease wait and pool: the subject is the lease
	// protocol, not fail-open on an overloaded machine (under -race, 400
	// goroutines with 3-master pipelines wait for pooled connections past
	// any budget with go-redis's default pool of 10 per CPU: their calls
	// then fail, and fail-open loads from the source, as it should).
	c := New(rdb, WithNamespace(os.Getenv("CACHEGEN_BATCH_NS")), WithLogger(quietLogger()),
		WithTimeout(10*time.Second), WithLease(20*time.Second, 20*time.Second),
		WithObserver(func(e Event) {
			if e.Kind == EventRedisError && os.Getenv("CACHEGEN_BATCH_DEBUG") != "" {
				fmt.Println("redis error:", e.Err)
			}
		}))
	ks := userSpace(c)
	src := newBatchUsers(batchIDs - 40)
	src.delay = 50 * time.Millisecond
	startNs, _ := strconv.ParseInt(os.Getenv("CACHEGEN_BATCH_START"), 10, 64)
	time.Sleep(time.Until(time.Unix(0, startNs)))
	var wrong, failed sync.Map
	var wg sync.WaitGroup
	for g := range batchGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Windows of 60 ids at offsets that differ per process and
			// goroutine, some reversed: every id is wanted by many callers.
			off := (g*37 + p*101) % batchIDs
			ids := make([]int64, 60)
			for k := range ids {
				ids[k] = int64((off + k) % batchIDs)
			}
			if g%2 == 1 {
				for i, j := 0, len(ids)-1; i < j; i, j = i+1, j-1 {
					ids[i], ids[j] = ids[j], ids[i]
				}
			}
			got, err := GetMany(context.Background(), ks, ids, userBatch(src))
			if err != nil {
				failed.Store(g, err)
				return
			}
			for _, id := range ids {
				u, ok := got[id]
				if ok != (id < batchIDs-40) || ok && (u.ID != id || u.Name != "u"+strconv.FormatInt(id, 10)) {
					wrong.Store(g, id)
				}
			}
		}()
	}
	wg.Wait()
	c.waitFills()
	nWrong, nFailed := 0, 0
	wrong.Range(func(any, any) bool { nWrong++; return true })
	failed.Range(func(_, v any) bool { nFailed++; fmt.Println("error:", v); return true })
	src.mu.Lock()
	var loaded []string
	for id, n := range src.loads {
		for range n {
			loaded = append(loaded, strconv.FormatInt(id, 10))
		}
	}
	calls := len(src.calls) + len(src.single)
	src.mu.Unlock()
	fmt.Printf("stats: %v\n", c.Stats())
	fmt.Printf("batch: calls=%d wrong=%d failed=%d loaded=%s\n", calls, nWrong, nFailed, strings.Join(loaded, ","))
	c.Close()
}
