package runtime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// versioned is a source whose one row changes on every write; a reader can
// tell exactly which write its value came from.
type versioned struct {
	mu      sync.Mutex
	version int64
	calls   atomic.Int64
	// hook runs inside the load after the row was read, before returning it.
	hook func(read int64)
}

func (s *versioned) read(ctx context.Context) (*user, error) {
	s.calls.Add(1)
	s.mu.Lock()
	v := s.version
	s.mu.Unlock()
	if s.hook != nil {
		s.hook(v)
	}
	return &user{ID: 1, Name: fmt.Sprint(v)}, nil
}

func (s *versioned) write() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version++
	return s.version
}

// how a writer invalidates the row, with the tag/group/repo layout getRow uses.
var invalidations = []struct {
	name string
	do   func(ctx context.Context, c *Cache, ks *Keyspace[*user], key Key, src *versioned) error
}{
	{"key", func(ctx context.Context, c *Cache, ks *Keyspace[*user], key Key, _ *versioned) error {
		return c.Invalidate(ctx, Invalidation{Keys: []Key{key}})
	}},
	{"tag", func(ctx context.Context, c *Cache, ks *Keyspace[*user], key Key, _ *versioned) error {
		return c.Invalidate(ctx, Invalidation{Tags: []string{"row"}})
	}},
	{"result-tag", func(ctx context.Context, c *Cache, ks *Keyspace[*user], key Key, _ *versioned) error {
		return c.Invalidate(ctx, Invalidation{Tags: []string{"user:1"}})
	}},
	{"group", func(ctx context.Context, c *Cache, ks *Keyspace[*user], key Key, _ *versioned) error {
		return c.Invalidate(ctx, Invalidation{Groups: []Group{ks.Group()}})
	}},
	{"repo", func(ctx context.Context, c *Cache, ks *Keyspace[*user], key Key, _ *versioned) error {
		return ks.core.repo.InvalidateAll(ctx)
	}},
	{"put", func(ctx context.Context, c *Cache, ks *Keyspace[*user], key Key, src *versioned) error {
		// Write-through: store the row as written (tags as getRow's entry has them).
		src.mu.Lock()
		v := src.version
		src.mu.Unlock()
		Put(ctx, ks, key, &user{ID: 1, Name: fmt.Sprint(v)}, []string{"row", "user:1"}, Invalidation{})
		return nil
	}},
	{"namespace", func(ctx context.Context, c *Cache, ks *Keyspace[*user], key Key, _ *versioned) error {
		return c.InvalidateNamespace(ctx)
	}},
}

// getRow reads the row through the cache the way generated code does; the
// entry is tagged "row" (known before the load) and "user:<ID>" (taken from
// the result, like tags="user:{result.ID}").
func getRow(ctx context.Context, ks *Keyspace[*user], src *versioned) (*user, error) {
	key := userKey(ks, 1)
	if v, hit, err := lookup3(ctx, ks, key); hit {
		return v, err
	}
	return loadVia(ctx, ks, key, Loader[*user]{
		Load: src.read,
		Tags: []string{"row"},
		ResultTags: func(u *user) ([]string, bool) {
			return []string{string(AppendInt([]byte("user:"), u.ID))}, true
		},
	})
}

func mustVersion(t *testing.T, u *user, err error, want int64) {
	t.Helper()
	if err != nil || u == nil || u.Name != fmt.Sprint(want) {
		t.Fatalf("read %+v, %v; want version %d", u, err, want)
	}
}

// TestNoStaleFill: a reader loads the old row and is paused; a writer changes
// the source and invalidates; a read that starts now does not join the old
// load; the paused reader resumes and its fill is rejected; the next read
// returns the new row. For every kind of invalidation, on both backends.
func TestNoStaleFill(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		for _, inv := range invalidations {
			t.Run(inv.name, func(t *testing.T) {
				ctx := context.Background()
				c := newTestCache(t, rdb)
				ks := userSpace(c)
				src := &versioned{}
				loaded, resume := make(chan struct{}), make(chan struct{})
				var once sync.Once
				src.hook = func(read int64) {
					if read == 0 {
						once.Do(func() { close(loaded); <-resume })
					}
				}
				old := make(chan *user)
				go func() {
					u, _ := getRow(ctx, ks, src)
					old <- u
				}()
				<-loaded
				src.write()
				if err := inv.do(ctx, c, ks, userKey(ks, 1), src); err != nil {
					t.Fatal(err)
				}
				// Starts after the invalidation returned: must see version 1
				// even though the old load is still in flight.
				fresh := make(chan *user)
				go func() {
					u, _ := getRow(ctx, ks, src)
					fresh <- u
				}()
				time.Sleep(20 * time.Millisecond)
				close(resume)
				if u := <-old; u.Name != "0" {
					t.Fatalf("paused reader got %q", u.Name)
				}
				u := <-fresh
				mustVersion(t, u, nil, 1)
				u, err := getRow(ctx, ks, src)
				mustVersion(t, u, err, 1)
				if c.Stats().Get(EventFillRejected) == 0 {
					t.Fatal("the stale fill was not rejected")
				}
			})
		}
	})
}

