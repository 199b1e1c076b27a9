package runtime

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// freshSource is a one-row source whose value is the number of its calls;
// fail makes it return errDown, slow delays it, panics makes it panic.
type freshSource struct {
	calls  atomic.Int64
	fail   atomic.Bool
	panics atomic.Bool
	slow   time.Duration
	hook   func(ctx context.Context, call int64) // inside the load, after the row was read
}

var errDown = errors.New("source down")

func (s *freshSource) load(ctx context.Context) (*user, error) {
	n := s.calls.Add(1)
	if s.slow > 0 {
		time.Sleep(s.slow)
	}
	if s.panics.Load() {
		panic("source exploded")
	}
	if s.fail.Load() {
		return nil, errDown
	}
	if s.hook != nil {
		s.hook(ctx, n)
	}
	return &user{ID: 1, Name: strconv.FormatInt(n, 10)}, nil
}

// freshSpace is a keyspace with refresh= and stale=, without jitter.
func freshSpace(c *Cache, ttl time.Duration, refresh float64, stale time.Duration) *Keyspace[*user] {
	return NewKeyspace(c.Repo("fresh", 1), Spec[*user]{
		Template: "user:{}", Schema: "s1", TTL: ttl, Negative: ttl, Jitter: Spread(0),
		NotFound: errNotFound, IsNil: func(u *user) bool { return u == nil },
		Refresh: refresh, Stale: stale,
	})
}

// readFresh is what generated code does for a get: a hit without Background
// is returned at once, anything else goes on to Load with the Loader.
func readFresh(ctx context.Context, ks *Keyspace[*user], src *freshSource) (u *user, hit bool, err error) {
	key := userKey(ks, 1)
	rd := Lookup(ctx, ks, key)
	if rd.Hit && !rd.Background {
		return rd.Value, true, rd.Err
	}
	u, err = Load(ctx, rd, Loader[*user]{Load: src.load, Tags: []string{"row"}})
	return u, rd.Hit, err
}

// settle waits for the Cache's background reloads and fills.
func settle(c *Cache) {
	for i := 0; i < 500; i++ {
		c.refresh.mu.Lock()
		n := c.refresh.running
		c.refresh.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	c.waitFills()
}

func version(t *testing.T, u *user, err error) int64 {
	t.Helper()
	if err != nil || u == nil {
		t.Fatalf("read %+v, %v", u, err)
	}
	n, _ := strconv.ParseInt(u.Name, 10, 64)
	return n
}

// TestRefreshAhead: a key read continuously across many TTLs is always a
// hit; the source is called about once per refresh cycle, never by a caller.
func TestRefreshAhead(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		c := newTestCache(t, rdb)
		ks := freshSpace(c, 400*time.Millisecond, 0.5, 0)
		src := &freshSource{slow: 5 * time.Millisecond}
		ctx := context.Background()
		if _, hit, err := readFresh(ctx, ks, src); hit || err != nil {
			t.Fatalf("first read: hit %v, %v", hit, err)
		}
		c.waitFills()
		reads, last := 0, int64(1)
		end := time.Now().Add(2 * time.Second)
		for time.Now().Before(end) {
			u, hit, err := readFresh(ctx, ks, src)
			if !hit {
				t.Fatalf("read %d missed (source calls %d)", reads, src.calls.Load())
			}
			if v := version(t, u, err); v < last {
				t.Fatalf("version went back: %d after %d", v, last)
			} else {
				last = v
			}
			reads++
			time.Sleep(3 * time.Millisecond)
		}
		settle(c)
		// A cycle is 0.5–0.625 of the TTL (200–250 ms, plus the reload):
		// 2 s hold 8–10 of them.
		calls := src.calls.Load() - 1
		if calls < 6 || calls > 11 {
			t.Fatalf("%d reloads in 2 s of a 400 ms TTL at refresh=50 (%d reads)", calls, reads)
		}
		if last < calls {
			t.Fatalf("the last read saw version %d of %d: reloads are not served", last, calls+1)
		}
		s := c.Stats()
		if s.Get(EventRefresh) != uint64(calls) || s.Get(EventMiss) != 1 || s.Get(EventLeaseWait) != 0 {
			t.Fatalf("refresh %d (calls %d), miss %d, lease waits %d", s.Get(EventRefresh), calls, s.Get(EventMiss), s.Get(EventLeaseWait))
		}
		t.Logf("%d reads, %d reloads", reads, calls)
	})
}

