package runtime

// Benchmarks of the runtime (issue 2): the hit path against what a hand-written
// repository does (GET + msgpack.Unmarshal, key built with strconv) on the same
// client in the same run — goal ≤ 1.10× the time and ≤ 8 extra allocations —
// for a client with ContextTimeoutEnabled and one with go-redis defaults,
// sequential and parallel; a miss with its lease and fill; and the cost of a
// tag invalidation with 10 vs 100,000 tagged entries, which must be flat.
//
//	go test -run '^$' -bench . -benchmem -count 6 ./runtime | tee new.txt
//	benchstat new.txt

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"
)

var benchUser = &user{ID: 42, Name: "Ada Lovelace", Email: "ada@example.com"}

// benchClients are the two ways users build their client.
var benchClients = []struct {
	name  string
	ctxTO bool
}{{"ctxtimeout", true}, {"defaults", false}}

func benchClient(b *testing.B, ctxTO bool) *redis.Client {
	redisClient(b) // skips (fails under CI=true) without a server
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: ctxTO})
	b.Cleanup(func() { rdb.Close() })
	return rdb
}

// handGetUser is the hand-written read a repository without cachegen does.
func handGetUser(ctx context.Context, rdb *redis.Client, prefix string, id int64) (*user, error) {
	b, err := rdb.Get(ctx, prefix+strconv.FormatInt(id, 10)).Bytes()
	if err != nil {
		return nil, err
	}
	var u *user
	if err := msgpack.Unmarshal(b, &u); err != nil {
		return nil, err
	}
	return u, nil
}

// hitFixture fills n users in both the cache and the hand-written layout.
type hitFixture struct {
	rdb    *redis.Client
	c      *Cache
	ks     *Keyspace[*user]
	src    *fakeUsers
	prefix string
}

func newHitFixture(b *testing.B, ctxTO bool, n int64) *hitFixture {
	rdb := benchClient(b, ctxTO)
	c := newTestCache(b, rdb)
	f := &hitFixture{rdb: rdb, c: c, ks: userSpace(c), src: &fakeUsers{rows: map[int64]*user{}}}
	f.prefix = c.Namespace() + "hand:user:"
	ctx := context.Background()
	payload, err := msgpack.Marshal(benchUser)
	if err != nil {
		b.Fatal(err)
	}
	for id := int64(1); id <= n; id++ {
		u := *benchUser
		u.ID = id
		f.src.rows[id] = &u
		if _, err := getUser(ctx, f.ks, f.src, id); err != nil {
			b.Fatal(err)
		}
		if _, hit, _ := lookup3(ctx, f.ks, userKey(f.ks, id)); !hit {
			b.Fatalf("user %d not cached after a fill", id)
		}
		if err := rdb.Set(ctx, f.prefix+strconv.FormatInt(id, 10), payload, time.Minute).Err(); err != nil {
			b.Fatal(err)
		}
	}
	return f
}

// checkAllHits fails the benchmark if anything but hits happened since s.
func (f *hitFixture) checkAllHits(b *testing.B, s Stats) {
	now := f.c.Stats()
	if now.Get(EventMiss) != s.Get(EventMiss) || now.Get(EventLoad) != s.Get(EventLoad) || now.Get(EventRedisError) != s.Get(EventRedisError) {
		b.Fatalf("the hit benchmark measured misses or errors: %v -> %v", s, now)
	}
}

func BenchmarkHit(b *testing.B) {
	for _, cl := range benchClients {
		b.Run(cl.name, func(b *testing.B) {
			f := newHitFixture(b, cl.ctxTO, 1)
			ctx := context.Background()
			b.Run("cachegen", func(b *testing.B) {
				b.ReportAllocs()
				s := f.c.Stats()
				for b.Loop() {
					if u, err := getUser(ctx, f.ks, f.src, 1); err != nil || u == nil {
						b.Fatal(u, err)
					}
				}
				f.checkAllHits(b, s)
			})
			b.Run("handwritten", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if u, err := handGetUser(ctx, f.rdb, f.prefix, 1); err != nil || u == nil {
						b.Fatal(u, err)
					}
				}
			})
		})
	}
}

