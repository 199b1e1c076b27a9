package cacheprom_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/cachegen/cachegen/runtime"
	"github.com/cachegen/cachegen/runtime/cacheprom"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type item struct{ ID int64 }

var errMissing = errors.New("missing")

// get is what generated code does for a get method.
func get(ctx context.Context, ks *runtime.Keyspace[*item], id int64) (*item, error) {
	var buf [64]byte
	rd := runtime.LookupBytes(ctx, ks, runtime.AppendInt(append(ks.AppendPrefix(buf[:0]), "item:"...), id))
	if rd.Hit && !rd.Background {
		return rd.Value, rd.Err
	}
	return runtime.Load(ctx, rd, runtime.Loader[*item]{Load: func(context.Context) (*item, error) {
		if id < 0 {
			return nil, errMissing
		}
		return &item{ID: id}, nil
	}})
}

func newCache(t *testing.T) (*runtime.Cache, string) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	ns := "prom-" + hex.EncodeToString(b[:])
	c := runtime.New(rdb, runtime.WithNamespace(ns), runtime.WithTimeout(2*time.Second),
		runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(func() { c.Close() })
	return c, ns
}

func TestCollector(t *testing.T) {
	c, ns := newCache(t)
	ks := runtime.NewKeyspace(c.Repo("items", 1), runtime.Spec[*item]{Template: "item:{}", Schema: "s", TTL: time.Minute,
		Negative: time.Minute, NotFound: errMissing, IsNil: func(v *item) bool { return v == nil }, Method: "Get"})
	ctx := context.Background()
	for range 3 { // a miss and two hits
		if _, err := get(ctx, ks, 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the fill lands off the caller's path
	}
	for range 2 { // a miss and a negative hit
		if _, err := get(ctx, ks, -1); !errors.Is(err, errMissing) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Invalidate(ctx, runtime.Invalidation{Tags: []string{"t"}}); err != nil {
		t.Fatal(err)
	}

	col := cacheprom.NewCollector(c)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	lbl := `method="Get",namespace="` + ns + `",repo="items"`
	want := `
# HELP cachegen_hits_total Reads served from a positive Redis entry.
# TYPE cachegen_hits_total counter
cachegen_hits_total{` + lbl + `} 2
# HELP cachegen_misses_total Reads that found no usable entry and went on to load.
# TYPE cachegen_misses_total counter
cachegen_misses_total{` + lbl + `} 2
# HELP cachegen_negative_hits_total Reads served from a negative entry (nil or not-found).
# TYPE cachegen_negative_hits_total counter
cachegen_negative_hits_total{` + lbl + `} 1
# HELP cachegen_loads_total Calls of the source.
# TYPE cachegen_loads_total counter
cachegen_loads_total{` + lbl + `} 2
# HELP cachegen_fills_total Loaded values stored in Redis.
# TYPE cachegen_fills_total counter
cachegen_fills_total{` + lbl + `} 2
# HELP cachegen_invalidations_total Invalidations delivered to Redis (keys, tags, groups, repositories).
# TYPE cachegen_invalidations_total counter
cachegen_invalidations_total{namespace="` + ns + `"} 1
# HELP cachegen_breaker_state Circuit breaker state: 1 for the current one (closed, open, or held open while invalidations wait to be replayed).
# TYPE cachegen_breaker_state gauge
cachegen_breaker_state{namespace="` + ns + `",state="closed"} 1
cachegen_breaker_state{namespace="` + ns + `",state="held"} 0
cachegen_breaker_state{namespace="` + ns + `",state="open"} 0
`
	names := []string{"cachegen_hits_total", "cachegen_misses_total", "cachegen_negative_hits_total", "cachegen_loads_total",
		"cachegen_fills_total", "cachegen_invalidations_total", "cachegen_breaker_state"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(col, "cachegen_source_load_duration_seconds", "cachegen_redis_lookup_duration_seconds"); n != 2 {
		t.Errorf("%d latency histograms, want 2", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "cachegen_redis_lookup_duration_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 5 || h.GetSampleSum() <= 0 {
			t.Errorf("redis lookup histogram: %d samples, sum %v; want 5 lookups", h.GetSampleCount(), h.GetSampleSum())
		}
	}
}

// TestCollectorMultipleCaches: one series per namespace, a Cache listed
// twice counted once.
func TestCollectorMultipleCaches(t *testing.T) {
	a, _ := newCache(t)
	b, _ := newCache(t)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cacheprom.NewCollector(a, b, a))
	for _, c := range []*runtime.Cache{a, b} {
		ks := runtime.NewKeyspace(c.Repo("items", 1), runtime.Spec[*item]{Template: "item:{}", Schema: "s", TTL: time.Minute})
		if _, err := get(context.Background(), ks, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "cachegen_misses_total"); err != nil || n != 2 {
		t.Errorf("%d miss series (%v), want 2 (two namespaces)", n, err)
	}
}
