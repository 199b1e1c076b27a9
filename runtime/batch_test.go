package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// batchUsers is a source with a batch read and a single read over one table,
// recording every id each call loaded.
type batchUsers struct {
	mu     sync.Mutex
	rows   map[int64]*user
	calls  [][]int64 // ids of each batch call
	single []int64   // ids of each single call
	loads  map[int64]int
	delay  time.Duration
	during func(ids []int64) // runs inside a batch call, before it reads the rows
	fail   error
}

func newBatchUsers(n int) *batchUsers {
	s := &batchUsers{rows: map[int64]*user{}, loads: map[int64]int{}}
	for i := range int64(n) {
		s.rows[i] = &user{ID: i, Name: "u" + strconv.FormatInt(i, 10)}
	}
	return s
}

func (s *batchUsers) load(ctx context.Context, ids []int64) (map[int64]*user, error) {
	s.mu.Lock()
	s.calls = append(s.calls, slices.Clone(ids))
	for _, id := range ids {
		s.loads[id]++
	}
	during, delay, fail := s.during, s.delay, s.fail
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if during != nil {
		during(ids)
	}
	if fail != nil {
		return nil, fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64]*user, len(ids))
	for _, id := range ids {
		if u, ok := s.rows[id]; ok {
			cp := *u
			out[id] = &cp
		}
	}
	return out, nil
}

func (s *batchUsers) get(ctx context.Context, id int64) (*user, error) {
	s.mu.Lock()
	s.single = append(s.single, id)
	s.loads[id]++
	u, ok := s.rows[id]
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if !ok {
		return nil, fmt.Errorf("user %d: %w", id, errNotFound)
	}
	cp := *u
	return &cp, nil
}

func (s *batchUsers) set(id int64, name string) {
	s.mu.Lock()
	s.rows[id] = &user{ID: id, Name: name}
	s.mu.Unlock()
}

func (s *batchUsers) reset() {
	s.mu.Lock()
	s.calls, s.single, s.loads = nil, nil, map[int64]int{}
	s.mu.Unlock()
}

func (s *batchUsers) batchCalls() [][]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func userBatch(src *batchUsers) Batch[int64, *user] {
	return Batch[int64, *user]{
		Key:  func(b []byte, id int64) []byte { return AppendInt(append(b, "user:"...), id) },
		Load: src.load,
		Tags: func(id int64) []string { return []string{"user:" + strconv.FormatInt(id, 10)} },
	}
}

// getOne is the single get of the same template, over the same source.
func getOne(ctx context.Context, ks *Keyspace[*user], src *batchUsers, id int64) (*user, error) {
	return loadVia(ctx, ks, userKey(ks, id), Loader[*user]{
		Load: func(ctx context.Context) (*user, error) { return src.get(ctx, id) },
		Tags: []string{"user:" + strconv.FormatInt(id, 10)},
	})
}

func checkUsers(t *testing.T, got map[int64]*user, src *batchUsers, ids []int64) {
	t.Helper()
	want := map[int64]string{}
	src.mu.Lock()
	for _, id := range ids {
		if u, ok := src.rows[id]; ok {
			want[id] = u.Name
		}
	}
	src.mu.Unlock()
	if got == nil {
		t.Fatal("nil map")
	}
	have := map[int64]string{}
	for id, u := range got {
		if u == nil || u.ID != id {
			t.Fatalf("id %d: %+v", id, u)
		}
		have[id] = u.Name
	}
	if !maps.Equal(have, want) {
		t.Fatalf("got %v, want %v", have, want)
	}
}

func sorted(ids []int64) []int64 { s := slices.Clone(ids); slices.Sort(s); return s }

