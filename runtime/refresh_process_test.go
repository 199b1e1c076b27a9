package runtime

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
)

const (
	refreshProcs      = 4
	refreshGoroutines = 4
	refreshRun        = 4 * time.Second
	refreshTTL        = time.Second
	refreshAt         = 0.5 // a cycle is 0.5–0.75 of the TTL
)

// TestRefreshProcesses: 4 OS processes read one hot key continuously across
// four of its TTLs. The recorded history of the source — every call's time,
// kept in Redis by the source itself — shows one call per refresh cycle, no
// two calls in one cycle; no caller in any process ever misses.
func TestRefreshProcesses(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ns := testNamespace(t)
		ctx := context.Background()
		// Warm the key from this process, with the same source.
		c := New(rdb, WithNamespace(ns), WithLogger(quietLogger()), WithTimeout(2*time.Second))
		defer c.Close()
		ks := freshSpace(c, refreshTTL, refreshAt, 0)
		src := sharedSource(rdb, ns)
		rd := Lookup(ctx, ks, userKey(ks, 1))
		if _, err := Load(ctx, rd, Loader[*user]{Load: src}); err != nil {
			t.Fatal(err)
		}
		c.waitFills()
		start := time.Now().Add(500 * time.Millisecond).UnixNano()
		env := func(p int) []string {
			e := []string{"CACHEGEN_REFRESH_CHILD=" + strconv.Itoa(p), "CACHEGEN_REFRESH_NS=" + ns,
				"CACHEGEN_REFRESH_START=" + strconv.FormatInt(start, 10)}
			if cl, ok := rdb.(*redis.ClusterClient); ok {
				e = append(e, "CACHEGEN_CLUSTER_ADDRS="+strings.Join(cl.Options().Addrs, ","))
			}
			return e
		}
		outs, errs := runChildren(t, refreshProcs, env, 60*time.Second, 0, nil)
		if len(errs) > 0 {
			t.Fatalf("children failed: %v\n%s", errs, strings.Join(outs, "\n"))
		}
		var reads, misses, refreshes, fills int
		for p, out := range outs {
			line := lastLine(out, "refresh: ")
			if line == "" {
				t.Fatalf("child %d:\n%s", p, out)
			}
			var r, m, rf, f, wrong int
			if _, err := fmt.Sscanf(line, "refresh: reads=%d misses=%d refreshes=%d fills=%d wrong=%d", &r, &m, &rf, &f, &wrong); err != nil || wrong > 0 {
				t.Fatalf("child %d: %q %v", p, line, err)
			}
			reads, misses, refreshes, fills = reads+r, misses+m, refreshes+rf, fills+f
		}
		history := rdb.LRange(ctx, ns+":src:log", 0, -1).Val()
		var at []int64
		for _, h := range history {
			ms, _ := strconv.ParseInt(h, 10, 64)
			at = append(at, ms)
		}
		slices.Sort(at)
		t.Logf("%d reads in %d processes, %d misses, %d source calls (%d reloads, %d fills)", reads, refreshProcs, misses, len(at), refreshes, fills)
		if misses != 0 {
			t.Errorf("%d caller-visible misses", misses)
		}
		calls := len(at) - 1 // the warm-up's load
		if refreshes != calls || fills != calls {
			t.Errorf("%d reloads and %d fills in the children for %d source calls", refreshes, fills, calls)
		}
		// 4 s of reads hold 5–8 cycles of 0.5–0.75 s.
		if calls < 4 || calls > 9 {
			t.Errorf("%d source calls in %v of a %v TTL at refresh=50", calls, refreshRun, refreshTTL)
		}
		for i := 1; i < len(at); i++ {
			if gap := time.Duration(at[i]-at[i-1]) * time.Millisecond; gap < 400*time.Millisecond {
				t.Errorf("two source calls %v apart: one refresh cycle reloaded twice (history %v)", gap, at)
			}
		}
	})
}

// sharedSource is a source all processes share: its version is a Redis
// counter, and it records the time of every call.
func sharedSource(rdb redis.UniversalClient, ns string) func(ctx context.Context) (*user, error) {
	return func(ctx context.Context) (*user, error) {
		ctx = context.WithoutCancel(ctx)
		v, err := rdb.Incr(ctx, ns+":src:version").Result()
		if err != nil {
			return nil, err
		}
		rdb.RPush(ctx, ns+":src:log", time.Now().UnixMilli())
		time.Sleep(10 * time.Millisecond) // a query
		return &user{ID: 1, Name: strconv.FormatInt(v, 10)}, nil
	}
}

// refreshChild is one process of TestRefreshProcesses.
func refreshChild(int) {
	var rdb redis.UniversalClient
	if addrs := os.Getenv("CACHEGEN_CLUSTER_ADDRS"); addrs != "" {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ","), ContextTimeoutEnabled: true})
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(), ContextTimeoutEnabled: true})
	}
	ns := os.Getenv("CACHEGEN_REFRESH_NS")
	c := New(rdb, WithNamespace(ns), WithLogger(quietLogger()), WithTimeout(2*time.Second))
	ks := freshSpace(c, refreshTTL, refreshAt, 0)
	src := sharedSource(rdb, ns)
	startNs, _ := strconv.ParseInt(os.Getenv("CACHEGEN_REFRESH_START"), 10, 64)
	time.Sleep(time.Until(time.Unix(0, startNs)))
	end := time.Now().Add(refreshRun)
	var reads, misses, wrong atomic.Int64
	var wg sync.WaitGroup
	for range refreshGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for time.Now().Before(end) {
				rd := Lookup(ctx, ks, userKey(ks, 1))
				reads.Add(1)
				if !rd.Hit {
					misses.Add(1)
				}
				var u *user
				var err error
				if rd.Hit && !rd.Background {
					u, err = rd.Value, rd.Err
				} else {
					u, err = Load(ctx, rd, Loader[*user]{Load: src})
				}
				if err != nil || u == nil || u.ID != 1 {
					wrong.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	settle(c)
	s := c.Stats()
	fmt.Printf("refresh: reads=%d misses=%d refreshes=%d fills=%d wrong=%d\n", reads.Load(), misses.Load(), s.Get(EventRefresh), s.Get(EventFill), wrong.Load())
	c.Close()
}