// BenchmarkHitPaired alternates one cachegen hit and one hand-written read
// in the same loop and reports both means and their ratio: on a shared,
// noisy machine the two sides of the comparison then see the same load.
func BenchmarkHitPaired(b *testing.B) {
	for _, cl := range benchClients {
		b.Run(cl.name, func(b *testing.B) {
			f := newHitFixture(b, cl.ctxTO, 1)
			ctx := context.Background()
			s := f.c.Stats()
			var cg, hw time.Duration
			n := 0
			for b.Loop() {
				n++
				t0 := time.Now()
				if n%2 == 0 {
					if u, err := getUser(ctx, f.ks, f.src, 1); err != nil || u == nil {
						b.Fatal(u, err)
					}
					t1 := time.Now()
					if u, err := handGetUser(ctx, f.rdb, f.prefix, 1); err != nil || u == nil {
						b.Fatal(u, err)
					}
					cg += t1.Sub(t0)
					hw += time.Since(t1)
				} else {
					if u, err := handGetUser(ctx, f.rdb, f.prefix, 1); err != nil || u == nil {
						b.Fatal(u, err)
					}
					t1 := time.Now()
					if u, err := getUser(ctx, f.ks, f.src, 1); err != nil || u == nil {
						b.Fatal(u, err)
					}
					hw += t1.Sub(t0)
					cg += time.Since(t1)
				}
			}
			f.checkAllHits(b, s)
			b.ReportMetric(float64(cg.Nanoseconds())/float64(n), "cachegen-ns/op")
			b.ReportMetric(float64(hw.Nanoseconds())/float64(n), "handwritten-ns/op")
			b.ReportMetric(float64(cg)/float64(hw), "ratio")
		})
	}
}

// BenchmarkHitParallel spreads the goroutines over 64 keys, so the
// process-local collapsing of concurrent lookups of one key does not turn the
// comparison into one round trip against many.
func BenchmarkHitParallel(b *testing.B) {
	const keys = 64
	for _, cl := range benchClients {
		b.Run(cl.name, func(b *testing.B) {
			f := newHitFixture(b, cl.ctxTO, keys)
			ctx := context.Background()
			b.Run("cachegen", func(b *testing.B) {
				b.ReportAllocs()
				s := f.c.Stats()
				b.RunParallel(func(pb *testing.PB) {
					id := rand.Int64N(keys) // goroutines out of step
					for pb.Next() {
						id = id%keys + 1
						if u, err := getUser(ctx, f.ks, f.src, id); err != nil || u == nil {
							b.Error(u, err)
							return
						}
					}
				})
				f.checkAllHits(b, s)
			})
			b.Run("handwritten", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					id := rand.Int64N(keys) // goroutines out of step
					for pb.Next() {
						id = id%keys + 1
						if u, err := handGetUser(ctx, f.rdb, f.prefix, id); err != nil || u == nil {
							b.Error(u, err)
							return
						}
					}
				})
			})
		})
	}
}

// BenchmarkMissFill: a key never seen before — hit check, lease, source,
// conditional fill.
func BenchmarkMissFill(b *testing.B) {
	for _, cl := range benchClients {
		b.Run(cl.name, func(b *testing.B) {
			rdb := benchClient(b, cl.ctxTO)
			c := newTestCache(b, rdb)
			ks := NewKeyspace(c.Repo("users", 1), Spec[*user]{Template: "user:{}", Schema: "s1", TTL: 10 * time.Second})
			ctx := context.Background()
			b.ReportAllocs()
			id := int64(0)
			for b.Loop() {
				id++
				key := userKey(ks, id)
				if _, hit, _ := lookup3(ctx, ks, key); hit {
					b.Fatal("hit on a new key")
				}
				u, err := loadVia(ctx, ks, key, Loader[*user]{
					Load: func(context.Context) (*user, error) { u := *benchUser; u.ID = id; return &u, nil },
					Tags: []string{"user:" + strconv.FormatInt(id, 10)},
				})
				if err != nil || u.ID != id {
					b.Fatal(u, err)
				}
			}
			if s := c.Stats(); s.Get(EventFill) != uint64(id) {
				b.Fatalf("%d misses but %d fills: %v", id, s.Get(EventFill), s)
			}
		})
	}
}