// Some ids cached, some cached as not found, some missing: one source call
// with exactly the missing ids; batch and single reads share the entries.
func TestBatchPartialHits(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := newTestCache(t, rdb)
		defer c.Close()
		ks := userSpace(c)
		src := newBatchUsers(6) // ids 0..5 exist
		for _, id := range []int64{1, 2, 9} {
			_, _ = getOne(ctx, ks, src, id) // 9: cached as not found
		}
		c.waitFills()
		src.reset()
		ids := []int64{1, 2, 9, 3, 4, 7, 4, 1, 3}
		got, err := GetMany(ctx, ks, ids, userBatch(src))
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, got, src, ids)
		calls := src.batchCalls()
		if len(calls) != 1 || !slices.Equal(sorted(calls[0]), []int64{3, 4, 7}) {
			t.Fatalf("source calls %v, want one with [3 4 7]", calls)
		}
		c.waitFills()
		src.reset()
		// The batch filled what single reads hit, negative entries included.
		if u, err := getOne(ctx, ks, src, 4); err != nil || u.Name != "u4" {
			t.Fatal(u, err)
		}
		if _, err := getOne(ctx, ks, src, 7); !errors.Is(err, errNotFound) {
			t.Fatalf("id 7: %v, want the cached not-found", err)
		}
		got, err = GetMany(ctx, ks, ids, userBatch(src))
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, got, src, ids)
		if len(src.batchCalls()) != 0 || len(src.single) != 0 {
			t.Fatalf("warm reads called the source: %v %v", src.batchCalls(), src.single)
		}
	})
}

func TestBatchEmptyInput(t *testing.T) {
	c := newTestCache(t, redisClient(t))
	defer c.Close()
	ks := userSpace(c)
	src := newBatchUsers(3)
	for _, ids := range [][]int64{nil, {}} {
		got, err := GetMany(context.Background(), ks, ids, userBatch(src))
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("%v: %v %v", ids, got, err)
		}
	}
	if len(src.batchCalls()) != 0 {
		t.Fatal("an empty batch called the source")
	}
}

// roundTrips counts the commands and pipelines a client sends.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// 100 warm ids in one round trip on a single node, at most one per master
// on Cluster.
func TestBatchRoundTrips(t *testing.T) {
	ids := make([]int64, 100)
	for i := range ids {
		ids[i] = int64(i)
	}
	run := func(t *testing.T, rdb redis.UniversalClient, hook *roundTrips, most int64) {
		ctx := context.Background()
		c := newTestCache(t, rdb)
		defer c.Close()
		ks := userSpace(c)
		src := newBatchUsers(90)
		if _, err := GetMany(ctx, ks, ids, userBatch(src)); err != nil {
			t.Fatal(err)
		}
		c.waitFills()
		if _, err := GetMany(ctx, ks, ids, userBatch(src)); err != nil { // the mirror catches up once
			t.Fatal(err)
		}
		hook.n.Store(0)
		got, err := GetMany(ctx, ks, ids, userBatch(src))
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, got, src, ids)
		if n := hook.n.Load(); n > most || n == 0 {
			t.Fatalf("%d round trips for 100 warm ids, want 1..%d", n, most)
		}
		if len(src.batchCalls()) != 1 {
			t.Fatalf("source calls %v", src.batchCalls())
		}
	}
	t.Run("single", func(t *testing.T) {
		rdb := redisClient(t)
		hook := &roundTrips{}
		rdb.AddHook(hook)
		run(t, rdb, hook, 1)
	})
	t.Run("cluster", func(t *testing.T) {
		probe := clusterClient(t)
		hook := &roundTrips{}
		opts := &redis.ClusterOptions{Addrs: []string{probe.Options().Addrs[0]}, ContextTimeoutEnabled: true,
			NewClient: func(o *redis.Options) *redis.Client { n := redis.NewClient(o); n.AddHook(hook); return n }}
		rdb := redis.NewClusterClient(opts)
		defer rdb.Close()
		run(t, rdb, hook, 3)
	})
}

// Invalidations reach batch-filled entries: a key, a tag, the repository.
func TestBatchSharesInvalidation(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := newTestCache(t, rdb)
		defer c.Close()
		ks := userSpace(c)
		src := newBatchUsers(10)
		ids := []int64{0, 1, 2, 3, 4, 5}
		if _, err := GetMany(ctx, ks, ids, userBatch(src)); err != nil {
			t.Fatal(err)
		}
		c.waitFills()
		src.set(2, "new2")
		src.set(3, "new3")
		if err := c.Invalidate(ctx, Invalidation{Keys: []Key{userKey(ks, 2)}, Tags: []string{"user:3"}}); err != nil {
			t.Fatal(err)
		}
		src.reset()
		got, err := GetMany(ctx, ks, ids, userBatch(src))
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, got, src, ids)
		if calls := src.batchCalls(); len(calls) != 1 || !slices.Equal(sorted(calls[0]), []int64{2, 3}) {
			t.Fatalf("source calls %v, want one with [2 3]", calls)
		}
		c.waitFills()
		if err := ks.core.repo.InvalidateAll(ctx); err != nil {
			t.Fatal(err)
		}
		src.reset()
		if _, err := GetMany(ctx, ks, ids, userBatch(src)); err != nil {
			t.Fatal(err)
		}
		if calls := src.batchCalls(); len(calls) != 1 || len(calls[0]) != len(ids) {
			t.Fatalf("after InvalidateAll: %v", calls)
		}
	})
}