// TestRandomInterleavings: readers with random load delays race writers that
// invalidate by a random mechanism; a read that starts after a write returned
// never sees an older version.
func TestRandomInterleavings(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		const rounds, workers = 1000, 8
		c := newTestCache(t, rdb, WithPoll(time.Millisecond, 5*time.Millisecond))
		var done, failed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				// One repository per worker keeps the rows apart; tags are
				// shared on purpose, so workers also invalidate each other.
				ks := NewKeyspace(c.Repo(fmt.Sprint("w", w), 1), userSpec())
				src := &versioned{hook: func(int64) { time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond) }}
				for done.Add(1) <= rounds {
					var rg sync.WaitGroup
					for r := 0; r < 1+rand.IntN(3); r++ {
						rg.Add(1)
						go func() {
							defer rg.Done()
							time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
							_, _ = getRow(ctx, ks, src)
						}()
					}
					time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond)
					written := src.write()
					inv := invalidations[rand.IntN(len(invalidations))]
					if err := inv.do(ctx, c, ks, userKey(ks, 1), src); err != nil {
						// Undelivered (a starved machine): it is replayed, and
						// until then reads bypass the cache — the check below
						// must hold all the same.
						failed.Add(1)
					}
					u, err := getRow(ctx, ks, src)
					if err != nil || u == nil || u.Name != fmt.Sprint(written) {
						errs <- fmt.Errorf("after write %d (%s) read %+v, %v", written, inv.name, u, err)
						return
					}
					rg.Wait()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		s := c.Stats()
		if s.Get(EventHit) == 0 || s.Get(EventFill) == 0 {
			t.Fatalf("the cache was not exercised: %v", s)
		}
		t.Logf("hits %d fills %d rejected %d undelivered invalidations %d",
			s.Get(EventHit), s.Get(EventFill), s.Get(EventFillRejected), failed.Load())
	})
}

// TestLeaseExpiry: a leaseholder paused past the lease TTL loses its fill to
// the caller that took the lease after it.
func TestLeaseExpiry(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		ns := WithNamespace(testNamespace(t))
		// Two Caches on one namespace behave like two processes.
		a := New(rdb, ns, WithLogger(quietLogger()), WithLease(100*time.Millisecond, 50*time.Millisecond))
		b := New(rdb, ns, WithLogger(quietLogger()), WithLease(100*time.Millisecond, 50*time.Millisecond))
		ksA, ksB := userSpace(a), userSpace(b)
		slow := &versioned{}
		loaded, resume := make(chan struct{}), make(chan struct{})
		slow.hook = func(int64) { close(loaded); <-resume }
		got := make(chan *user)
		go func() {
			u, _ := getRow(ctx, ksA, slow)
			got <- u
		}()
		<-loaded
		slow.write() // the row changes while A sleeps on its lease
		time.Sleep(150 * time.Millisecond)
		fast := &versioned{version: 1}
		u, err := getRow(ctx, ksB, fast)
		mustVersion(t, u, err, 1)
		b.waitFills()
		if b.Stats().Get(EventFill) != 1 {
			t.Fatalf("B did not fill after A's lease expired: %v", b.Stats())
		}
		close(resume)
		<-got
		a.waitFills()
		if a.Stats().Get(EventFillRejected) != 1 {
			t.Fatalf("A's late fill was not rejected: %v", a.Stats())
		}
		u, err = getRow(ctx, ksB, fast)
		mustVersion(t, u, err, 1)
	})
}

