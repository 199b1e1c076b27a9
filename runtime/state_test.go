package runtime

// Tests of the invalidation state (issue 8): losing any part of it is a
// miss, never a stale hit; loads stay live under churn; the safety valve,
// negative lifetimes and schema separation are asserted directly.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// table is a source of many rows, each with a version bumped by every write.
type table struct {
	mu    sync.Mutex
	v     map[int64]int64
	calls atomic.Int64
	delay time.Duration
}

func newTable(n int) *table {
	t := &table{v: map[int64]int64{}}
	for i := range n {
		t.v[int64(i)] = 1
	}
	return t
}

func (t *table) read(ctx context.Context, id int64) (*user, error) {
	t.calls.Add(1)
	if t.delay > 0 {
		if !sleep(ctx, t.delay) {
			return nil, ctx.Err()
		}
	}
	t.mu.Lock()
	v, ok := t.v[id]
	t.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("user %d: %w", id, errNotFound)
	}
	return &user{ID: id, Name: strconv.FormatInt(v, 10)}, nil
}

func (t *table) write(id int64) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.v[id]++
	return t.v[id]
}

func (t *table) version(id int64) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.v[id]
}

// readRow is a generated get: key user:{id}, tag "row:{id}" from the
// parameter and "u:{result.ID}" from the result.
func readRow(ctx context.Context, ks *Keyspace[*user], src *table, id int64) (*user, error) {
	rd := Lookup(ctx, ks, userKey(ks, id))
	if rd.Hit {
		return rd.Value, rd.Err
	}
	return Load(ctx, rd, Loader[*user]{
		Load: func(ctx context.Context) (*user, error) { return src.read(ctx, id) },
		Tags: []string{"row:" + strconv.FormatInt(id, 10)},
		ResultTags: func(u *user) ([]string, bool) {
			return []string{"u:" + strconv.FormatInt(u.ID, 10)}, true
		},
	})
}

// invalidateRow is the write's invalidation, by one of the entry's markers.
func invalidateRow(ctx context.Context, c *Cache, ks *Keyspace[*user], id int64, how int) error {
	s := strconv.FormatInt(id, 10)
	switch how % 3 {
	case 0:
		return c.Invalidate(ctx, Invalidation{Keys: []Key{userKey(ks, id)}})
	case 1:
		return c.Invalidate(ctx, Invalidation{Tags: []string{"row:" + s}})
	default:
		return c.Invalidate(ctx, Invalidation{Tags: []string{"u:" + s}})
	}
}

// namespaceKeys lists every key of the Cache's namespace, on every master.
func namespaceKeys(t testing.TB, rdb redis.UniversalClient, c *Cache) []string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, n redis.UniversalClient) error {
		it := n.Scan(ctx, 0, EscapeGlob(c.ns)+"*", 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys = append(keys, it.Val())
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	if cl, ok := rdb.(*redis.ClusterClient); ok {
		err = cl.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
	} else {
		err = scan(ctx, rdb)
	}
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	return keys
}

// TestLossMeansMiss is the property behind the design: after writes and
// their invalidations have returned, delete any subset of the namespace's
// keys — entries, the clock, the marker set — and every read, by the
// writer's Cache or by a fresh one (another process's view), returns the
// current row.
func TestLossMeansMiss(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		const rows = 200
		src := newTable(rows)
		ns := testNamespace(t)
		writer := newTestCache(t, rdb, WithNamespace(ns))
		wks := userSpace(writer)
		r := rand.New(rand.NewPCG(8, 8))
		stale := 0
		for round := range 12 {
			for id := range int64(rows) { // fill everything
				if _, err := readRow(ctx, wks, src, id); err != nil {
					t.Fatal(err)
				}
			}
			for id := range int64(rows) { // every row written, its invalidation returned
				src.write(id)
				if err := invalidateRow(ctx, writer, wks, id, int(id)+round); err != nil {
					t.Fatal(err)
				}
			}
			keys := namespaceKeys(t, rdb, writer)
			// Lose a random subset; every third round always includes the state.
			var lost []string
			for _, k := range keys {
				state := k == writer.state.clock || k == writer.state.marks
				if r.IntN(3) == 0 || (state && round%3 == 0) {
					lost = append(lost, k)
				}
			}
			for _, k := range lost {
				if err := rdb.Del(ctx, k).Err(); err != nil {
					t.Fatal(err)
				}
			}
			fresh := newTestCache(t, rdb, WithNamespace(ns))
			fks := userSpace(fresh)
			for id := range int64(rows) {
				want := strconv.FormatInt(src.version(id), 10)
				for _, ks := range []*Keyspace[*user]{wks, fks} {
					u, err := readRow(ctx, ks, src, id)
					if err != nil {
						t.Fatal(err)
					}
					if u.Name != want {
						stale++
					}
				}
			}
			t.Logf("round %d: %d keys, %d lost", round, len(keys), len(lost))
		}
		if stale != 0 {
			t.Fatalf("%d stale reads after losing state", stale)
		}
		// Caching is not silently off afterwards.
		before := writer.Stats().Get(EventHit)
		for id := range int64(rows) {
			if _, err := readRow(ctx, wks, src, id); err != nil {
				t.Fatal(err)
			}
		}
		if hits := writer.Stats().Get(EventHit) - before; hits < rows {
			t.Fatalf("%d hits of %d reads after the losses: caching is off", hits, rows)
		}
	})
}