// A write to id 7 during the batch's load keeps the old id 7 out; the other
// ids are stored.
func TestBatchStaleFillPerID(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := newTestCache(t, rdb)
		defer c.Close()
		ks := userSpace(c)
		src := newBatchUsers(10)
		writer := newTestCache(t, rdb, WithNamespace(c.cfg.namespace)) // another process's write
		defer writer.Close()
		wks := userSpace(writer)
		var once sync.Once
		src.during = func([]int64) {
			once.Do(func() {
				// The read of the rows happens after this write in this
				// source, but the old value is what a slow database read
				// that started before it would return: simulate by
				// returning the old name and updating the row after.
				if err := writer.Invalidate(ctx, Invalidation{Keys: []Key{userKey(wks, 7)}}); err != nil {
					t.Error(err)
				}
			})
		}
		ids := []int64{1, 2, 3, 4, 5, 6, 7, 8}
		got, err := GetMany(ctx, ks, ids, userBatch(src))
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, got, src, ids)
		src.set(7, "new7") // the write's commit, before its invalidation returned
		c.waitFills()
		src.during = nil
		src.reset()
		for _, id := range ids {
			u, err := getOne(ctx, ks, src, id)
			if err != nil {
				t.Fatal(err)
			}
			if want := "u" + strconv.FormatInt(id, 10); id == 7 && u.Name != "new7" || id != 7 && u.Name != want {
				t.Fatalf("id %d: %q", id, u.Name)
			}
		}
		if !slices.Equal(src.single, []int64{7}) {
			t.Fatalf("single loads %v, want only id 7 (its fill was rejected)", src.single)
		}
	})
}

// A concurrent single read and batch read of one id, in one process: one load.
func TestBatchJoinsSingle(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := newTestCache(t, rdb)
		defer c.Close()
		ks := userSpace(c)
		src := newBatchUsers(10)
		src.delay = 150 * time.Millisecond
		// Create the state first: reads without a clock share no flight once loading.
		if _, err := c.ensureState(ctx); err != nil {
			t.Fatal(err)
		}
		// The batch first, a single read of one of its ids while it loads.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := GetMany(ctx, ks, []int64{1, 2, 3}, userBatch(src))
			if err != nil || len(got) != 3 {
				t.Error(got, err)
			}
		}()
		time.Sleep(50 * time.Millisecond)
		if u, err := getOne(ctx, ks, src, 2); err != nil || u.Name != "u2" {
			t.Fatal(u, err)
		}
		wg.Wait()
		// A single read first, then a batch that includes its id.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if u, err := getOne(ctx, ks, src, 5); err != nil || u.Name != "u5" {
				t.Error(u, err)
			}
		}()
		time.Sleep(50 * time.Millisecond)
		got, err := GetMany(ctx, ks, []int64{4, 5, 6}, userBatch(src))
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, got, src, []int64{4, 5, 6})
		wg.Wait()
		src.mu.Lock()
		defer src.mu.Unlock()
		for id, n := range src.loads {
			if n != 1 {
				t.Errorf("id %d loaded %d times (batch calls %v, single %v)", id, n, src.calls, src.single)
			}
		}
	})
}