// BenchmarkInvalidateTag times the invalidation of one tag carried by N live
// entries. Between iterations (outside the timer) the tag's marker is
// removed, which makes all N entries valid again — the O(1) equivalent of
// re-filling them.
func BenchmarkInvalidateTag(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run("entries="+strconv.Itoa(n), func(b *testing.B) {
			rdb := benchClient(b, true)
			c := newTestCache(b, rdb)
			ks := userSpace(c)
			ctx := context.Background()
			const tag = "hot"
			st, err := c.ensureState(ctx)
			if err != nil {
				b.Fatal(err)
			}
			payload, _ := msgpack.Marshal(benchUser)
			entry := appendEnvelope(nil, 0, time.Now().UnixMilli(), time.Now().Add(time.Hour).UnixMilli(), st.inc, st.seq, []uint64{markerID(markTag, tag)}, payload)
			keys := make([]string, 0, n)
			for i := 0; i < n; i++ {
				keys = append(keys, string(userKey(ks, int64(i))))
			}
			b.Cleanup(func() {
				for i := 0; i < len(keys); i += 1000 {
					rdb.Unlink(context.Background(), keys[i:min(i+1000, len(keys))]...)
				}
				rdb.Del(context.Background(), c.state.clock, c.state.marks)
			})
			for i := 0; i < n; i += 1000 {
				_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
					for _, k := range keys[i:min(i+1000, n)] {
						p.Set(ctx, k, entry, 5*time.Minute)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			sample := userKey(ks, int64(n-1))
			if _, hit, _ := lookup3(ctx, ks, sample); !hit {
				b.Fatal("tagged entry not readable before the benchmark")
			}
			inv := Invalidation{Tags: []string{tag}}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Invalidate(ctx, inv); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, hit, _ := lookup3(ctx, ks, sample); hit {
					b.Fatal("tagged entry still readable after its tag was invalidated")
				}
				// "Re-fill" all n: forget the tag's bump in Redis and in the mirror.
				if err := rdb.ZRem(ctx, c.state.marks, memberOf(markerID(markTag, tag))).Err(); err != nil {
					b.Fatal(err)
				}
				c.mirror.mu.Lock()
				c.mirror.reset(c.mirror.inc, c.mirror.pos)
				c.mirror.mu.Unlock()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkEnvelopeDecode is the CPU part of a hit: the envelope check and
// the bounded msgpack decode, against msgpack.Unmarshal alone.
func BenchmarkEnvelopeDecode(b *testing.B) {
	c := New(nil, WithLogger(quietLogger()))
	ks := userSpace(c)
	payload, _ := msgpack.Marshal(benchUser)
	entry := appendEnvelope(nil, 0, time.Now().UnixMilli(), time.Now().Add(time.Hour).UnixMilli(), 1<<40, 7, []uint64{1, 2}, payload)
	b.Run("cachegen", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, ok := decodeEnvelope(entry)
			if !ok {
				b.Fatal("rejected")
			}
			if v, _, ok := ks.decode(e); !ok || v.ID != 42 {
				b.Fatal("rejected")
			}
		}
	})
	b.Run("handwritten", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v *user
			if err := msgpack.Unmarshal(payload, &v); err != nil || v.ID != 42 {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHitValue: an L2 hit of non-pointer results — a struct value, a
// slice, a map — which the protocol handles as a *T (typed.go): the decode
// allocates the T it fills as before, and the caller gets a copy of it.
func BenchmarkHitValue(b *testing.B) {
	rdb := benchClient(b, true)
	c := newTestCache(b, rdb)
	ctx := context.Background()
	r := c.Repo("hitvalue", 1)
	one := NewKeyspace(r, Spec[user]{Template: "u:{}", Schema: "u", TTL: time.Hour})
	list := NewKeyspace(r, Spec[[]user]{Template: "l:{}", Schema: "l", TTL: time.Hour, IsNil: func(v []user) bool { return v == nil }})
	index := NewKeyspace(r, Spec[map[string]user]{Template: "m:{}", Schema: "m", TTL: time.Hour, IsNil: func(v map[string]user) bool { return v == nil }})
	u := *benchUser
	run := func(name string, hit func() bool) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !hit() {
					b.Fatal("not a hit")
				}
			}
		})
	}
	k1 := one.Key(append(one.AppendPrefix(nil), "u:1"...))
	k2 := list.Key(append(list.AppendPrefix(nil), "l:1"...))
	k3 := index.Key(append(index.AppendPrefix(nil), "m:1"...))
	for range 2 {
		_, _ = loadVia(ctx, one, k1, Loader[user]{Load: func(context.Context) (user, error) { return u, nil }})
		_, _ = loadVia(ctx, list, k2, Loader[[]user]{Load: func(context.Context) ([]user, error) { return []user{u, u}, nil }})
		_, _ = loadVia(ctx, index, k3, Loader[map[string]user]{Load: func(context.Context) (map[string]user, error) {
			return map[string]user{"a": u}, nil
		}})
		c.waitFills()
	}
	run("struct", func() bool { rd := Lookup(ctx, one, k1); return rd.Hit && rd.Value.ID == u.ID })
	run("slice", func() bool { rd := Lookup(ctx, list, k2); return rd.Hit && len(rd.Value) == 2 })
	run("map", func() bool { rd := Lookup(ctx, index, k3); return rd.Hit && len(rd.Value) == 1 })
}