// TestMirrorFromAnotherCache: the hit rule holds for a Cache that did not
// make the invalidation — catching up (a Cache that had seen the entry) and
// resolving (a fresh one) — deterministically, on both topologies.
func TestMirrorFromAnotherCache(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		ns := testNamespace(t)
		src := newTable(3)
		a := newTestCache(t, rdb, WithNamespace(ns))
		b := newTestCache(t, rdb, WithNamespace(ns))
		aks, bks := userSpace(a), userSpace(b)
		for _, how := range []int{0, 1, 2} {
			id := int64(how)
			if _, err := readRow(ctx, aks, src, id); err != nil { // a fills
				t.Fatal(err)
			}
			a.waitFills()
			if _, hit, _ := lookup3(ctx, aks, userKey(aks, id)); !hit {
				t.Fatal("no hit after the fill")
			}
			src.write(id)
			if err := invalidateRow(ctx, b, bks, id, how); err != nil { // b invalidates
				t.Fatal(err)
			}
			if u, hit, _ := lookup3(ctx, aks, userKey(aks, id)); hit {
				t.Fatalf("how=%d: a served %v after b's invalidation returned", how, u)
			}
			c := newTestCache(t, rdb, WithNamespace(ns))
			if u, hit, _ := lookup3(ctx, userSpace(c), userKey(aks, id)); hit {
				t.Fatalf("how=%d: a fresh Cache served %v", how, u)
			}
		}
		// And the old entry of a key whose row did not change still hits for
		// a fresh Cache (resolving finds no bump).
		if _, err := readRow(ctx, aks, src, 9); err == nil {
			t.Fatal("row 9 does not exist")
		}
		a.waitFills()
		c := newTestCache(t, rdb, WithNamespace(ns))
		if _, hit, err := lookup3(ctx, userSpace(c), userKey(aks, 9)); !hit || err == nil {
			t.Fatalf("fresh Cache: negative entry not served (hit=%v, %v)", hit, err)
		}
	})
}

// TestChurnLiveness: a hot key invalidated more often than its load takes
// (source 60ms, invalidated every 20ms), read by 4 instances × 4 readers:
// every read returns, p99 within a few source latencies, because a waiter
// takes a rejected fill's hand-off, or loads at once when the holder's load
// cannot answer it.
func TestChurnLiveness(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		ns := testNamespace(t)
		src := newTable(1)
		src.delay = 60 * time.Millisecond
		var caches []*Keyspace[*user]
		for range 4 {
			caches = append(caches, userSpace(newTestCache(t, rdb, WithNamespace(ns))))
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // the churn
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				src.write(0)
				_ = invalidateRow(ctx, caches[0].core.c, caches[0], 0, 1)
			}
		}()
		var mu sync.Mutex
		var lat []time.Duration
		deadline := time.Now().Add(3 * time.Second)
		for _, ks := range caches {
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(deadline) {
						start := time.Now()
						if _, err := readRow(ctx, ks, src, 0); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						lat = append(lat, time.Since(start))
						mu.Unlock()
					}
				}()
			}
		}
		time.Sleep(time.Until(deadline))
		close(stop)
		wg.Wait()
		slices.Sort(lat)
		p99, worst := lat[len(lat)*99/100], lat[len(lat)-1]
		t.Logf("%d reads, p50 %v, p99 %v, max %v, source calls %d", len(lat), lat[len(lat)/2], p99, worst, src.calls.Load())
		// About 2× the source on an idle machine (docs/BENCHMARKS.md); the
		// bound leaves room for -race on two busy cores. Before the hand-off
		// and the busy-lease check, p99 was 0.6–1.8 s with a 30ms source.
		if p99 > 4*src.delay {
			t.Fatalf("p99 %v under churn; source latency %v", p99, src.delay)
		}
	})
}

