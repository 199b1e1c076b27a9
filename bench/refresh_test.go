package bench

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachegen/cachegen/runtime"
)

// BenchmarkRefresh: hot rows with a one-second TTL, read by refreshWorkers
// goroutines for refreshPhase, uniformly over refreshKeys rows of PostgreSQL
// (each query made to take 2 ms, as a real one does).
// Each iteration runs three phases, one after another, so a busy machine
// slows all three alike:
//
//	hit      the same reads with a 10-minute TTL, warmed: every read a hit
//	ttl      ttl=1s: every key expires each second; its next readers wait
//	         for one load (the lease) — a miss on the caller's path
//	refresh  ttl=1s refresh=80: a hit past 80–90 % of the TTL reloads the
//	         entry in the background; callers never wait for the source
//
// Reported per phase: p50-us, p99-us, and for ttl and refresh the source
// calls per key per TTL (dbq/key/ttl) and the reads that missed on the
// caller's path (miss-%); and refresh/hit-p99, ttl/hit-p99 (goal for
// refresh: ≤ 1.2), and the Redis figures of meter_test.go per read
// (rtt/<phase>-read, redis-µs/…, redis-cpu-µs/…).
const (
	refreshKeys    = 200
	refreshWorkers = 16
	refreshPhase   = 3 * time.Second
)

func BenchmarkRefresh(b *testing.B) {
	e := getEnv(b)
	src := &PGUsers{Pool: e.pool, Delay: 2 * time.Millisecond} // a query of 2 ms
	ctx := context.Background()
	type phase struct {
		name string
		get  func(ctx context.Context, id int64) (*User, error)
		c    *runtime.Cache
		ttl  time.Duration
		p50  []time.Duration
		p99  []time.Duration
		dbq  []float64
		miss []float64
		m    *meter
		n    int
	}
	mk := func(ns string) *runtime.Cache {
		c := runtime.New(e.rdb, runtime.WithNamespace(ns))
		b.Cleanup(func() { c.Close() })
		return c
	}
	hitC, ttlC, freshC := mk(cgNamespace+"-rhit"), mk(cgNamespace+"-rttl"), mk(cgNamespace+"-rfresh")
	phases := []*phase{
		{name: "hit", get: NewCachedUsers(src, hitC).Get, c: hitC, ttl: 10 * time.Minute},
		{name: "ttl", get: NewCachedShortUsers(src, ttlC).Get, c: ttlC, ttl: time.Second},
		{name: "refresh", get: NewCachedFreshUsers(src, freshC).Get, c: freshC, ttl: time.Second},
	}
	for _, p := range phases {
		p.m = e.newMeter(b)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for _, p := range phases {
			b.StopTimer()
			for id := int64(1); id <= refreshKeys; id++ { // warm: every phase starts with every key cached
				if _, err := p.get(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(50 * time.Millisecond) // the warm-up's fills
			db0, miss0 := src.Reads.Load(), p.c.Stats().Get(runtime.EventMiss)
			p.m.start()
			b.StartTimer()
			lat := runRefreshPhase(b, p.get, uint64(i))
			b.StopTimer()
			p.m.stop()
			p.n += len(lat)
			slices.Sort(lat)
			p.p50 = append(p.p50, lat[len(lat)/2])
			p.p99 = append(p.p99, lat[len(lat)*99/100])
			cycles := refreshPhase.Seconds() / p.ttl.Seconds()
			p.dbq = append(p.dbq, float64(src.Reads.Load()-db0)/refreshKeys/cycles)
			p.miss = append(p.miss, 100*float64(p.c.Stats().Get(runtime.EventMiss)-miss0)/float64(len(lat)))
			b.StartTimer()
		}
	}
	b.StopTimer()
	hit := mean(phases[0].p99)
	for _, p := range phases {
		p.m.report(b, p.n, p.name+"-read")
		b.ReportMetric(float64(mean(p.p50))/1e3, p.name+"-p50-us")
		b.ReportMetric(float64(mean(p.p99))/1e3, p.name+"-p99-us")
		if p.name != "hit" {
			b.ReportMetric(meanF(p.dbq), p.name+"-dbq/key/ttl")
			b.ReportMetric(meanF(p.miss), p.name+"-miss-%")
			b.ReportMetric(float64(mean(p.p99))/float64(hit), p.name+"/hit-p99")
		}
	}
}

func meanF(fs []float64) float64 {
	s := 0.0
	for _, f := range fs {
		s += f
	}
	return s / float64(len(fs))
}

// runRefreshPhase reads uniformly random hot keys from refreshWorkers
// goroutines for refreshPhase and returns every read's latency.
func runRefreshPhase(b *testing.B, get func(context.Context, int64) (*User, error), seed uint64) []time.Duration {
	ctx := context.Background()
	end := time.Now().Add(refreshPhase)
	lats := make([][]time.Duration, refreshWorkers)
	var wg sync.WaitGroup
	for g := range refreshWorkers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			lat := make([]time.Duration, 0, 1<<16)
			for time.Now().Before(end) {
				id := rng.Int64N(refreshKeys) + 1
				t := time.Now()
				u, err := get(ctx, id)
				lat = append(lat, time.Since(t))
				if err != nil || u.ID != id {
					b.Errorf("get %d: %v %v", id, u, err)
					return
				}
			}
			lats[g] = lat
		})
	}
	wg.Wait()
	return slices.Concat(lats...)
}
