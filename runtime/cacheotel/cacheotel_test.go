package cacheotel_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/cachegen/cachegen/runtime"
	"github.com/cachegen/cachegen/runtime/cacheotel"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type item struct{ ID int64 }

var errMissing = errors.New("missing")

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

func TestRegister(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	ns := "otel-" + hex.EncodeToString(b[:])
	c := runtime.New(rdb, runtime.WithNamespace(ns), runtime.WithTimeout(2*time.Second),
		runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(func() { c.Close() })

	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	reg, err := cacheotel.Register(provider.Meter("github.com/cachegen/cachegen"), c)
	if err != nil {
		t.Fatal(err)
	}
	ks := runtime.NewKeyspace(c.Repo("items", 1), runtime.Spec[*item]{Template: "item:{}", Schema: "s", TTL: time.Minute,
		Negative: time.Minute, NotFound: errMissing, IsNil: func(v *item) bool { return v == nil }, Method: "Get"})
	ctx := context.Background()
	for range 3 {
		if _, err := get(ctx, ks, 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Invalidate(ctx, runtime.Invalidation{Tags: []string{"t"}}); err != nil {
		t.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	metrics := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			metrics[m.Name] = m
		}
	}
	ksAttrs := func(extra ...attribute.KeyValue) attribute.Set {
		return attribute.NewSet(append([]attribute.KeyValue{attribute.String("cachegen.namespace", ns),
			attribute.String("cachegen.repo", "items"), attribute.String("cachegen.method", "Get")}, extra...)...)
	}
	sum := func(name string, attrs attribute.Set) int64 {
		t.Helper()
		m, ok := metrics[name]
		if !ok {
			t.Fatalf("no metric %s", name)
		}
		s, ok := m.Data.(metricdata.Sum[int64])
		if !ok {
			t.Fatalf("%s is %T", name, m.Data)
		}
		for _, dp := range s.DataPoints {
			if dp.Attributes.Equals(&attrs) {
				return dp.Value
			}
		}
		t.Fatalf("%s: no point with %v", name, attrs.ToSlice())
		return 0
	}
	if n := sum("cachegen.lookups", ksAttrs(attribute.String("cachegen.lookup.result", "hit"))); n != 2 {
		t.Errorf("hits = %d, want 2", n)
	}
	if n := sum("cachegen.lookups", ksAttrs(attribute.String("cachegen.lookup.result", "miss"))); n != 1 {
		t.Errorf("misses = %d, want 1", n)
	}
	if n := sum("cachegen.source.calls", ksAttrs()); n != 1 {
		t.Errorf("source calls = %d, want 1", n)
	}
	if n := sum("cachegen.invalidations", attribute.NewSet(attribute.String("cachegen.namespace", ns))); n != 1 {
		t.Errorf("invalidations = %d, want 1", n)
	}
	if m := metrics["cachegen.lookups"]; m.Unit != "{lookup}" || !m.Data.(metricdata.Sum[int64]).IsMonotonic {
		t.Errorf("cachegen.lookups: unit %q", m.Unit)
	}
	g, ok := metrics["cachegen.breaker.state"].Data.(metricdata.Gauge[int64])
	if !ok {
		t.Fatalf("breaker state is %T", metrics["cachegen.breaker.state"].Data)
	}
	for _, dp := range g.DataPoints {
		st, _ := dp.Attributes.Value("cachegen.breaker.state")
		if want := int64(0); st.AsString() == "closed" && dp.Value != 1 || st.AsString() != "closed" && dp.Value != want {
			t.Errorf("breaker state %s = %d", st.AsString(), dp.Value)
		}
	}
	for name, want := range map[string]uint64{"cachegen.source.duration": 1, "cachegen.redis.lookup.duration": 3} {
		m := metrics[name]
		h, ok := m.Data.(metricdata.Histogram[float64])
		if !ok || m.Unit != "s" || len(h.DataPoints) != 1 {
			t.Fatalf("%s: %+v", name, m)
		}
		if dp := h.DataPoints[0]; dp.Count != want || dp.Sum <= 0 || !dp.Attributes.Equals(ptr(ksAttrs())) {
			t.Errorf("%s: %d observations (sum %v, %v), want %d", name, dp.Count, dp.Sum, dp.Attributes.ToSlice(), want)
		}
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