// TestRefreshSpread: entries filled at the same moment get refresh points
// spread over the first half of their refresh window, and one entry's point
// is the same in every process.
func TestRefreshSpread(t *testing.T) {
	c := New(nil, WithLogger(quietLogger()))
	ks := freshSpace(c, 10*time.Second, 0.6, 0)
	const n = 2000
	storedAt := time.Now().UnixMilli()
	e := envelope{storedAt: storedAt, expiresAt: storedAt + 10_000}
	var buckets [4]int
	for i := range n {
		r, ok := refreshPoint(&ks.core, userKey(ks, int64(i)), &e)
		if !ok {
			t.Fatal("no refresh point")
		}
		off := r - storedAt
		if off < 6000 || off >= 8000 {
			t.Fatalf("refresh point at %d ms of a 10 s TTL, want [6000, 8000)", off)
		}
		buckets[(off-6000)/500]++
		if again, _ := refreshPoint(&ks.core, userKey(ks, int64(i)), &e); again != r {
			t.Fatal("refresh point not deterministic")
		}
	}
	for i, b := range buckets {
		if b < n/4*8/10 || b > n/4*12/10 {
			t.Fatalf("bucket %d holds %d of %d points: %v", i, b, n, buckets)
		}
	}
	other := freshSpace(New(nil, WithLogger(quietLogger())), 10*time.Second, 0.6, 0)
	if a, _ := refreshPoint(&ks.core, userKey(ks, 7), &e); a != func() int64 { b, _ := refreshPoint(&other.core, userKey(other, 7), &e); return b }() {
		t.Fatal("two Caches compute different refresh points for one entry")
	}
	for _, at := range []struct {
		now  int64
		want age
	}{{storedAt, ageFresh}, {storedAt + 5999, ageFresh}, {storedAt + 8000, ageDue}, {storedAt + 10_000, ageExpired}} {
		if got := ageOf(&ks.core, userKey(ks, 1), &e, at.now); got != at.want {
			t.Fatalf("age at +%d ms: %d, want %d", at.now-storedAt, got, at.want)
		}
	}
}

// TestStaleWhileRevalidate: past its TTL, within stale=, an entry is served
// at once while one reload runs; the next reads get the reloaded value.
func TestStaleWhileRevalidate(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		c := newTestCache(t, rdb)
		ks := freshSpace(c, 200*time.Millisecond, 0, 3*time.Second)
		src := &freshSource{slow: 600 * time.Millisecond}
		ctx := context.Background()
		if _, _, err := readFresh(ctx, ks, src); err != nil {
			t.Fatal(err)
		}
		c.waitFills()
		if ttl := rdb.PTTL(ctx, string(userKey(ks, 1))).Val(); ttl < 3*time.Second || ttl > 3200*time.Millisecond {
			t.Fatalf("Redis keeps the entry %v, want ttl + stale = 3.2s", ttl)
		}
		time.Sleep(300 * time.Millisecond)
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				u, hit, err := readFresh(ctx, ks, src)
				if !hit || version(t, u, err) != 1 {
					t.Errorf("stale read: hit %v, %+v, %v", hit, u, err)
				}
				if d := time.Since(start); d > 300*time.Millisecond {
					t.Errorf("a stale read waited %v (the reload takes 600ms)", d)
				}
			}()
		}
		wg.Wait()
		settle(c)
		u, hit, err := readFresh(ctx, ks, src)
		if !hit || version(t, u, err) != 2 {
			t.Fatalf("after the reload: hit %v, %+v", hit, u)
		}
		if n := src.calls.Load(); n != 2 {
			t.Fatalf("%d source calls, want 2 (one load, one reload)", n)
		}
		if s := c.Stats(); s.Get(EventStale) != 20 || s.Get(EventRefresh) != 1 {
			t.Fatalf("stale %d, refresh %d", s.Get(EventStale), s.Get(EventRefresh))
		}
	})
}