// TestNegativeCaching covers both Go shapes and shows a placeholder can never
// be mistaken for a real value, nor a real value for a placeholder.
func TestNegativeCaching(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := newTestCache(t, rdb)
		repo := c.Repo("neg", 1)

		// Sentinel error: cached, errors.Is holds, the text survives.
		ks := NewKeyspace(repo, Spec[*user]{Template: "u:{}", Schema: "s", TTL: time.Minute, Negative: time.Minute,
			NotFound: errNotFound, IsNil: func(u *user) bool { return u == nil }})
		src := &fakeUsers{rows: map[int64]*user{}}
		for i := 0; i < 2; i++ {
			_, err := getUser(ctx, ks, src, 7)
			if !errors.Is(err, errNotFound) || err.Error() != "user 7: user not found" {
				t.Fatalf("err %v", err)
			}
		}
		if src.calls.Load() != 1 {
			t.Fatalf("calls %d", src.calls.Load())
		}
		// A write clears the negative entry.
		key := userKey(ks, 7)
		Put(ctx, ks, key, &user{ID: 7, Name: "Grace"}, nil, Invalidation{})
		u, err := getUser(ctx, ks, src, 7)
		if err != nil || u.Name != "Grace" || src.calls.Load() != 1 {
			t.Fatalf("after put: %+v %v calls=%d", u, err, src.calls.Load())
		}

		// Nil result with nil error: cached negatively when Negative > 0.
		nilKS := NewKeyspace(repo, Spec[*user]{Template: "n:{}", Schema: "s", TTL: time.Minute, Negative: time.Minute,
			IsNil: func(u *user) bool { return u == nil }})
		var calls int
		for i := 0; i < 3; i++ {
			k := nilKS.Key(append(nilKS.AppendPrefix(nil), "n:1"...))
			v, hit, err := lookup3(ctx, nilKS, k)
			if !hit {
				v, err = loadVia(ctx, nilKS, k, Loader[*user]{Load: func(context.Context) (*user, error) { calls++; return nil, nil }})
			}
			if v != nil || err != nil {
				t.Fatalf("nil shape: %v %v", v, err)
			}
		}
		if calls != 1 {
			t.Fatalf("nil result loaded %d times", calls)
		}
		if c.Stats().Get(EventNegativeHit) != 3 {
			t.Fatalf("negative hits: %v", c.Stats())
		}

		// Real values that look like placeholders round-trip as values.
		strKS := NewKeyspace(repo, Spec[string]{Template: "s:{}", Schema: "s", TTL: time.Minute, Negative: time.Minute, NotFound: errNotFound})
		for i, want := range []string{"", "user 7: user not found", errNotFound.Error(), "\xca\x01", "nil"} {
			k := strKS.Key(AppendInt(append(strKS.AppendPrefix(nil), "s:"...), int64(i)))
			for j := 0; j < 2; j++ {
				v, hit, err := lookup3(ctx, strKS, k)
				if !hit {
					v, err = loadVia(ctx, strKS, k, Loader[string]{Load: func(context.Context) (string, error) { return want, nil }})
				}
				if v != want || err != nil || (j == 1 && !hit) {
					t.Fatalf("value %q: got %q, %v, hit=%v", want, v, err, hit)
				}
			}
		}
		// Negative=0 disables negative caching of the sentinel.
		offKS := NewKeyspace(repo, Spec[*user]{Template: "o:{}", Schema: "s", TTL: time.Minute, NotFound: errNotFound})
		src2 := &fakeUsers{rows: map[int64]*user{}}
		for i := 0; i < 2; i++ {
			if _, err := getUser(ctx, offKS, src2, 9); !errors.Is(err, errNotFound) {
				t.Fatal(err)
			}
		}
		if src2.calls.Load() != 2 {
			t.Fatalf("negative=0 still cached: %d calls", src2.calls.Load())
		}
	})
}

// TestJitter: 10,000 fills land uniformly across ttl ± 10%.
func TestJitter(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	c := newTestCache(t, rdb)
	ks := NewKeyspace(c.Repo("jit", 1), Spec[int]{Template: "j:{}", Schema: "s", TTL: 100 * time.Second, Jitter: Percent(10)})
	const n = 10000
	keys := make([]Key, n)
	stored := make([]time.Time, n)
	for i := range keys {
		keys[i] = ks.Key(AppendInt(append(ks.AppendPrefix(nil), "j:"...), int64(i)))
		Put(ctx, ks, keys[i], i, nil, Invalidation{})
		stored[i] = time.Now()
	}
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.PTTL(ctx, string(k))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	read := time.Now()
	var buckets [10]int
	for i, cmd := range cmds {
		// Add back what the TTL counted down since the SET.
		d := cmd.(*redis.DurationCmd).Val() + read.Sub(stored[i])
		if d < 90*time.Second-500*time.Millisecond || d > 110*time.Second+500*time.Millisecond { // slack: PTTL is read over a while
			t.Fatalf("ttl %v outside 90s–110s", d)
		}
		b := int((d - 90*time.Second) / (2 * time.Second))
		buckets[min(max(b, 0), 9)]++
	}
	for i, b := range buckets {
		if b < n/10*7/10 || b > n/10*13/10 { // expected 1000 each
			t.Fatalf("bucket %d has %d of %d fills: %v", i, b, n, buckets)
		}
	}
	// Spread jitter and the MaxTTL cap.
	j := Spread(5 * time.Second)
	for i := 0; i < 1000; i++ {
		if d := j.ttl(time.Minute, time.Hour, rand.Uint64()); d < 55*time.Second || d > 65*time.Second {
			t.Fatalf("spread ttl %v", d)
		}
		if d := Percent(50).ttl(time.Hour, time.Hour, rand.Uint64()); d > time.Hour {
			t.Fatalf("ttl %v above the cap", d)
		}
	}
}

