package bench

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachegen/cachegen/runtime"
	"github.com/vmihailenco/msgpack/v5"
)

// Tag invalidation cost against the number of entries carrying the tag.
// cachegen: TeamChanged evicts tags="team:{team}" (versioned tag: INCR + one
// marker script, whatever the count). handwritten-setkeys: the usual
// hand-written design — a Redis set of keys per tag; invalidate = SMEMBERS +
// DEL of the members (pipelined, 1,000 keys per DEL) + DEL of the set.
//
// Entries are filled outside the timer. The set design deletes its entries,
// so every iteration invalidates a tag filled for it (filled ahead, in
// batches of ~20,000 entries). cachegen's invalidation never touches
// entries (they are stale by their recorded tag sequence, and expire by TTL),
// so its entries, filled through the generated repository, are filled once
// per size and process and the timed call costs the same every time.
var invalidateSizes = []int{10, 1_000, 100_000}

func BenchmarkInvalidate(b *testing.B) {
	for _, n := range invalidateSizes {
		b.Run("entries="+strconv.Itoa(n), func(b *testing.B) {
			b.Run("cachegen", func(b *testing.B) { benchInvalidateCachegen(b, n) })
			b.Run("handwritten-setkeys", func(b *testing.B) { benchInvalidateSetKeys(b, n) })
		})
	}
}

var filled sync.Map // team -> struct{}: cachegen entries already filled in this process

func benchInvalidateCachegen(b *testing.B, n int) {
	e := getEnv(b)
	if newCachegen == nil {
		b.Skip("bench: cachegen skipped: the generated repository (users_cache.go) is missing; run `go generate` in bench/")
	}
	src := &countingMem{}
	cache := newCache(e.rdb)
	repo := newCachegen(src, cache)
	ctx := context.Background()
	team := "inv" + strconv.Itoa(n)
	if _, done := filled.Load(team); !done {
		// Start from stale entries (O(1)), so every read below is a miss that
		// fills. A fill that outlived the runtime's time budget may be skipped
		// (fail-open); read again until one pass of n reads is all hits.
		if err := repo.Reset(ctx); err != nil {
			b.Fatal(err)
		}
		for pass := 0; ; pass++ {
			if pass == 10 {
				b.Fatalf("cachegen: entries still missing after %d passes (stats %v)", pass, cache.Stats())
			}
			if pass > 1 { // let an opened breaker close again
				time.Sleep(2 * time.Second)
			}
			st := cache.Stats()
			fillMembers(b, repo, team, n)
			if pass > 0 && cache.Stats().Get(runtime.EventHit)-st.Get(runtime.EventHit) == uint64(n) {
				break
			}
		}
		filled.Store(team, struct{}{})
	}
	errs := cache.Stats().Get(runtime.EventRedisError) + cache.Stats().Get(runtime.EventBypass)
	m := e.newMeter(b)
	b.ReportAllocs()
	m.start()
	b.ResetTimer()
	for b.Loop() {
		if err := repo.TeamChanged(ctx, team); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	m.report(b, b.N, "op")
	// An invalidation that failed (time budget) would be queued and the
	// breaker opened, making later ones look cheap: count them, never hide them.
	errs = cache.Stats().Get(runtime.EventRedisError) + cache.Stats().Get(runtime.EventBypass) - errs
	b.ReportMetric(float64(errs)/float64(b.N), "redis-err/op")
	// The entries are really invalid: a read goes to the source.
	before := src.reads.Load()
	if _, err := repo.Member(ctx, team, 1); err != nil {
		b.Fatal(err)
	}
	if src.reads.Load() == before {
		b.Errorf("cachegen: a member of %s was still served from the cache after TeamChanged", team)
	}
	// That read refilled one entry; the next invalidation makes it stale again.
}

// fillMembers reads n members of team through the generated repository, so n
// entries carry the tag team:<team>.
func fillMembers(b *testing.B, repo cachegenRepo, team string, n int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if _, err := repo.Member(ctx, team, i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func benchInvalidateSetKeys(b *testing.B, n int) {
	e := getEnv(b)
	s := &SetTags{RDB: e.rdb, Prefix: setPrefix, TTL: ttl}
	ctx := context.Background()
	u, _ := MemUsers{}.Get(ctx, 1)
	val, err := msgpack.Marshal(u)
	if err != nil {
		b.Fatal(err)
	}
	// Tags are filled setKeysBatch(n) at a time outside the timer and the
	// meter, then invalidated one per iteration, so a window of the meter
	// (two INFO calls) spans many invalidations when they are cheap.
	batch := setKeysBatch(n)
	var pending []string
	round := 0
	m := e.newMeter(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if len(pending) == 0 {
			b.StopTimer()
			m.stop()
			for j := range batch {
				tag := "team:inv" + strconv.Itoa(n) + "-" + strconv.Itoa(round) + "-" + strconv.Itoa(j)
				if err := s.Fill(ctx, tag, n, val); err != nil {
					b.Fatal(err)
				}
				pending = append(pending, tag)
			}
			round++
			m.start()
			b.StartTimer()
		}
		tag := pending[0]
		pending = pending[1:]
		got, err := s.Invalidate(ctx, tag)
		if err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("set design deleted %d keys, want %d", got, n)
		}
	}
	b.StopTimer()
	m.report(b, b.N, "op")
	// Tags filled and not invalidated expire with their TTL.
}

// setKeysBatch is how many tags of n entries the set design fills ahead:
// about 20,000 entries, 1 to 256 tags.
func setKeysBatch(n int) int { return max(1, min(256, 20_000/n)) }

// countingMem is MemUsers with a read counter.
type countingMem struct {
	MemUsers
	reads atomic.Int64
}

func (m *countingMem) Get(ctx context.Context, id int64) (*User, error) {
	m.reads.Add(1)
	return m.MemUsers.Get(ctx, id)
}

func (m *countingMem) Member(ctx context.Context, team string, id int64) (*User, error) {
	m.reads.Add(1)
	return m.MemUsers.Get(ctx, id)
}