// TestStaleIfError: with the source down after the TTL, the stale value is
// served (the failed reloads counted) until the bound, then the source's
// error reaches the caller.
func TestStaleIfError(t *testing.T) {
	c := newTestCache(t, redisClient(t))
	ks := freshSpace(c, 200*time.Millisecond, 0.5, 600*time.Millisecond)
	src := &freshSource{}
	ctx := context.Background()
	if _, _, err := readFresh(ctx, ks, src); err != nil {
		t.Fatal(err)
	}
	c.waitFills()
	src.fail.Store(true)
	stored := time.Now()
	bound := stored.Add(800 * time.Millisecond)
	sawErr := false
	for time.Since(stored) < 1200*time.Millisecond {
		began := time.Now()
		u, _, err := readFresh(ctx, ks, src)
		switch {
		case err == nil && version(t, u, err) == 1:
			if began.After(bound.Add(20 * time.Millisecond)) {
				t.Fatalf("stale value served %v after it was stored, past the bound", began.Sub(stored))
			}
		case errors.Is(err, errDown):
			sawErr = true
			if began.Before(bound.Add(-50 * time.Millisecond)) {
				t.Fatalf("the source's error at %v, before the stale bound", began.Sub(stored))
			}
		default:
			t.Fatalf("read %+v, %v", u, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	settle(c)
	if !sawErr {
		t.Fatal("the source's error never reached a caller past the stale bound")
	}
	if n := c.Stats().Get(EventRefreshError); n == 0 {
		t.Fatal("failed reloads not counted")
	}
	// The source back: the next read loads and caches again.
	src.fail.Store(false)
	if u, _, err := readFresh(ctx, ks, src); err != nil || u == nil {
		t.Fatalf("after recovery: %+v, %v", u, err)
	}
}

// TestRefreshPanicKeepsServing: a reload whose source panics does not crash
// the process (there is no caller to re-panic in): it is counted, the lease
// is freed, and the cached value is still served.
func TestRefreshPanicKeepsServing(t *testing.T) {
	rdb := redisClient(t)
	c := newTestCache(t, rdb)
	ks := freshSpace(c, 200*time.Millisecond, 0.1, time.Second)
	src := &freshSource{}
	ctx := context.Background()
	if _, _, err := readFresh(ctx, ks, src); err != nil {
		t.Fatal(err)
	}
	c.waitFills()
	src.panics.Store(true)
	time.Sleep(120 * time.Millisecond) // past the refresh point (20–110 ms), before the TTL
	u, hit, err := readFresh(ctx, ks, src)
	if !hit || version(t, u, err) != 1 {
		t.Fatalf("due read: hit %v %+v %v", hit, u, err)
	}
	settle(c)
	if n := c.Stats().Get(EventRefreshError); n != 1 {
		t.Fatalf("refresh errors %d, want 1", n)
	}
	if n := rdb.Exists(ctx, leaseKeyOf(userKey(ks, 1))).Val(); n != 0 {
		t.Fatal("the panicking reload left its lease")
	}
	if u, hit, err := readFresh(ctx, ks, src); !hit || version(t, u, err) != 1 {
		t.Fatalf("after the panic: hit %v %+v %v", hit, u, err)
	}
}

// TestRefreshOnce: 100 goroutines hitting a due entry start one reload; a
// second Cache (another process, as far as Redis knows) hitting it at the
// same time starts none, since the lease is busy.
func TestRefreshOnce(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		clock, skip := movableClock()
		c := newTestCache(t, rdb, clock)
		ns := c.cfg.namespace
		c2 := New(rdb, WithNamespace(ns), WithLogger(quietLogger()), WithTimeout(2*time.Second), clock)
		t.Cleanup(func() { c2.Close() })
		ks, ks2 := freshSpace(c, 10*time.Second, 0.2, 0), freshSpace(c2, 10*time.Second, 0.2, 0)
		src := &freshSource{slow: 150 * time.Millisecond}
		ctx := context.Background()
		if _, _, err := readFresh(ctx, ks, src); err != nil {
			t.Fatal(err)
		}
		c.waitFills()
		skip(7 * time.Second) // past the refresh point (2–6 s), before the TTL
		var wg sync.WaitGroup
		for g := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := ks
				if g%2 == 1 {
					k = ks2
				}
				if u, hit, err := readFresh(ctx, k, src); !hit || version(t, u, err) != 1 {
					t.Errorf("hit %v %+v %v", hit, u, err)
				}
			}()
		}
		wg.Wait()
		settle(c)
		settle(c2)
		if n := src.calls.Load(); n != 2 {
			t.Fatalf("%d source calls, want 2 (one load, one reload)", n)
		}
	})
}