// Overlapping batches of goroutines in one process: each id loaded once,
// and no batch waits on another in a cycle.
func TestBatchOverlapping(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := newTestCache(t, rdb)
		defer c.Close()
		ks := userSpace(c)
		src := newBatchUsers(180)
		src.delay = 30 * time.Millisecond
		if _, err := c.ensureState(ctx); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids := make([]int64, 0, 40)
				for k := range 40 { // forward and backward windows overlap both ways
					id := int64((g*17 + k) % 200)
					if g%2 == 1 {
						id = int64((g*17 + 39 - k) % 200)
					}
					ids = append(ids, id)
				}
				got, err := GetMany(ctx, ks, ids, userBatch(src))
				if err != nil {
					t.Error(err)
					return
				}
				checkUsers(t, got, src, ids)
			}()
		}
		wg.Wait()
		src.mu.Lock()
		defer src.mu.Unlock()
		for id, n := range src.loads {
			if n != 1 {
				t.Errorf("id %d loaded %d times", id, n)
			}
		}
	})
}

// Redis unavailable: one source call with every id, the right map.
func TestBatchRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, MaxRetries: -1})
	defer rdb.Close()
	c := newTestCache(t, rdb, WithTimeout(50*time.Millisecond))
	defer c.Close()
	ks := userSpace(c)
	src := newBatchUsers(5)
	ids := []int64{1, 2, 3, 8, 2}
	for range 3 {
		src.reset()
		got, err := GetMany(context.Background(), ks, ids, userBatch(src))
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, got, src, ids)
		if calls := src.batchCalls(); len(calls) != 1 || !slices.Equal(calls[0], []int64{1, 2, 3, 8}) {
			t.Fatalf("source calls %v", calls)
		}
	}
}

// A failing or panicking source: the call fails, the leases are freed at
// once (the next call loads without waiting), nothing is stored.
func TestBatchSourceFailure(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := newTestCache(t, rdb, WithLease(10*time.Second, 10*time.Second))
		defer c.Close()
		ks := userSpace(c)
		src := newBatchUsers(5)
		if _, err := c.ensureState(ctx); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("db down")
		src.fail = boom
		if got, err := GetMany(ctx, ks, []int64{1, 2}, userBatch(src)); !errors.Is(err, boom) || got != nil {
			t.Fatalf("%v %v, want the source's error", got, err)
		}
		src.fail = nil
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Error("the source's panic was swallowed")
				}
			}()
			b := userBatch(src)
			b.Load = func(context.Context, []int64) (map[int64]*user, error) { panic("boom") }
			_, _ = GetMany(ctx, ks, []int64{3, 4}, b)
		}()
		for _, id := range []int64{1, 2, 3, 4} {
			if n, err := rdb.Exists(ctx, leaseKeyOf(userKey(ks, id))).Result(); err != nil || n != 0 {
				t.Fatalf("lease of id %d still held (%d, %v)", id, n, err)
			}
		}
		got, err := GetMany(ctx, ks, []int64{1, 2, 3, 4}, userBatch(src))
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, got, src, []int64{1, 2, 3, 4})
	})
}

type score struct {
	ID    int64
	Value int
}

// A value type with no not-found error: ids the source does not return are
// cached as nil entries and stay out of the map.
func TestBatchValueTypeAbsent(t *testing.T) {
	ctx := context.Background()
	c := newTestCache(t, redisClient(t))
	defer c.Close()
	ks := NewKeyspace(c.Repo("scores", 1), Spec[score]{Template: "score:{}", Schema: "v1", TTL: time.Minute, Negative: time.Minute})
	var calls atomic.Int64
	b := Batch[int64, score]{
		Key: func(b []byte, id int64) []byte { return AppendInt(append(b, "score:"...), id) },
		Load: func(_ context.Context, ids []int64) (map[int64]score, error) {
			calls.Add(1)
			m := map[int64]score{}
			for _, id := range ids {
				if id%2 == 0 {
					m[id] = score{ID: id, Value: int(id) * 10}
				}
			}
			return m, nil
		},
	}
	for round := range 2 {
		got, err := GetMany(ctx, ks, []int64{1, 2, 3, 4}, b)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[2].Value != 20 || got[4].Value != 40 {
			t.Fatalf("round %d: %v", round, got)
		}
		c.waitFills()
	}
	if calls.Load() != 1 {
		t.Fatalf("%d source calls, want 1 (absent ids cached)", calls.Load())
	}
}

