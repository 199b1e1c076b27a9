package runtime

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
)

func cloneUser(u *user) *user {
	if u == nil {
		return nil
	}
	c := *u
	return &c
}

// localUserSpace is userSpace with an L1.
func localUserSpace(c *Cache, local time.Duration) *Keyspace[*user] {
	return NewKeyspace(c.Repo("users", 1), Spec[*user]{
		Template: "user:{}", Schema: "s1", TTL: time.Minute, Negative: 10 * time.Second,
		Jitter: Percent(10), NotFound: errNotFound, IsNil: func(u *user) bool { return u == nil },
		Local: local, Clone: cloneUser,
	})
}

// waitLive waits until the Cache's subscription is live.
func waitLive(t testing.TB, c *Cache) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l := c.l1.Load(); l != nil && l.sub.liveGen() != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the invalidation subscription never became live")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLocalServesAndSeesEveryInvalidation: reads are served from the L1 after
// the first, each caller gets its own copy, and every kind of invalidation —
// by key, by parameter tag, by result tag, of the group, the repository and
// the namespace, made in this Cache or another one — reaches it.
func TestLocalServesAndSeesEveryInvalidation(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		ns := testNamespace(t)
		src := newTable(8)
		// A bound that a loaded machine under -race keeps (the PINGs and
		// clock reads run late there): these tests assert L1 hits.
		a := newTestCache(t, rdb, WithNamespace(ns), WithLocalBound(2*time.Second))
		b := newTestCache(t, rdb, WithNamespace(ns), WithLocalBound(2*time.Second))
		aks := localUserSpace(a, time.Minute)
		bks := localUserSpace(b, time.Minute)
		waitLive(t, a)
		waitLive(t, b)
		kinds := []string{"key", "param tag", "result tag", "group", "repo", "namespace"}
		for i, kind := range kinds {
			for _, writer := range []*Cache{a, b} {
				id := int64(i)
				wks := aks
				if writer == b {
					wks = bks
				}
				warmL1(t, a, aks, src, id)
				u1, err := readRow(ctx, aks, src, id)
				if err != nil {
					t.Fatal(err)
				}
				u1.Name = "mutated by the caller"
				u2, _ := readRow(ctx, aks, src, id)
				if u2.Name == "mutated by the caller" {
					t.Fatalf("%s: two callers share one value", kind)
				}
				want := src.write(id)
				s := strconv.FormatInt(id, 10)
				var err2 error
				switch kind {
				case "key":
					err2 = writer.Invalidate(ctx, Invalidation{Keys: []Key{userKey(wks, id)}})
				case "param tag":
					err2 = writer.Invalidate(ctx, Invalidation{Tags: []string{"row:" + s}})
				case "result tag":
					err2 = writer.Invalidate(ctx, Invalidation{Tags: []string{"u:" + s}})
				case "group":
					err2 = writer.Invalidate(ctx, Invalidation{Groups: []Group{wks.Group()}})
				case "repo":
					err2 = wks.core.repo.InvalidateAll(ctx)
				case "namespace":
					err2 = writer.InvalidateNamespace(ctx)
				}
				if err2 != nil {
					t.Fatal(err2)
				}
				// Another Cache's message needs to arrive: poll for the bound.
				deadline := time.Now().Add(a.cfg.localBound)
				for {
					u, err := readRow(ctx, aks, src, id)
					if err != nil {
						t.Fatal(err)
					}
					if u.Name == strconv.FormatInt(want, 10) {
						break
					}
					if writer == a || time.Now().After(deadline) {
						t.Fatalf("%s by %s: read %q after the invalidation returned, want %d", kind, map[bool]string{true: "a", false: "b"}[writer == a], u.Name, want)
					}
					time.Sleep(time.Millisecond)
				}
			}
		}
	})
}