// TestRefreshOutlivesCaller: the reload runs under its own context; the
// caller cancelling right after its hit does not cancel it.
func TestRefreshOutlivesCaller(t *testing.T) {
	clock, skip := movableClock()
	c := newTestCache(t, redisClient(t), clock)
	ks := freshSpace(c, 10*time.Second, 0.1, 0)
	src := &freshSource{slow: 100 * time.Millisecond}
	if _, _, err := readFresh(context.Background(), ks, src); err != nil {
		t.Fatal(err)
	}
	c.waitFills()
	skip(6 * time.Second) // past the refresh point (1–5.5 s), before the TTL
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxMark{}, "trace-1"))
	var sawValue atomic.Bool
	src.hook = func(ctx context.Context, _ int64) {
		sawValue.Store(ctx.Value(ctxMark{}) == "trace-1")
	}
	if u, hit, err := readFresh(ctx, ks, src); !hit || version(t, u, err) != 1 {
		t.Fatalf("hit %v %+v %v", hit, u, err)
	}
	cancel()
	settle(c)
	if !sawValue.Load() {
		t.Fatal("the reload lost the caller's context values")
	}
	if u, hit, err := readFresh(context.Background(), ks, src); !hit || version(t, u, err) != 2 {
		t.Fatalf("the cancelled caller's reload did not land: hit %v %+v %v", hit, u, err)
	}
}

type ctxMark struct{}

// movableClock is a WithClock that skip moves ahead: entries come of age
// without the test sleeping through their TTL.
func movableClock() (Option, func(time.Duration)) {
	var off atomic.Int64
	return WithClock(func() time.Time { return time.Now().Add(time.Duration(off.Load())) }),
		func(d time.Duration) { off.Add(int64(d)) }
}

// TestInvalidatedNeverStale: after a write's invalidation has returned, an
// entry in its stale window (or past its refresh point) is never served,
// whatever named it — the key, a tag, the group, the repository, the
// namespace, a put.
func TestInvalidatedNeverStale(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		for _, inv := range invalidations {
			t.Run(inv.name, func(t *testing.T) {
				c := newTestCache(t, rdb)
				ks := NewKeyspace(c.Repo("users", 1), Spec[*user]{Template: "user:{}", Schema: "s1", TTL: 150 * time.Millisecond,
					Jitter: Spread(0), Refresh: 0.3, Stale: 5 * time.Second})
				src := &versioned{}
				ctx := context.Background()
				mustVersion(t, firstRead(t, ctx, ks, src), nil, 0)
				c.waitFills()
				time.Sleep(200 * time.Millisecond) // past the TTL: in the stale window
				src.write()
				if err := inv.do(ctx, c, ks, userKey(ks, 1), src); err != nil {
					t.Fatal(err)
				}
				u, err := getRowFresh(ctx, ks, src)
				mustVersion(t, u, err, 1)
			})
		}
	})
}

