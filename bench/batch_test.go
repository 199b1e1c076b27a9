package bench

import (
	"context"
	"strconv"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// batchIDs is the width of the batch benchmarks: a page of 100 items.
const batchIDs = 100

// BenchmarkBatch reads 100 warm ids per op: cachegen's batch read (one round
// trip), the same through the L1, 100 sequential cachegen gets, and the
// hand-written MGET + msgpack decode of each (the floor of a Redis batch).
func BenchmarkBatch(b *testing.B) {
	ids := make([]int64, batchIDs)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	name := "ids=" + strconv.Itoa(batchIDs)
	b.Run(name+"/cachegen", func(b *testing.B) { benchBatchCachegen(b, ids, false) })
	b.Run(name+"/cachegen-local", func(b *testing.B) { benchBatchCachegen(b, ids, true) })
	b.Run(name+"/cachegen-sequential", func(b *testing.B) {
		e := getEnv(b)
		c := needContender(b, e, "cachegen", &PGUsers{Pool: e.pool})
		ctx := context.Background()
		for range 2 { // warm, and let the mirror catch up
			for _, id := range ids {
				if _, err := c.Get(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		}
		m := e.newMeter(b)
		b.ReportAllocs()
		m.start()
		b.ResetTimer()
		for b.Loop() {
			for _, id := range ids {
				if u, err := c.Get(ctx, id); err != nil || u.ID != id {
					b.Fatal(u, err)
				}
			}
		}
		b.StopTimer()
		m.report(b, b.N, "op")
	})
	b.Run(name+"/handwritten-mget", func(b *testing.B) {
		e := getEnv(b)
		ctx := context.Background()
		hw := &HandWritten{RDB: e.rdb, Src: &PGUsers{Pool: e.pool}, TTL: ttl, Prefix: "benchhw:batch:"}
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = hw.key(id)
			if _, err := hw.Get(ctx, id); err != nil { // fills
				b.Fatal(err)
			}
		}
		m := e.newMeter(b)
		b.ReportAllocs()
		m.start()
		b.ResetTimer()
		for b.Loop() {
			vals, err := e.rdb.MGet(ctx, keys...).Result()
			if err != nil {
				b.Fatal(err)
			}
			out := make(map[int64]*User, len(ids))
			for i, v := range vals {
				s, ok := v.(string)
				if !ok {
					b.Fatalf("id %d not cached", ids[i])
				}
				u := new(User)
				if err := msgpack.Unmarshal([]byte(s), u); err != nil {
					b.Fatal(err)
				}
				out[ids[i]] = u
			}
			if len(out) != len(ids) {
				b.Fatal(len(out))
			}
		}
		b.StopTimer()
		m.report(b, b.N, "op")
	})
}

func benchBatchCachegen(b *testing.B, ids []int64, local bool) {
	e := getEnv(b)
	src := &PGUsers{Pool: e.pool}
	name := "cachegen"
	if local {
		name = "cachegen-local"
	}
	c := needContender(b, e, name, src).(interface {
		GetMany(ctx context.Context, ids []int64) (map[int64]*User, error)
	})
	ctx := context.Background()
	for range 2 {
		if _, err := c.GetMany(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
	reads := src.Reads.Load()
	m := e.newMeter(b)
	b.ReportAllocs()
	m.start()
	b.ResetTimer()
	for b.Loop() {
		got, err := c.GetMany(ctx, ids)
		if err != nil || len(got) != len(ids) {
			b.Fatal(len(got), err)
		}
	}
	b.StopTimer()
	m.report(b, b.N, "op")
	b.ReportMetric(float64(src.Reads.Load()-reads)/float64(b.N), "src-reads/op")
}
