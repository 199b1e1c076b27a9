package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Memory per entry: each contender fills memoryEntries users (the User of
// MemUsers: the same fields and sizes as a bench_users row) into a private,
// flushed redis-server, and the benchmark reports
//
//	B/entry     (used_memory after - before) / memoryEntries: keys, values,
//	            TTLs, the keyspace's hash tables, and whatever else the
//	            contender stores per entry (markers, leases left behind)
//	keys/entry  (DBSIZE after - before) / memoryEntries
//
// hand-written cache-aside (SET key msgpack EX ttl) is the baseline. One
// iteration is one complete measurement; make bench runs it once
// (-benchtime=1x), and its ns/op is the time of one fill (8 goroutines, an
// in-memory source), not a figure to compare. Both readings are taken with
// no contender connection open, after a warm-up fill of one entry (scripts
// loaded, per-namespace keys made), so only per-entry memory remains.
const memoryEntries = 20_000

var memoryContenders = []string{"handwritten", "goredis-cache", "cachegen"}

func BenchmarkMemory(b *testing.B) {
	srv, err := startRedisServer()
	if err != nil {
		b.Skipf("bench: skipped: %v", err)
	}
	defer srv.stop()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	for _, name := range memoryContenders {
		b.Run(name, func(b *testing.B) {
			if name == "cachegen" && newCachegen == nil {
				b.Skipf("bench: %s skipped: the generated repository (users_cache.go) is missing; run `go generate` in bench/", name)
			}
			var bytes, keys float64
			n := 0
			for b.Loop() {
				mb, mk := measureMemory(b, srv.Addr, admin, name)
				bytes += mb
				keys += mk
				n++
			}
			b.ReportMetric(bytes/float64(n), "B/entry")
			b.ReportMetric(keys/float64(n), "keys/entry")
		})
	}
}

// measureMemory flushes the server, fills memoryEntries entries through a
// fresh contender and returns the used_memory and key count per entry. Only
// the fill is timed.
func measureMemory(b *testing.B, addr string, admin *redis.Client, name string) (bytesPerEntry, keysPerEntry float64) {
	b.StopTimer()
	defer b.StartTimer()
	ctx := context.Background()
	if err := admin.FlushAll(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	// Warm-up: one entry through its own client, closed before the first
	// reading, so scripts and per-namespace keys are in "before".
	withContender(b, addr, name, func(c contender, _ *countingMem) {
		for range 2 {
			if _, err := c.Get(ctx, memoryEntries+1); err != nil {
				b.Fatal(err)
			}
		}
	})
	mem0, keys0 := memoryReading(b, admin)
	withContender(b, addr, name, func(c contender, src *countingMem) {
		b.StartTimer()
		fillEntries(b, c, memoryEntries)
		b.StopTimer()
		// A fill may be skipped (cachegen fails open when a call outlives its
		// time budget): read everything again until a pass is all hits.
		for pass := 0; ; pass++ {
			if pass == 5 {
				b.Fatalf("%s: entries still missing after %d passes", name, pass)
			}
			before := src.reads.Load()
			fillEntries(b, c, memoryEntries)
			if src.reads.Load() == before {
				break
			}
		}
	})
	mem1, keys1 := memoryReading(b, admin)
	return float64(mem1-mem0) / memoryEntries, float64(keys1-keys0) / memoryEntries
}

// withContender runs f with the named contender over a new client, then
// closes the client.
func withContender(b *testing.B, addr, name string, f func(c contender, src *countingMem)) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	src := &countingMem{}
	c, ok := contenderOn(rdb, name, src)
	if !ok {
		b.Fatalf("contender %s not available", name)
	}
	f(c, src)
}

// fillEntries reads ids 1..n through c from 8 goroutines.
func fillEntries(b *testing.B, c contender, n int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				id := next.Add(1)
				if id > int64(n) {
					return
				}
				u, err := c.Get(ctx, id)
				if err != nil || u.ID != id {
					b.Errorf("get %d: %v %v", id, u, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// memoryReading waits until the admin connection is the only client (the
// server frees a closed client's buffers when it sees the close) and a
// server cron or two have run (finishing an incremental rehash of the
// keyspace), then returns used_memory and DBSIZE.
func memoryReading(b *testing.B, admin *redis.Client) (usedMemory, keys int64) {
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := admin.Info(ctx, "clients").Result()
		if err != nil {
			b.Fatal(err)
		}
		if v, _ := infoField(info, "connected_clients"); v == "1" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("bench: clients still connected to the memory server after 5s: %s", info)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(250 * time.Millisecond)
	info, err := admin.Info(ctx, "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	v, ok := infoField(info, "used_memory")
	if !ok {
		b.Fatalf("bench: INFO memory without used_memory")
	}
	if usedMemory, err = strconv.ParseInt(v, 10, 64); err != nil {
		b.Fatal(fmt.Errorf("used_memory %q: %v", v, err))
	}
	if keys, err = admin.DBSize(ctx).Result(); err != nil {
		b.Fatal(err)
	}
	return usedMemory, keys
}
