package runtime

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStatsAnyKind(t *testing.T) {
	var s Stats
	s[EventHit] = 3
	for _, k := range []EventKind{numEvents, numEvents + 1, 255} {
		if n := s.Get(k); n != 0 {
			t.Errorf("Get(%d) = %d, want 0", k, n)
		}
		if k.String() != "unknown" || k.Valid() {
			t.Errorf("kind %d: %q valid=%v", k, k.String(), k.Valid())
		}
	}
	kinds := EventKinds()
	if len(kinds) != int(numEvents) {
		t.Fatalf("EventKinds lists %d kinds, want %d", len(kinds), numEvents)
	}
	seen := map[string]bool{}
	for i, k := range kinds {
		if int(k) != i || !k.Valid() || k.String() == "unknown" || k.String() == "" || seen[k.String()] {
			t.Errorf("kind %d: %q", k, k.String())
		}
		seen[k.String()] = true
	}
	m := s.Map()
	if len(m) != int(numEvents) || m["hit"] != 3 {
		t.Errorf("Map = %v", m)
	}
	for k, n := range s { // ranging over the snapshot is safe
		_ = EventKind(k).String()
		_ = n
	}
}

// TestKeyspaceStats counts each event on the keyspace it happened in, and
// Cache.Stats is their sum.
func TestKeyspaceStats(t *testing.T) {
	rdb := redisClient(t)
	var mu sync.Mutex
	var events []Event
	c := newTestCache(t, rdb, WithObserver(func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}))
	users := userSpace(c)
	other := NewKeyspace(c.Repo("teams", 2), Spec[*user]{Template: "team:{}", Schema: "s1", TTL: time.Minute,
		Negative: time.Minute, NotFound: errNotFound, IsNil: func(u *user) bool { return u == nil }, Method: "Team"})
	again := userSpace(c) // a second NewKeyspace of one template shares its counters
	src := &fakeUsers{rows: map[int64]*user{1: {ID: 1, Name: "Ada"}}}
	ctx := context.Background()

	for range 4 { // miss, load, fill; then hits
		if _, err := getUser(ctx, users, src, 1); err != nil {
			t.Fatal(err)
		}
		c.waitFills()
	}
	if _, err := getUser(ctx, again, src, 1); err != nil {
		t.Fatal(err)
	}
	for range 2 { // not found: miss, load; then a negative hit
		if _, err := getUser(ctx, other, src, 7); err == nil {
			t.Fatal("want not found")
		}
		c.waitFills()
	}
	failing := Loader[*user]{Load: func(context.Context) (*user, error) { return nil, context.DeadlineExceeded }}
	if _, err := loadVia(ctx, other, userKey(other, 8), failing); err == nil {
		t.Fatal("want the source's error")
	}

	snap := c.Snapshot()
	if len(snap.Keyspaces) != 2 {
		t.Fatalf("%d keyspaces, want 2: %+v", len(snap.Keyspaces), snap.Keyspaces)
	}
	byName := map[string]KeyspaceStats{}
	for _, k := range snap.Keyspaces {
		byName[k.Name()] = k
	}
	u, o := byName["users:1/user:{}"], byName["teams:2/team:{}"]
	want := func(who string, s Stats, k EventKind, n uint64) {
		t.Helper()
		if s.Get(k) != n {
			t.Errorf("%s: %v = %d, want %d (%v)", who, k, s.Get(k), n, s.Map())
		}
	}
	want("users", u.Stats, EventMiss, 2) // getUser looks up twice on a miss (as generated code once did)
	want("users", u.Stats, EventLoad, 1)
	want("users", u.Stats, EventFill, 1)
	want("users", u.Stats, EventHit, 4)
	want("users", u.Stats, EventLoadError, 0)
	want("teams", o.Stats, EventMiss, 3)
	want("teams", o.Stats, EventLoad, 2)
	want("teams", o.Stats, EventNegativeHit, 1)
	want("teams", o.Stats, EventLoadError, 1) // not-found is an answer, the deadline a failure
	if o.Repo != "teams" || o.Version != 2 || o.Template != "team:{}" || o.Method != "Team" {
		t.Errorf("teams keyspace named %+v", o)
	}
	if n := u.LoadLatency.Count(); n != 1 {
		t.Errorf("users: %d load latencies, want 1", n)
	}
	if n := u.RedisLatency.Count(); n != 6 {
		t.Errorf("users: %d Redis latencies, want 6 (one per lookup)", n)
	}
	if q := u.RedisLatency.Quantile(0.5); q <= 0 {
		t.Errorf("users: median Redis latency %v", q)
	}
	if got := c.Stats(); got != snap.Totals {
		t.Errorf("Stats %v, Snapshot totals %v", got, snap.Totals)
	}
	if snap.Breaker != BreakerClosed || snap.PendingInvalidations != 0 {
		t.Errorf("breaker %v, %d pending", snap.Breaker, snap.PendingInvalidations)
	}
	mu.Lock()
	defer mu.Unlock()
	var hit *Event
	for i := range events {
		if events[i].Kind == EventHit {
			hit = &events[i]
			break
		}
	}
	if hit == nil || hit.Repo != "users" || hit.Template != "user:{}" || hit.Keyspace != "users:1/user:{}" || hit.Duration <= 0 {
		t.Errorf("hit event %+v", hit)
	}
}