// TestLocalGapDropsL1: a killed subscription connection turns the L1 off at
// once (an invalidation published meanwhile is never missed), and it comes
// back once resubscribed.
func TestLocalGapDropsL1(t *testing.T) {
	addr, _ := testenv.StartRedisWith(t) // private: CLIENT KILL must not reach other tests
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	ns := testNamespace(t)
	src := newTable(2)
	a := newTestCache(t, rdb, WithNamespace(ns), WithLocalBound(2*time.Second))
	aks := localUserSpace(a, time.Minute)
	waitLive(t, a)
	warmL1(t, a, aks, src, 1)
	g0 := a.Stats().Get(EventLocalGap)
	if err := rdb.Do(ctx, "client", "kill", "type", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Stats().Get(EventLocalGap) == g0 {
		if time.Now().After(deadline) {
			t.Fatal("the killed subscription was not noticed")
		}
		time.Sleep(time.Millisecond)
	}
	if a.l1.Load().store.EstimatedSize() != 0 {
		t.Fatal("the L1 kept entries across the gap")
	}
	waitLive(t, a)
	warmL1(t, a, aks, src, 1) // and it comes back
}

// TestLocalConcurrentCallersOwnValues: under -race, callers that mutate what
// they got never race with each other, from the L1 or from a shared load.
func TestLocalConcurrentCallersOwnValues(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	ns := testNamespace(t)
	src := newTable(4)
	a := newTestCache(t, rdb, WithNamespace(ns))
	aks := localUserSpace(a, time.Minute)
	waitLive(t, a)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				u, err := readRow(ctx, aks, src, int64((g+i)%4))
				if err != nil {
					t.Error(err)
					return
				}
				u.Name = "mine" // a race detector report if anyone shares it
			}
		})
	}
	wg.Wait()
}

// TestLocalNetworkCut: the path between a process and Redis goes silent (a
// proxy that forwards nothing and closes nothing: no TCP error ever comes)
// while another process writes. The cut-off process may serve its L1 for at
// most the bound after the write returned, then reads go to the source.
func TestLocalNetworkCut(t *testing.T) {
	ctx := context.Background()
	addr := testenv.NeedRedis(t)
	p := startProxy(t, addr)
	ns := testNamespace(t)
	src := newTable(2)
	const bound = 200 * time.Millisecond
	ardb := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { ardb.Close() })
	a := newTestCache(t, ardb, WithNamespace(ns), WithLocalBound(bound), WithTimeout(50*time.Millisecond))
	brdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { brdb.Close() })
	b := newTestCache(t, brdb, WithNamespace(ns))
	aks, bks := localUserSpace(a, time.Minute), localUserSpace(b, time.Minute)
	waitLive(t, a)
	warmL1(t, a, aks, src, 1)
	p.set(proxyHang)
	want := src.write(1)
	if err := b.Invalidate(ctx, Invalidation{Keys: []Key{userKey(bks, 1)}}); err != nil {
		t.Fatal(err)
	}
	returned := time.Now()
	slack := 50 * time.Millisecond // scheduling on a loaded machine
	var lastOld time.Duration
	for time.Since(returned) < 2*bound+slack {
		invoke := time.Since(returned)
		u, err := readRow(ctx, aks, src, 1)
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != strconv.FormatInt(want, 10) {
			lastOld = invoke
			if invoke > bound+slack {
				t.Fatalf("read invoked %v after the write returned served the old value (bound %v)", invoke, bound)
			}
		}
		time.Sleep(time.Millisecond)
	}
	if a.Stats().Get(EventLocalGap) == 0 {
		t.Fatal("the silent cut was never noticed")
	}
	t.Logf("last old value served %v after the write returned (bound %v)", lastOld, bound)
	p.set(proxyPass)
}

type profile struct {
	ID    int64
	Name  string
	Email string
	Score float64
}

