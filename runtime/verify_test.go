package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rows is a source whose rows can change behind the cache's back.
type rows struct {
	mu    sync.Mutex
	m     map[int64]*user
	calls atomic.Int64
}

func (r *rows) get(_ context.Context, id int64) (*user, error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if u, ok := r.m[id]; ok {
		cp := *u
		return &cp, nil
	}
	return nil, fmt.Errorf("user %d: %w", id, errNotFound)
}

func (r *rows) set(id int64, name string) {
	r.mu.Lock()
	r.m[id] = &user{ID: id, Name: name}
	r.mu.Unlock()
}

// readV is what generated code does for a get (gen/methods.go).
func readV(ctx context.Context, ks *Keyspace[*user], src *rows, id int64) (*user, error) {
	var buf [64]byte
	rd := LookupBytes(ctx, ks, AppendInt(append(ks.AppendPrefix(buf[:0]), "user:"...), id))
	if rd.Hit && !rd.Background {
		return rd.Value, rd.Err
	}
	return Load(ctx, rd, Loader[*user]{
		Load: func(ctx context.Context) (*user, error) { return src.get(ctx, id) },
		Tags: []string{string(AppendInt([]byte("user:"), id))},
	})
}

// writeV is an evict directive: the source, then the invalidation.
func writeV(ctx context.Context, ks *Keyspace[*user], src *rows, id int64, name string) {
	src.set(id, name)
	_ = ks.core.c.Invalidate(ctx, Invalidation{Keys: []Key{userKey(ks, id)}})
}

func withVerifyDelay(d time.Duration) Option { return func(c *config) { c.verifyDelay = d } }

func verifySpace(c *Cache, local bool) *Keyspace[*user] {
	spec := Spec[*user]{Template: "user:{}", Schema: "s1", TTL: time.Minute, Negative: time.Minute,
		NotFound: errNotFound, IsNil: func(u *user) bool { return u == nil }, Method: "Get",
		Clone: func(u *user) *user {
			if u == nil {
				return nil
			}
			cp := *u
			return &cp
		}}
	if local {
		spec.Local = time.Minute
	}
	return NewKeyspace(c.Repo("users", 1), spec)
}