// TestInvalidationCounts: an invalidation counts once it is delivered, on
// the keyspaces whose keys or groups it named; a put counts only what its
// inv names, not the bump of its own key.
func TestInvalidationCounts(t *testing.T) {
	rdb := redisClient(t)
	c := newTestCache(t, rdb)
	users := userSpace(c)
	ctx := context.Background()
	Put(ctx, users, userKey(users, 1), &user{ID: 1}, nil, Invalidation{})
	s := c.Stats()
	if s.Get(EventInvalidate) != 0 || s.Get(EventFill) != 1 {
		t.Errorf("a put without evictions: %v", s.Map())
	}
	Put(ctx, users, userKey(users, 2), &user{ID: 2}, nil, Invalidation{Tags: []string{"team:1"}})
	if n := c.Stats().Get(EventInvalidate); n != 1 {
		t.Errorf("a put with a tag to evict: %d invalidations, want 1", n)
	}
	if err := c.Invalidate(ctx, Invalidation{Keys: []Key{userKey(users, 3)}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(ctx, Invalidation{Groups: []Group{users.Group()}}); err != nil {
		t.Fatal(err)
	}
	snap := c.Snapshot()
	if n := snap.Totals.Get(EventInvalidate); n != 3 {
		t.Errorf("%d invalidations, want 3", n)
	}
	if n := snap.Keyspaces[0].Stats.Get(EventInvalidate); n != 2 {
		t.Errorf("users keyspace: %d invalidations, want 2 (its key, its group)", n)
	}
}

// TestSnapshotUndelivered: a Redis that does not answer holds the breaker
// with the invalidation pending; it is not counted as made; one warning a
// period; the breaker's transitions are INFO.
func TestSnapshotUndelivered(t *testing.T) {
	logs := &levelHandler{}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	c := New(rdb, WithNamespace(testNamespace(t)), WithLogger(slog.New(logs)), WithTimeout(50*time.Millisecond),
		WithBreaker(1000, time.Hour))
	t.Cleanup(func() { c.Close() })
	ks := userSpace(c)
	ctx := context.Background()
	src := &fakeUsers{rows: map[int64]*user{1: {ID: 1}}}
	for range 5 {
		if _, err := getUser(ctx, ks, src, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Invalidate(ctx, Invalidation{Tags: []string{"x"}}); err == nil {
		t.Fatal("an invalidation without Redis succeeded")
	}
	snap := c.Snapshot()
	if snap.Breaker != BreakerHeld || snap.PendingInvalidations != 1 {
		t.Errorf("breaker %v, %d pending; want held, 1", snap.Breaker, snap.PendingInvalidations)
	}
	if n := snap.Totals.Get(EventInvalidate); n != 0 {
		t.Errorf("an undelivered invalidation counted %d times", n)
	}
	if n := snap.Keyspaces[0].Stats.Get(EventFallback); n != 10 { // getUser looks twice
		t.Errorf("%d fallbacks, want 10", n)
	}
	if n := snap.Totals.Get(EventRedisError); n < 10 {
		t.Errorf("%d Redis errors, want ≥ 10", n)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	warns := 0
	for _, r := range logs.recs {
		switch {
		case strings.Contains(r.msg, "redis call failed"):
			warns++
			if r.level != slog.LevelWarn {
				t.Errorf("%q at %v", r.msg, r.level)
			}
		case strings.Contains(r.msg, "breaker"):
			if r.level != slog.LevelInfo {
				t.Errorf("%q at %v, want INFO", r.msg, r.level)
			}
		}
	}
	if warns != 1 {
		t.Errorf("%d Redis warnings in one period, want 1", warns)
	}
}

type logRec struct {
	level slog.Level
	msg   string
}

type levelHandler struct {
	mu   sync.Mutex
	recs []logRec
}

func (h *levelHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *levelHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, logRec{r.Level, r.Message})
	h.mu.Unlock()
	return nil
}
func (h *levelHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *levelHandler) WithGroup(string) slog.Handler      { return h }

// TestHitAllocsMetrics: the hit path allocates the same with metrics on or
// off and with the checker on (unsampled), for an L2 and an L1 hit.
func TestHitAllocsMetrics(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	allocs := func(local bool, opts ...Option) float64 {
		c := newTestCache(t, rdb, opts...)
		spec := Spec[*user]{Template: "user:{}", Schema: "s1", TTL: time.Minute, IsNil: func(u *user) bool { return u == nil }}
		if local {
			spec.Local = time.Minute
		}
		ks := NewKeyspace(c.Repo("users", 1), spec)
		src := &fakeUsers{rows: map[int64]*user{1: {ID: 1, Name: "Ada"}}}
		get := func() {
			var buf [64]byte
			rd := LookupBytes(ctx, ks, AppendInt(append(ks.AppendPrefix(buf[:0]), "user:"...), 1))
			if rd.Hit && !rd.Background {
				return
			}
			_, _ = Load(ctx, rd, Loader[*user]{Load: func(ctx context.Context) (*user, error) { return src.get(ctx, 1) }})
			c.waitFills()
		}
		for range 3 {
			get()
		}
		// An L1 that is off for a moment (a late PING on a loaded machine)
		// sends a read to Redis: the least of a few runs is the L1 hit's.
		// Background goroutines (fills, the subscription, other tests'
		// servers) allocate too: the least of a few runs is the hit's own.
		best := testing.AllocsPerRun(200, get)
		for range 4 {
			best = min(best, testing.AllocsPerRun(200, get))
		}
		for deadline := time.Now().Add(10 * time.Second); local && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			l0 := c.Stats().Get(EventLocalHit)
			n := testing.AllocsPerRun(200, get)
			if c.Stats().Get(EventLocalHit)-l0 >= 201 {
				best = min(best, n)
				break
			}
		}
		return best
	}
	for _, local := range []bool{false, true} {
		off := allocs(local, WithMetrics(false))
		on := allocs(local)
		verify := allocs(local, WithVerify(1e-9))
		if on != off || verify != off {
			t.Errorf("local=%v: %v allocations per hit with metrics, %v without, %v with the checker on", local, on, off, verify)
		}
		t.Logf("local=%v: %v allocations per hit", local, on)
	}
}

func TestHistogramQuantile(t *testing.T) {
	var h histogram
	for range 100 {
		h.observe(75 * time.Microsecond) // bucket (50µs, 100µs]
	}
	h.observe(20 * time.Second) // past every bound
	s := h.snapshot()
	if s.Count() != 101 || s.Sum != 100*75*time.Microsecond+20*time.Second {
		t.Fatalf("count %d sum %v", s.Count(), s.Sum)
	}
	if q := s.Quantile(0.5); q <= 50*time.Microsecond || q > 100*time.Microsecond {
		t.Errorf("p50 %v, want within (50µs, 100µs]", q)
	}
	if q := s.Quantile(1); q != LatencyBounds[len(LatencyBounds)-1] {
		t.Errorf("p100 %v", q)
	}
	if (Histogram{}).Quantile(0.5) != 0 || (Histogram{}).Mean() != 0 {
		t.Error("empty histogram")
	}
}
