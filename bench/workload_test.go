package bench

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The workload: workloadRequests requests per iteration from workloadWorkers
// goroutines; each is a read of a Zipf-distributed user (s=1.1 over
// workloadKeys rows) or, 5 % of the time, a write of one (UPDATE, then the
// contender's invalidation). Every iteration starts from a cold cache (reset
// outside the timer), so an iteration is the same fixed request count from the
// same state. Reported per contender, besides ns/op (one iteration):
//
//	req/s     requests per second
//	p50-us    median request latency, microseconds
//	p99-us    99th percentile request latency, microseconds
//	dbq/req   PostgreSQL queries (reads + writes) per request
//	hit-%     reads served without a PostgreSQL query
//
// and the Redis figures of meter_test.go per request: redis-µs/req,
// redis-cpu-µs/req, rtt/req.
const (
	workloadRequests = 20_000
	workloadWorkers  = 32
	workloadKeys     = 10_000
	workloadWrites   = 0.05
	workloadZipfS    = 1.1
)

var workloadContenders = []string{"nocache", "handwritten", "goredis-cache", "cachegen", "cachegen-local"}

func BenchmarkWorkload(b *testing.B) {
	for _, name := range workloadContenders {
		b.Run(name, func(b *testing.B) {
			e := getEnv(b)
			src := &PGUsers{Pool: e.pool}
			c := needContender(b, e, name, src)
			ctx := context.Background()
			lat := make([]time.Duration, workloadRequests)
			var p50, p99 []time.Duration
			var reads, writes, dbReads, dbWrites int64
			var wall time.Duration
			m := e.newMeter(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				if err := resetWorkload(ctx, e.rdb, name, c); err != nil {
					b.Fatal(err)
				}
				r0, w0 := src.Reads.Load(), src.Writes.Load()
				m.start()
				b.StartTimer()
				start := time.Now()
				r, w := runWorkload(b, c, lat, uint64(i))
				wall += time.Since(start)
				b.StopTimer()
				m.stop()
				reads += r
				writes += w
				dbReads += src.Reads.Load() - r0
				dbWrites += src.Writes.Load() - w0
				slices.Sort(lat)
				p50 = append(p50, lat[len(lat)/2])
				p99 = append(p99, lat[len(lat)*99/100])
				b.StartTimer()
			}
			b.StopTimer()
			total := float64(reads + writes)
			m.report(b, int(total), "req")
			b.ReportMetric(total/wall.Seconds(), "req/s")
			b.ReportMetric(float64(mean(p50))/1e3, "p50-us")
			b.ReportMetric(float64(mean(p99))/1e3, "p99-us")
			b.ReportMetric(float64(dbReads+dbWrites)/total, "dbq/req")
			b.ReportMetric(100*float64(reads-dbReads)/float64(reads), "hit-%")
		})
	}
}

func mean(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s / time.Duration(len(ds))
}

// runWorkload runs one batch and returns how many reads and writes it made.
func runWorkload(b *testing.B, c contender, lat []time.Duration, seed uint64) (reads, writes int64) {
	ctx := context.Background()
	var next, nr, nw atomic.Int64
	var wg sync.WaitGroup
	for g := range workloadWorkers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			zipf := rand.NewZipf(rng, workloadZipfS, 1, workloadKeys-1)
			for {
				i := next.Add(1) - 1
				if i >= workloadRequests {
					return
				}
				id := int64(zipf.Uint64()) + 1
				t := time.Now()
				if rng.Float64() < workloadWrites {
					if err := c.Touch(ctx, id); err != nil {
						b.Error(err)
						return
					}
					nw.Add(1)
				} else {
					u, err := c.Get(ctx, id)
					if err != nil || u.ID != id {
						b.Errorf("get %d: %v %v", id, u, err)
						return
					}
					nr.Add(1)
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	return nr.Load(), nw.Load()
}

// resetWorkload makes every workload key cold.
func resetWorkload(ctx context.Context, rdb *redis.Client, name string, c contender) error {
	prefix := ""
	switch name {
	case "nocache":
		return nil
	case "cachegen", "cachegen-defaultopts", "cachegen-local":
		return c.(cachegenRepo).Reset(ctx)
	case "handwritten":
		prefix = hwPrefix
	case "goredis-cache":
		prefix = grcPrefix
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		keys := make([]string, 0, 1000)
		for id := 1; id <= workloadKeys; id++ {
			keys = append(keys, prefix+strconv.Itoa(id))
			if len(keys) == cap(keys) {
				p.Del(ctx, keys...)
				keys = make([]string, 0, 1000)
			}
		}
		if len(keys) > 0 {
			p.Del(ctx, keys...)
		}
		return nil
	})
	return err
}

// BenchmarkWorkloadPaired runs the workload for cachegen and for hand-written
// cache-aside alternately, iteration by iteration (each from a cold cache),
// so that a busy machine slows both alike: the ratio is the figure to read.
func BenchmarkWorkloadPaired(b *testing.B) {
	e := getEnv(b)
	src := &PGUsers{Pool: e.pool}
	names := [2]string{"cachegen", "handwritten"}
	var cs [2]contender
	for i, n := range names {
		cs[i] = needContender(b, e, n, src)
	}
	ctx := context.Background()
	lat := make([]time.Duration, workloadRequests)
	var wall, cpu [2]time.Duration
	var reqs [2]int64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for k := range 2 {
			j := (k + i) % 2 // alternate who goes first
			b.StopTimer()
			if err := resetWorkload(ctx, e.rdb, names[j], cs[j]); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start, c0 := time.Now(), processCPU()
			r, w := runWorkload(b, cs[j], lat, uint64(i))
			wall[j] += time.Since(start)
			cpu[j] += processCPU() - c0
			reqs[j] += r + w
		}
	}
	cg := float64(reqs[0]) / wall[0].Seconds()
	hw := float64(reqs[1]) / wall[1].Seconds()
	b.ReportMetric(cg, "cachegen-req/s")
	b.ReportMetric(hw, "handwritten-req/s")
	b.ReportMetric(cg/hw, "ratio")
	// Client CPU per request (this process, user + system) is far less
	// sensitive to what else runs on the machine than wall time.
	b.ReportMetric(float64(cpu[0].Microseconds())/float64(reqs[0]), "cachegen-cpu-µs/req")
	b.ReportMetric(float64(cpu[1].Microseconds())/float64(reqs[1]), "handwritten-cpu-µs/req")
}

// processCPU is the CPU time this process has used (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