// TestLeaseWaitSafetyValve: a waiter behind a live lease held past the wait
// bound calls the source itself, counts EventLeaseTimeout, and stores
// nothing (the lease is not its own).
func TestLeaseWaitSafetyValve(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := newTestCache(t, rdb, WithLease(10*time.Second, 300*time.Millisecond))
		ks := userSpace(c)
		src := newTable(1)
		key := userKey(ks, 0)
		if err := rdb.Set(ctx, leaseKeyOf(key), "someone-else", 10*time.Second).Err(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		u, err := readRow(ctx, ks, src, 0)
		took := time.Since(start)
		if err != nil || u.Name != "1" {
			t.Fatalf("read = %v, %v", u, err)
		}
		s := c.Stats()
		if took < 300*time.Millisecond || took > 2*time.Second {
			t.Errorf("waited %v, want the 300ms lease wait", took)
		}
		if s.Get(EventLeaseWait) != 1 || s.Get(EventLeaseTimeout) != 1 || s.Get(EventFill) != 0 || src.calls.Load() != 1 {
			t.Errorf("stats %v, source calls %d: want one wait, one timeout, one source call, no fill", s, src.calls.Load())
		}
		if n := rdb.Exists(ctx, string(key)).Val(); n != 0 {
			t.Errorf("the valve stored an entry")
		}
	})
}

// TestNegativeLifetimes: a not-found entry and a nil entry live the negative
// TTL, a value the positive one; negative=0 stores nothing for either.
func TestNegativeLifetimes(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := newTestCache(t, rdb)
		repo := c.Repo("neg", 1)
		for _, tc := range []struct {
			name     string
			negative time.Duration
		}{{"negative=10s", 10 * time.Second}, {"negative=0", 0}} {
			ks := NewKeyspace(repo, Spec[*user]{Template: tc.name + ":{}", Schema: "s", TTL: time.Hour,
				Negative: tc.negative, NotFound: errNotFound, IsNil: func(u *user) bool { return u == nil }})
			key := func(i int64) Key { return ks.Key(AppendInt(ks.AppendPrefix(nil), i)) }
			results := []func(context.Context) (*user, error){
				func(context.Context) (*user, error) { return &user{ID: 1}, nil },
				func(context.Context) (*user, error) { return nil, fmt.Errorf("gone: %w", errNotFound) },
				func(context.Context) (*user, error) { return nil, nil },
			}
			for i, load := range results {
				if _, err := loadVia(ctx, ks, key(int64(i)), Loader[*user]{Load: load}); err != nil && i != 1 {
					t.Fatal(err)
				}
				c.waitFills()
				ttl := rdb.PTTL(ctx, string(key(int64(i)))).Val()
				switch {
				case i == 0 && (ttl < 50*time.Minute || ttl > time.Hour):
					t.Errorf("%s: value lives %v, want the positive TTL", tc.name, ttl)
				case i > 0 && tc.negative > 0 && (ttl <= 0 || ttl > tc.negative):
					t.Errorf("%s: negative entry %d lives %v, want ≤ %v", tc.name, i, ttl, tc.negative)
				case i > 0 && tc.negative == 0 && ttl != -2*time.Nanosecond && ttl >= 0:
					t.Errorf("%s: negative entry %d stored (ttl %v)", tc.name, i, ttl)
				}
			}
		}
	})
}

// TestSchemaSeparatesKeyspaces: keyspaces of one template with different
// result types (schema hashes) never share entries.
func TestSchemaSeparatesKeyspaces(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	c := newTestCache(t, rdb)
	repo := c.Repo("schema", 1)
	a := NewKeyspace(repo, Spec[*user]{Template: "x:{}", Schema: "a", TTL: time.Minute})
	b := NewKeyspace(repo, Spec[*user]{Template: "x:{}", Schema: "b", TTL: time.Minute})
	ka := a.Key(AppendInt(append(a.AppendPrefix(nil), "x:"...), 1))
	kb := b.Key(AppendInt(append(b.AppendPrefix(nil), "x:"...), 1))
	if ka == kb {
		t.Fatalf("two schemas, one key %q", ka)
	}
	if _, err := loadVia(ctx, a, ka, Loader[*user]{Load: func(context.Context) (*user, error) { return &user{ID: 1}, nil }}); err != nil {
		t.Fatal(err)
	}
	if _, hit, _ := lookup3(ctx, b, kb); hit {
		t.Fatal("a keyspace of another schema hit the entry")
	}
}

// TestOversizedHeaders: the bounded decoder refuses headers that promise
// more than the bytes hold, without allocating for them.
func TestOversizedHeaders(t *testing.T) {
	for _, b := range [][]byte{{0xdd, 0xff, 0xff, 0xff, 0xff}, {0xdf, 0xff, 0xff, 0xff, 0xff}, {0xdb, 0xff, 0xff, 0xff, 0xff}, {0xc6, 0xff, 0xff, 0xff, 0xff}} {
		if validMsgpack(b) {
			t.Errorf("validMsgpack accepts % x", b)
		}
	}
	env := appendEnvelope(nil, 0, 0, 0, 1<<40, 1, nil, []byte{0xc0})
	env[envFixed-1] = 200 // 200 tags promised, none there
	if _, ok := decodeEnvelope(env); ok {
		t.Error("an envelope promising 200 tags in 5 bytes decodes")
	}
}
