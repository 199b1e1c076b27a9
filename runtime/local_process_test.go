package runtime

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachegen/cachegen/internal/history"
	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Parameters of TestLocalCoherence: processes × goroutines over localRows
// hot rows for localRun, every read through an L1.
const (
	localProcs      = 3
	localGoroutines = 4
	localRows       = 6
	localRun        = 4 * time.Second
	localBound      = 250 * time.Millisecond
)

// TestLocalCoherence: several OS processes (this test binary re-executed,
// see localChild) read hot rows through an L1 (local=1m) and write them
// (UPDATE in PostgreSQL, then invalidate by key or by tag), recording every
// operation, while the subscriptions' connections are killed now and then.
// A read served from an L1 may lag a write that returned in another process
// by the message's delivery, never by more than the bound
// (docs/runtime.md, "The bound, and gaps"): every stale read in the merged
// history is checked against it, and the lag's p99 is reported.
func TestLocalCoherence(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		addr, _ := testenv.StartRedisWith(t)
		localCoherence(t, []string{addr})
	})
	t.Run("cluster", func(t *testing.T) { localCoherence(t, testenv.SharedCluster(t)) })
}

func localCoherence(t *testing.T, addrs []string) {
	ctx := context.Background()
	dbURL := testenv.NeedPostgres(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	table := strings.ReplaceAll(testNamespace(t), "-", "_")
	if _, err := pool.Exec(ctx, "CREATE TABLE "+table+" (id bigint PRIMARY KEY, v bigint NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })
	dir := t.TempDir()
	initial, err := history.Create(filepath.Join(dir, "init.jsonl"), localProcs)
	if err != nil {
		t.Fatal(err)
	}
	for id := range int64(localRows) {
		invoke := time.Now().UnixNano()
		if _, err := pool.Exec(ctx, "INSERT INTO "+table+" VALUES ($1, 1)", id); err != nil {
			t.Fatal(err)
		}
		if err := initial.Append(history.Op{Key: "row" + strconv.FormatInt(id, 10), Kind: history.Write, Value: 1,
			Invoke: invoke, Return: time.Now().UnixNano()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := initial.Close(); err != nil {
		t.Fatal(err)
	}
	ns := testNamespace(t)
	start := time.Now().Add(1500 * time.Millisecond)
	paths := []string{filepath.Join(dir, "init.jsonl")}
	for p := range localProcs {
		paths = append(paths, filepath.Join(dir, fmt.Sprintf("p%d.jsonl", p)))
	}
	// The fault: every subscription connection killed about once a second
	// (after the first second, so the L1s are at work first).
	kills := 0
	outs, childErrs := runChildren(t, localProcs, func(p int) []string {
		return []string{
			"CACHEGEN_LOCAL_CHILD=" + strconv.Itoa(p),
			"CACHEGEN_LOCAL_DIR=" + dir,
			"CACHEGEN_LOCAL_REDIS=" + strings.Join(addrs, ","),
			"CACHEGEN_LOCAL_DB=" + dbURL,
			"CACHEGEN_LOCAL_TABLE=" + table,
			"CACHEGEN_LOCAL_NS=" + ns,
			"CACHEGEN_LOCAL_START=" + strconv.FormatInt(start.UnixNano(), 10)}
	}, time.Until(start)+localRun+30*time.Second, 900*time.Millisecond, func() {
		if time.Since(start) > time.Second {
			for _, a := range addrs {
				n, err := testenv.KillClients(a, "pubsub")
				if err != nil {
					t.Fatal(err)
				}
				kills += n
			}
		}
	})
	var localHits int64
	for p, out := range outs {
		line := lastLine(out, "local:")
		if line == "" || len(childErrs) > 0 {
			t.Fatalf("process %d (%v):\n%s", p, childErrs, out)
		}
		t.Logf("p%d %s", p, line)
		var n int64
		if _, err := fmt.Sscanf(line[strings.Index(line, "l1hits="):], "l1hits=%d", &n); err == nil {
			localHits += n
		}
	}
	if localHits == 0 {
		t.Fatal("no read was served from an L1: the test proved nothing")
	}
	ops, err := history.Load(paths...)
	if err != nil {
		t.Fatal(err)
	}
	// A write's lag: how long after it returned some other process still read
	// the older version (the latest invoke of such a read).
	lag := map[string]time.Duration{}
	for _, s := range history.CheckNoStaleRead(ops) {
		if s.Read.Process == s.Write.Process {
			t.Errorf("the writer's own process read its old value: %v", s)
			continue
		}
		id := fmt.Sprintf("%d/%d/%s/%d", s.Write.Process, s.Write.Client, s.Write.Key, s.Write.Value)
		lag[id] = max(lag[id], time.Duration(s.Read.Invoke-s.Write.Return))
	}
	var writes int
	for _, op := range ops {
		if op.Kind == history.Write && !op.Unknown() {
			writes++
		}
	}
	lags := make([]time.Duration, 0, writes)
	for _, d := range lag {
		lags = append(lags, d)
	}
	for len(lags) < writes {
		lags = append(lags, 0)
	}
	slices.Sort(lags)
	worst := lags[len(lags)-1]
	t.Logf("%d ops, %d writes, %d L1 hits, %d subscription kills; writes read stale elsewhere after returning: %d; lag p50 %v p99 %v max %v (bound %v)",
		len(ops), writes, localHits, kills, len(lag), lags[len(lags)/2], lags[len(lags)*99/100], worst, localBound)
	if worst > localBound {
		t.Errorf("a process served an old value %v after the write returned: past the bound %v", worst, localBound)
	}
}

// localChild is one process of TestLocalCoherence.
func localChild(p int) {
	fail := func(err error) {
		fmt.Println("local child:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	dir, table := os.Getenv("CACHEGEN_LOCAL_DIR"), os.Getenv("CACHEGEN_LOCAL_TABLE")
	startNs, _ := strconv.ParseInt(os.Getenv("CACHEGEN_LOCAL_START"), 10, 64)
	pool, err := pgxpool.New(ctx, os.Getenv("CACHEGEN_LOCAL_DB"))
	if err != nil {
		fail(err)
	}
	defer pool.Close()
	addrs := strings.Split(os.Getenv("CACHEGEN_LOCAL_REDIS"), ",")
	var rdb redis.UniversalClient
	if len(addrs) > 1 {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: addrs[0], ContextTimeoutEnabled: true})
	}
	defer rdb.Close()
	c := New(rdb, WithNamespace(os.Getenv("CACHEGEN_LOCAL_NS")), WithLogger(quietLogger()),
		WithTimeout(500*time.Millisecond), WithLocalBound(localBound))
	defer c.Close()
	ks := localUserSpace(c, time.Minute)
	rec, err := history.Create(filepath.Join(dir, fmt.Sprintf("p%d.jsonl", p)), p)
	if err != nil {
		fail(err)
	}
	get := func(id int64) (int64, error) {
		rd := Lookup(ctx, ks, userKey(ks, id))
		u, err := rd.Value, rd.Err
		if !rd.Hit {
			u, err = Load(ctx, rd, Loader[*user]{
				Load: func(ctx context.Context) (*user, error) {
					u := &user{ID: id}
					err := pool.QueryRow(ctx, "SELECT v FROM "+table+" WHERE id = $1", id).Scan(&u.Name)
					return u, err
				},
				Tags: []string{"row:" + strconv.FormatInt(id, 10)},
			})
		}
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(u.Name, 10, 64)
	}
	time.Sleep(time.Until(time.Unix(0, startNs)))
	until := time.Now().Add(localRun)
	var mu sync.Mutex
	reads, writes, readErrs := 0, 0, 0
	var wg sync.WaitGroup
	for g := range localGoroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(p)+100, uint64(g)))
			for i := 0; time.Now().Before(until); i++ {
				id := r.Int64N(localRows)
				key := "row" + strconv.FormatInt(id, 10)
				if r.IntN(20) > 0 { // read
					call := rec.Invoke(g, key, history.Read, 0)
					v, err := get(id)
					call.Return(v, err)
					mu.Lock()
					reads++
					if err != nil {
						readErrs++
					}
					mu.Unlock()
				} else { // write: UPDATE, then the invalidation
					invoke := time.Now().UnixNano()
					var v int64
					if err := pool.QueryRow(ctx, "UPDATE "+table+" SET v = v + 1 WHERE id = $1 RETURNING v", id).Scan(&v); err != nil {
						fail(err)
					}
					inv := Invalidation{Keys: []Key{userKey(ks, id)}}
					if i%2 == 1 {
						inv = Invalidation{Tags: []string{"row:" + strconv.FormatInt(id, 10)}}
					}
					err := c.Invalidate(ctx, inv)
					op := history.Op{Client: g, Key: key, Kind: history.Write, Value: v, Invoke: invoke, Return: time.Now().UnixNano()}
					if err != nil {
						op.Err = err.Error()
					}
					if err := rec.Append(op); err != nil {
						fail(err)
					}
					mu.Lock()
					writes++
					mu.Unlock()
				}
				time.Sleep(time.Duration(r.IntN(500)) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if err := rec.Close(); err != nil {
		fail(err)
	}
	st := c.Stats()
	fmt.Printf("local: reads=%d writes=%d readErrs=%d l1hits=%d l2hits=%d gaps=%d\n",
		reads, writes, readErrs, st.Get(EventLocalHit), st.Get(EventHit), st.Get(EventLocalGap))
	if readErrs > 0 {
		os.Exit(1)
	}
}