// BenchmarkLocalHit: an L1 hit through Lookup, for a struct of scalars and
// strings (no Clone: 0 allocations) and a pointer to one (one allocation:
// the caller's copy), beside a bare otter Get of the same value.
func BenchmarkLocalHit(b *testing.B) {
	rdb := redisClient(b)
	ctx := context.Background()
	c := newTestCache(b, rdb, WithNamespace(testNamespace(b)), WithLocalBound(2*time.Second))
	val := NewKeyspace(c.Repo("p", 1), Spec[profile]{Template: "v:{}", Schema: "v", TTL: time.Hour, Local: time.Hour})
	ptr := NewKeyspace(c.Repo("p", 1), Spec[*profile]{Template: "p:{}", Schema: "p", TTL: time.Hour, Local: time.Hour,
		IsNil: func(p *profile) bool { return p == nil },
		Clone: func(p *profile) *profile {
			if p == nil {
				return nil
			}
			q := *p
			return &q
		}})
	waitLive(b, c)
	pv := profile{ID: 7, Name: "Ada Lovelace", Email: "ada@example.com", Score: 9.5}
	vkey := val.Key(append(val.AppendPrefix(nil), "v:7"...))
	pkey := ptr.Key(append(ptr.AppendPrefix(nil), "p:7"...))
	for range 3 {
		if _, err := loadVia(ctx, val, vkey, Loader[profile]{Load: func(context.Context) (profile, error) { return pv, nil }}); err != nil {
			b.Fatal(err)
		}
		if _, err := loadVia(ctx, ptr, pkey, Loader[*profile]{Load: func(context.Context) (*profile, error) { q := pv; return &q, nil }}); err != nil {
			b.Fatal(err)
		}
		c.waitFills()
	}
	b.Run("value", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if rd := Lookup(ctx, val, vkey); !rd.Hit || rd.Value.ID != 7 {
				b.Fatal("not an L1 hit")
			}
		}
		if c.Stats().Get(EventLocalHit) < uint64(b.N) {
			b.Fatal("served from Redis, not the L1")
		}
	})
	b.Run("pointer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if rd := Lookup(ctx, ptr, pkey); !rd.Hit || rd.Value.ID != 7 {
				b.Fatal("not an L1 hit")
			}
		}
	})
	b.Run("pointer-bytes", func(b *testing.B) { // the key built in a stack buffer, as generated code does
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var buf [128]byte
			kb := AppendInt(append(ptr.AppendPrefix(buf[:0]), "p:"...), 7)
			if rd := LookupBytes(ctx, ptr, kb); !rd.Hit || rd.Value.ID != 7 {
				b.Fatal("not an L1 hit")
			}
		}
	})
	b.Run("otter", func(b *testing.B) {
		o := otter.Must(&otter.Options[Key, *profile]{MaximumSize: 1000})
		o.Set(pkey, &pv)
		b.ReportAllocs()
		for b.Loop() {
			if p, ok := o.GetIfPresent(pkey); !ok || p.ID != 7 {
				b.Fatal("miss")
			}
		}
	})
}

// TestSharedLoadCallersOwnValues: with Redis unreachable, concurrent callers
// of one key share one source call (a flight) and each gets its own copy:
// they mutate what they got, and -race finds no sharing.
func TestSharedLoadCallersOwnValues(t *testing.T) {
	ctx := context.Background()
	p := startProxy(t, testenv.NeedRedis(t))
	p.set(proxyRefuse)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	c := newTestCache(t, rdb, WithNamespace(testNamespace(t)))
	ks := NewKeyspace(c.Repo("users", 1), Spec[*user]{Template: "user:{}", Schema: "s1", TTL: time.Minute,
		IsNil: func(u *user) bool { return u == nil }, Clone: cloneUser})
	src := newTable(1)
	src.delay = 20 * time.Millisecond // long enough for the callers to meet in one flight
	for round := range 5 {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 16 {
			wg.Go(func() {
				<-start
				u, err := readRow(ctx, ks, src, 0)
				if err != nil {
					t.Error(err)
					return
				}
				u.Name = "mine" // a data race if two callers share it
			})
		}
		c0 := src.calls.Load()
		close(start)
		wg.Wait()
		if round == 4 && src.calls.Load()-c0 == 16 {
			t.Log("no two callers met in one flight in the last round")
		}
	}
}

// TestLocalOwnUndeliveredInvalidation: a write whose invalidation cannot
// reach Redis (queued for replay) is still never undone by this process's
// own L1: its reads go to the source until the replay lands.
func TestLocalOwnUndeliveredInvalidation(t *testing.T) {
	ctx := context.Background()
	p := startProxy(t, testenv.NeedRedis(t))
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	c := newTestCache(t, rdb, WithNamespace(testNamespace(t)), WithTimeout(50*time.Millisecond), WithLocalBound(2*time.Second))
	ks := localUserSpace(c, time.Minute)
	src := newTable(1)
	waitLive(t, c)
	warmL1(t, c, ks, src, 0)
	p.set(proxyRefuse)
	want := strconv.FormatInt(src.write(0), 10)
	_ = c.Invalidate(ctx, Invalidation{Keys: []Key{userKey(ks, 0)}}) // refused: queued
	for range 20 {
		u, err := readRow(ctx, ks, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != want {
			t.Fatalf("read %q after this process's own write, want %s", u.Name, want)
		}
	}
	p.set(proxyPass)
}