func firstRead(t *testing.T, ctx context.Context, ks *Keyspace[*user], src *versioned) *user {
	u, err := getRowFresh(ctx, ks, src)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// getRowFresh is getRow with the Loader handed to Load on a Background hit.
func getRowFresh(ctx context.Context, ks *Keyspace[*user], src *versioned) (*user, error) {
	key := userKey(ks, 1)
	rd := Lookup(ctx, ks, key)
	if rd.Hit && !rd.Background {
		return rd.Value, rd.Err
	}
	return Load(ctx, rd, Loader[*user]{
		Load: src.read,
		Tags: []string{"row"},
		ResultTags: func(u *user) ([]string, bool) {
			return []string{string(AppendInt([]byte("user:"), u.ID))}, true
		},
	})
}

// TestRefreshRacesInvalidation: a write and its invalidation land while a
// reload is reading the source; the reload's fill is rejected and no read
// that begins after the invalidation returned sees the old row.
func TestRefreshRacesInvalidation(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		for _, inv := range invalidations {
			if inv.name == "put" {
				continue // a put stores the new row itself: no fill to reject
			}
			t.Run(inv.name, func(t *testing.T) {
				clock, skip := movableClock()
				c := newTestCache(t, rdb, clock)
				ks := NewKeyspace(c.Repo("users", 1), Spec[*user]{Template: "user:{}", Schema: "s1", TTL: 10 * time.Second,
					Jitter: Spread(0), Refresh: 0.1, Stale: 5 * time.Second})
				src := &versioned{}
				src.hook = func(int64) {}
				ctx := context.Background()
				mustVersion(t, firstRead(t, ctx, ks, src), nil, 0)
				c.waitFills()
				skip(6 * time.Second) // past the refresh point (1–5.5 s), before the TTL
				inReload, release := make(chan struct{}), make(chan struct{})
				var armed atomic.Bool
				armed.Store(true)
				src.hook = func(int64) { // the reload has read the row (version 0)
					if armed.CompareAndSwap(true, false) {
						close(inReload)
						<-release
					}
				}
				u, err := getRowFresh(ctx, ks, src) // due: served, reload starts
				mustVersion(t, u, err, 0)
				<-inReload
				src.write()
				if err := inv.do(ctx, c, ks, userKey(ks, 1), src); err != nil {
					t.Fatal(err)
				}
				// The write has returned; the reload still holds the old row
				// and tries to fill it 100ms later.
				go func() { time.Sleep(100 * time.Millisecond); close(release) }()
				u, err = getRowFresh(ctx, ks, src)
				mustVersion(t, u, err, 1)
				settle(c)
				for range 3 {
					u, err = getRowFresh(ctx, ks, src)
					mustVersion(t, u, err, 1)
				}
			})
		}
	})
}