// TestKeyEncodingInjective: distinct value tuples never share a key, and no
// value can add a glob metacharacter or a hash-tag brace.
func TestKeyEncodingInjective(t *testing.T) {
	alphabet := []string{"", "a", ":", "*", "?", "[", "]", "{", "}", "\\", "%", "%3A", "3A", " ", "\x00", "é", "-1"}
	c := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:0"}), WithNamespace("n{s}:*"))
	ks := NewKeyspace(c.Repo("r", 1), Spec[int]{Template: "a:{}:{}", Schema: "s", TTL: time.Minute})
	seen := map[Key][2]string{}
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		var b strings.Builder
		for i := r.IntN(4); i >= 0; i-- {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	for i := 0; i < 200000; i++ {
		x, y := word(), word()
		b := append(ks.AppendPrefix(nil), "a:"...)
		b = AppendString(b, x)
		b = append(b, ':')
		b = AppendString(b, y)
		k := ks.Key(b)
		if prev, ok := seen[k]; ok && prev != [2]string{x, y} {
			t.Fatalf("%q and %q both map to %q", prev, [2]string{x, y}, k)
		}
		seen[k] = [2]string{x, y}
		s := string(k)
		if strings.Count(s, "{") != 1 || strings.Count(s, "}") != 1 || strings.ContainsAny(s, "*?[]\\") {
			t.Fatalf("key %q lets a value pick the slot or widen a pattern", s)
		}
	}
	if got := EscapeGlob(`a*b?[c]\`); got != `a\*b\?\[c\]\\` {
		t.Fatalf("EscapeGlob: %q", got)
	}
}

// TestLoaderPanicAndCancel: a panicking loader reaches every waiting caller
// and frees its lease at once; a cancelled caller returns without failing the
// others, and the load is cancelled when the last caller leaves.
func TestLoaderPanicAndCancel(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	c := newTestCache(t, rdb)
	ks := userSpace(c)
	key := userKey(ks, 1)
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "boom") {
				t.Fatalf("recovered %v, want the loader's panic", r)
			}
		}()
		_, _ = loadVia(ctx, ks, key, Loader[*user]{Load: func(context.Context) (*user, error) { panic("boom") }})
	}()
	if n, _ := rdb.Exists(ctx, leaseKeyOf(key)).Result(); n != 0 {
		t.Fatal("the lease outlived the panicking loader")
	}

	started := make(chan struct{})
	var cancelled atomic.Bool
	slow := Loader[*user]{Load: func(ctx context.Context) (*user, error) {
		close(started)
		<-ctx.Done()
		cancelled.Store(true)
		return nil, ctx.Err()
	}}
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error)
	go func() { _, err := loadVia(cctx, ks, key, slow); errc <- err }()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v", err)
	}
	deadline := time.Now().Add(time.Second)
	for !cancelled.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !cancelled.Load() {
		t.Fatal("the load kept running after its only caller left")
	}
}

type node struct{ Next *node }

// TestTooDeepIsNotStored: a value nested deeper than reads accept is served
// but never stored, rather than stored and deleted as corrupt on every read.
func TestTooDeepIsNotStored(t *testing.T) {
	ctx := context.Background()
	c := newTestCache(t, redisClient(t))
	ks := NewKeyspace(c.Repo("deep", 1), Spec[*node]{Template: "d:{}", Schema: "s", TTL: time.Minute})
	deep := &node{}
	for i := 0; i < 2*maxDepth; i++ {
		deep = &node{Next: deep}
	}
	key := ks.Key(append(ks.AppendPrefix(nil), "d:1"...))
	for i := 0; i < 2; i++ {
		v, err := loadVia(ctx, ks, key, Loader[*node]{Load: func(context.Context) (*node, error) { return deep, nil }})
		if err != nil || v != deep {
			t.Fatalf("Load = %p, %v", v, err)
		}
	}
	s := c.Stats()
	if s.Get(EventFill) != 0 || s.Get(EventCorrupt) != 0 {
		t.Fatalf("a too-deep value was stored: %v", s)
	}
}