// TestVerifyFindsChangeBehindCache: a row changed in the source without an
// invalidation is reported (counted on its keyspace, logged with its key),
// from an L2 hit and from an L1 hit; the caller gets the cached value at
// once.
func TestVerifyFindsChangeBehindCache(t *testing.T) {
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprintf("local=%v", local), func(t *testing.T) {
			rdb := redisClient(t)
			logs := &keyLog{}
			c := newTestCache(t, rdb, WithVerify(1), WithVerifyRate(1000), withVerifyDelay(50*time.Millisecond), WithLogPeriod(time.Nanosecond),
				WithLogger(slog.New(logs)))
			ks := verifySpace(c, local)
			src := &rows{m: map[int64]*user{}}
			src.set(1, "Ada")
			src.set(2, "Grace")
			ctx := context.Background()
			for id := int64(1); id <= 2; id++ {
				if _, err := readV(ctx, ks, src, id); err != nil {
					t.Fatal(err)
				}
			}
			c.waitFills()
			src.set(1, "Ada Lovelace") // behind the cache's back: no invalidation
			deadline := time.Now().Add(15 * time.Second)
			for c.Stats().Get(EventInconsistent) == 0 && time.Now().Before(deadline) {
				for id := int64(1); id <= 2; id++ {
					u, err := readV(ctx, ks, src, id)
					if err != nil {
						t.Fatal(err)
					}
					if id == 1 && u.Name != "Ada" {
						t.Fatalf("served %q: the checker must not change what the cache serves", u.Name)
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			s := c.Snapshot()
			if n := s.Totals.Get(EventInconsistent); n == 0 {
				t.Fatalf("no inconsistency found in 15s: %v", s.Totals.Map())
			}
			if s.Totals.Get(EventVerified) == 0 || s.Keyspaces[0].Stats.Get(EventInconsistent) == 0 {
				t.Errorf("not counted on the keyspace: %+v", s.Keyspaces[0].Stats.Map())
			}
			if local && s.Totals.Get(EventLocalHit) == 0 {
				t.Errorf("no L1 hit was verified: %v", s.Totals.Map())
			}
			if k := logs.key(); !strings.Contains(k, "user:1}") {
				t.Errorf("logged key %q, want user 1's", k)
			}
			// User 2 did not change: its verifications all matched.
			time.Sleep(100 * time.Millisecond)
			if k := logs.allKeys(); strings.Contains(k, "user:2}") {
				t.Errorf("user 2 reported inconsistent: %s", k)
			}
		})
	}
}

// TestVerifyWriteHeavy: readers and writers through the decorator, writes
// racing the checks all the time: the checker reports nothing.
func TestVerifyWriteHeavy(t *testing.T) {
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprintf("local=%v", local), func(t *testing.T) {
			rdb := redisClient(t)
			c := newTestCache(t, rdb, WithVerify(1), WithVerifyRate(2000), withVerifyDelay(100*time.Millisecond))
			ks := verifySpace(c, local)
			src := &rows{m: map[int64]*user{}}
			const keys = 8
			for id := int64(1); id <= keys; id++ {
				src.set(id, "v0")
			}
			ctx := context.Background()
			var wg sync.WaitGroup
			var version atomic.Int64
			stop := time.Now().Add(2 * time.Second)
			for g := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(g), 7))
					for time.Now().Before(stop) {
						id := r.Int64N(keys) + 1
						if g < 2 { // writers: about a quarter of the operations
							writeV(ctx, ks, src, id, fmt.Sprintf("v%d", version.Add(1)))
							time.Sleep(time.Millisecond)
							continue
						}
						if _, err := readV(ctx, ks, src, id); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			time.Sleep(500 * time.Millisecond) // the last re-checks
			s := c.Stats()
			if n := s.Get(EventInconsistent); n != 0 {
				t.Errorf("%d inconsistent reads reported under a write-heavy workload: %v", n, s.Map())
			}
			if s.Get(EventVerified) < 50 {
				t.Errorf("only %d reads verified: %v", s.Get(EventVerified), s.Map())
			}
			t.Logf("verified %d of %d hits (%d writes), %d dropped", s.Get(EventVerified), s.Hits(), version.Load(), c.Snapshot().VerifyDropped)
		})
	}
}

// TestVerifyRateLimited: without WithVerify no hit is sampled; with a tiny rate
// a burst of hits samples at most about the rate.
func TestVerifyRateLimited(t *testing.T) {
	rdb := redisClient(t)
	c := newTestCache(t, rdb, WithVerify(1), WithVerifyRate(5))
	ks := verifySpace(c, false)
	src := &rows{m: map[int64]*user{1: {ID: 1, Name: "Ada"}}}
	ctx := context.Background()
	if _, err := readV(ctx, ks, src, 1); err != nil {
		t.Fatal(err)
	}
	c.waitFills()
	calls := src.calls.Load()
	start := time.Now()
	for range 500 {
		if _, err := readV(ctx, ks, src, 1); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	limit := 2 + int64(time.Since(start).Seconds()*5)
	if n := src.calls.Load() - calls; n > limit || n == 0 {
		t.Errorf("%d source calls for 500 hits at 5 verifications a second (want 1..%d)", n, limit)
	}
	off := newTestCache(t, rdb)
	ks2 := verifySpace(off, false)
	for range 100 {
		if _, err := readV(ctx, ks2, src, 1); err != nil {
			t.Fatal(err)
		}
		off.waitFills()
	}
	if n := off.Stats().Get(EventVerified); n != 0 {
		t.Errorf("%d verifications without WithVerify", n)
	}
}

// keyLog keeps the key attribute of inconsistency warnings.
type keyLog struct {
	mu   sync.Mutex
	keys []string
}

func (h *keyLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *keyLog) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, "inconsistent") {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "key" {
			h.mu.Lock()
			h.keys = append(h.keys, a.Value.String())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}
func (h *keyLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *keyLog) WithGroup(string) slog.Handler      { return h }

func (h *keyLog) key() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.keys) == 0 {
		return ""
	}
	return h.keys[0]
}

func (h *keyLog) allKeys() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.keys, " ")
}