// TestRefreshConcurrentWrites: readers of a refresh= stale= key in two
// Caches and a writer that invalidates after every write: no read returns
// a version older than the last write that returned before it began.
func TestRefreshConcurrentWrites(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		c := newTestCache(t, rdb)
		c2 := New(rdb, WithNamespace(c.cfg.namespace), WithLogger(quietLogger()), WithTimeout(2*time.Second))
		t.Cleanup(func() { c2.Close() })
		spec := Spec[*user]{Template: "user:{}", Schema: "s1", TTL: 60 * time.Millisecond, Jitter: Spread(0), Refresh: 0.2, Stale: time.Second}
		spaces := []*Keyspace[*user]{NewKeyspace(c.Repo("users", 1), spec), NewKeyspace(c2.Repo("users", 1), spec)}
		src := &versioned{}
		var returned atomic.Int64 // the last version whose invalidation returned
		ctx := context.Background()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var stale, reads atomic.Int64
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ks := spaces[g%2]
				for {
					select {
					case <-stop:
						return
					default:
					}
					floor := returned.Load()
					u, err := getRowFresh(ctx, ks, src)
					if err != nil {
						t.Error(err)
						return
					}
					reads.Add(1)
					if v, _ := strconv.ParseInt(u.Name, 10, 64); v < floor {
						stale.Add(1)
					}
					time.Sleep(time.Millisecond)
				}
			}()
		}
		for i := range 60 {
			time.Sleep(time.Duration(10+i%4*15) * time.Millisecond)
			v := src.write()
			if err := invalidations[i%len(invalidations)].do(ctx, c2, spaces[1], userKey(spaces[1], 1), src); err != nil {
				t.Fatal(err)
			}
			returned.Store(v)
		}
		close(stop)
		wg.Wait()
		if n := stale.Load(); n > 0 {
			t.Fatalf("%d of %d reads older than a returned write", n, reads.Load())
		}
		s := c.Stats()
		t.Logf("%d reads, %d stale hits served, %d reloads, %d misses", reads.Load(), s.Get(EventStale)+c2.Stats().Get(EventStale),
			s.Get(EventRefresh)+c2.Stats().Get(EventRefresh), s.Get(EventMiss)+c2.Stats().Get(EventMiss))
	})
}

// TestExpiredNotServed: an entry past its TTL is a miss even while Redis
// still holds it (stored by a process with a longer stale=), and the miss
// path's look does not take it either.
func TestExpiredNotServed(t *testing.T) {
	rdb := redisClient(t)
	c := newTestCache(t, rdb)
	long := freshSpace(c, 100*time.Millisecond, 0, 10*time.Second)
	src := &freshSource{}
	ctx := context.Background()
	if _, _, err := readFresh(ctx, long, src); err != nil {
		t.Fatal(err)
	}
	c.waitFills()
	time.Sleep(150 * time.Millisecond)
	c2 := New(rdb, WithNamespace(c.cfg.namespace), WithLogger(quietLogger()), WithTimeout(2*time.Second))
	t.Cleanup(func() { c2.Close() })
	strict := freshSpace(c2, 100*time.Millisecond, 0, 0)
	u, hit, err := readFresh(ctx, strict, src)
	if hit || version(t, u, err) != 2 {
		t.Fatalf("a keyspace without stale= served an expired entry: hit %v, %+v", hit, u)
	}
	// A negative entry is never served stale.
	neg := freshSpace(c, 100*time.Millisecond, 0, 10*time.Second)
	key := userKey(neg, 2)
	missing := Loader[*user]{Load: func(context.Context) (*user, error) { return nil, errNotFound }}
	if _, err := loadVia(ctx, neg, key, missing); !errors.Is(err, errNotFound) {
		t.Fatal(err)
	}
	c.waitFills()
	if rd := Lookup(ctx, neg, key); !rd.Hit {
		t.Fatal("negative entry not cached")
	}
	time.Sleep(150 * time.Millisecond)
	if rd := Lookup(ctx, neg, key); rd.Hit {
		t.Fatal("a negative entry was served past its TTL")
	}
}