// Chunks: a batch missing more ids than a chunk calls the source once per chunk.
func TestBatchChunks(t *testing.T) {
	ctx := context.Background()
	c := newTestCache(t, redisClient(t), WithBatchChunk(100), WithBatchParallel(2))
	defer c.Close()
	ks := userSpace(c)
	src := newBatchUsers(1000)
	ids := make([]int64, 1050)
	for i := range ids {
		ids[i] = int64(i)
	}
	got, err := GetMany(ctx, ks, ids, userBatch(src))
	if err != nil {
		t.Fatal(err)
	}
	checkUsers(t, got, src, ids)
	calls := src.batchCalls()
	if len(calls) != 11 {
		t.Fatalf("%d source calls, want 11", len(calls))
	}
	for _, call := range calls {
		if len(call) > 100 {
			t.Fatalf("a chunk of %d ids", len(call))
		}
	}
}

// Warm: chunks, progress, fills done on return; a second cache warming the
// same ids at once loads nothing twice.
func TestWarm(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c1 := newTestCache(t, rdb)
		defer c1.Close()
		c2 := newTestCache(t, rdb, WithNamespace(c1.cfg.namespace))
		defer c2.Close()
		src := newBatchUsers(1100)
		src.delay = 20 * time.Millisecond
		ids := make([]int64, 1200)
		for i := range ids {
			ids[i] = int64(i)
		}
		var progress [2][]int
		var wg sync.WaitGroup
		for p, c := range []*Cache{c1, c2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := Warm(ctx, userSpace(c), ids, userBatch(src), WarmChunk(500),
					WarmProgress(func(done, total int) {
						if total != 1200 {
							t.Errorf("total %d", total)
						}
						progress[p] = append(progress[p], done)
					}))
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for p := range progress {
			if !slices.Equal(progress[p], []int{500, 1000, 1200}) {
				t.Fatalf("progress %v", progress[p])
			}
		}
		src.mu.Lock()
		for id, n := range src.loads {
			if n != 1 {
				t.Errorf("id %d loaded %d times", id, n)
			}
		}
		src.mu.Unlock()
		// Warm returned after its fills: a new reader finds every id cached.
		c3 := newTestCache(t, rdb, WithNamespace(c1.cfg.namespace))
		defer c3.Close()
		src.reset()
		got, err := GetMany(ctx, userSpace(c3), ids, userBatch(src))
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, got, src, ids)
		if calls := src.batchCalls(); len(calls) != 0 {
			t.Fatalf("after warming, %d source calls", len(calls))
		}
	})
}

func TestWarmRate(t *testing.T) {
	ctx := context.Background()
	c := newTestCache(t, redisClient(t))
	defer c.Close()
	src := newBatchUsers(300)
	ids := make([]int64, 300)
	for i := range ids {
		ids[i] = int64(i)
	}
	start := time.Now()
	if err := Warm(ctx, userSpace(c), ids, userBatch(src), WarmChunk(100), WarmRate(1000)); err != nil {
		t.Fatal(err)
	}
	// 100 ids at once (the burst), then 200 more at 1000/s: at least 200 ms.
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Fatalf("warmed 300 ids in %v at 1000 ids/s", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Warm(cctx, userSpace(c), ids, userBatch(src), WarmChunk(100), WarmRate(1)); err == nil {
		t.Fatal("a cancelled warm-up returned nil")
	}
}

// An id whose key cannot be spelled (Key returns nil) is loaded with the
// others and never cached; the rest are.
func TestBatchUnkeyableIDs(t *testing.T) {
	ctx := context.Background()
	c := newTestCache(t, redisClient(t))
	defer c.Close()
	ks := userSpace(c)
	src := newBatchUsers(10)
	b := userBatch(src)
	key := b.Key
	b.Key = func(buf []byte, id int64) []byte {
		if id%2 == 1 {
			return nil
		}
		return key(buf, id)
	}
	ids := []int64{1, 2, 3, 4}
	for round := range 2 {
		src.reset()
		got, err := GetMany(ctx, ks, ids, b)
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, got, src, ids)
		want := []int64{1, 2, 3, 4}
		if round == 1 {
			want = []int64{1, 3}
		}
		if calls := src.batchCalls(); len(calls) != 1 || !slices.Equal(sorted(calls[0]), want) {
			t.Fatalf("round %d: source calls %v, want [%v]", round, calls, want)
		}
		c.waitFills()
	}
}