// TestRefreshBatch: a batch read serves due and stale entries at once and
// reloads them together: one source call for the due ids.
func TestRefreshBatch(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		c := newTestCache(t, rdb)
		ks := NewKeyspace(c.Repo("users", 1), Spec[*user]{Template: "user:{}", Schema: "s1", TTL: 300 * time.Millisecond,
			Negative: 300 * time.Millisecond, Jitter: Spread(0), NotFound: errNotFound,
			IsNil: func(u *user) bool { return u == nil }, Refresh: 0.3, Stale: 2 * time.Second})
		src := newBatchUsers(50)
		ctx := context.Background()
		ids := make([]int64, 50)
		defer func() { src.mu.Lock(); src.delay = 0; src.mu.Unlock() }()
		for i := range ids {
			ids[i] = int64(i)
		}
		if _, err := GetMany(ctx, ks, ids, userBatch(src)); err != nil {
			t.Fatal(err)
		}
		c.waitFills()
		src.mu.Lock()
		src.delay = 600 * time.Millisecond // the reloads: a caller that waited for one would show it
		src.mu.Unlock()
		calls := len(src.batchCalls())
		for _, wait := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond} { // due, then stale
			time.Sleep(wait)
			start := time.Now()
			got, err := GetMany(ctx, ks, ids, userBatch(src))
			if err != nil || len(got) != 50 {
				t.Fatalf("%d of 50, %v", len(got), err)
			}
			if s := c.Stats(); s.Get(EventMiss) != 50 {
				t.Fatalf("misses %d: due entries were not served", s.Get(EventMiss))
			}
			if d := time.Since(start); d > 300*time.Millisecond {
				t.Errorf("the batch waited %v (a reload takes 600ms)", d)
			}
			settle(c)
			if n := len(src.batchCalls()) - calls; n != 1 {
				t.Fatalf("%d source calls for the due ids, want 1", n)
			}
			calls = len(src.batchCalls())
		}
		if n := c.Stats().Get(EventRefresh); n != 100 {
			t.Fatalf("%d ids reloaded, want 2 × 50", n)
		}
	})
}

// TestRefreshLocal: an L1 hit past the refresh point starts the reload (the
// L1 holds a hot key, so Redis alone would never see it due); the reloaded
// value reaches the L1, and the L1 never serves past the TTL.
func TestRefreshLocal(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		c := newTestCache(t, rdb)
		ks := NewKeyspace(c.Repo("fresh", 1), Spec[*user]{Template: "user:{}", Schema: "s1", TTL: 400 * time.Millisecond,
			Jitter: Spread(0), Local: 400 * time.Millisecond, Clone: cloneUser, Refresh: 0.5, Stale: time.Second})
		waitLive(t, c)
		src := &freshSource{}
		ctx := context.Background()
		if _, _, err := readFresh(ctx, ks, src); err != nil {
			t.Fatal(err)
		}
		c.waitFills()
		last := int64(1)
		end := time.Now().Add(1500 * time.Millisecond)
		for time.Now().Before(end) {
			u, hit, err := readFresh(ctx, ks, src)
			if !hit {
				t.Fatal("a read missed")
			}
			v := version(t, u, err)
			if v < last {
				t.Fatalf("version went back: %d after %d", v, last)
			}
			last = v
			time.Sleep(2 * time.Millisecond)
		}
		settle(c)
		s := c.Stats()
		if s.Get(EventLocalHit) < s.Get(EventHit) {
			t.Fatalf("local hits %d, L2 hits %d: the L1 did not serve", s.Get(EventLocalHit), s.Get(EventHit))
		}
		if n := s.Get(EventRefresh); n < 4 || n > 7 || last < 4 {
			t.Fatalf("%d reloads in 1.5 s of a 400 ms TTL (last version %d)", n, last)
		}
		if n := s.Get(EventStale); n != 0 {
			t.Fatalf("%d stale hits: the refresh should have kept it fresh", n)
		}
	})
}

// TestNotFoundMissEqualsHit: a source that returns a value beside its
// not-found error: the miss returns zero values, as the cached not-found's
// hit does (found by review h13 on multi-result reads).
func TestNotFoundMissEqualsHit(t *testing.T) {
	c := newTestCache(t, redisClient(t))
	ks := userSpace(c)
	key := userKey(ks, 404)
	l := Loader[*user]{Load: func(context.Context) (*user, error) { return &user{ID: 404}, errNotFound }}
	ctx := context.Background()
	miss, err := loadVia(ctx, ks, key, l)
	if !errors.Is(err, errNotFound) || miss != nil {
		t.Fatalf("miss: %+v, %v", miss, err)
	}
	c.waitFills()
	hit, isHit, err := lookup3(ctx, ks, key)
	if !isHit || !errors.Is(err, errNotFound) || hit != nil {
		t.Fatalf("hit %v: %+v, %v", isHit, hit, err)
	}
}
