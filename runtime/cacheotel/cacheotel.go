// Package cacheotel exports the statistics of runtime.Caches as
// OpenTelemetry metrics through the metric API (go.opentelemetry.io/otel/metric):
// counters and gauges are observed from Cache.Snapshot at each collection;
// the latency histograms are recorded as events arrive (AddObserver), since
// OpenTelemetry has no asynchronous histogram.
//
//	reg, err := cacheotel.Register(otel.Meter("github.com/cachegen/cachegen"), cache)
//	defer reg.Unregister()
//
// Names follow OpenTelemetry's conventions: dotted lowercase names, units in
// UCUM ("s", "By", "{lookup}"), no _total suffix, attributes
// cachegen.namespace, cachegen.repo and cachegen.method on every keyspace
// metric:
//
//	cachegen.lookups            counter {lookup}       cachegen.lookup.result = hit | negative_hit | local_hit | miss | fallback | bypass
//	cachegen.source.calls       counter {call}
//	cachegen.source.errors      counter {error}
//	cachegen.fills              counter {fill}         cachegen.fill.result = stored | rejected
//	cachegen.lease.waits        counter {wait}
//	cachegen.lease.timeouts     counter {timeout}
//	cachegen.entries.corrupt    counter {entry}
//	cachegen.keyspace.invalidations counter {invalidation}
//	cachegen.verify.checks      counter {check}
//	cachegen.verify.inconsistencies counter {inconsistency}
//	cachegen.source.duration    histogram s
//	cachegen.redis.lookup.duration histogram s
//
// and per Cache (cachegen.namespace): cachegen.invalidations {invalidation},
// cachegen.redis.errors {error}, cachegen.breaker.transitions {transition}
// (cachegen.breaker.state = open | closed), cachegen.local.gaps {gap}, and the
// gauges cachegen.breaker.state (1 for the current cachegen.breaker.state),
// cachegen.invalidations.pending {invalidation}, cachegen.local.entries
// {entry} and cachegen.local.size By.
package cacheotel

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cachegen/cachegen/runtime"
)

type counterDef struct {
	name, unit, desc string
	kind             runtime.EventKind
	attr             attribute.KeyValue // extra attribute, if any
}

var keyspaceCounters = []counterDef{
	{"cachegen.lookups", "{lookup}", "Reads by how they were served.", runtime.EventHit, attribute.String("cachegen.lookup.result", "hit")},
	{"cachegen.lookups", "{lookup}", "", runtime.EventNegativeHit, attribute.String("cachegen.lookup.result", "negative_hit")},
	{"cachegen.lookups", "{lookup}", "", runtime.EventLocalHit, attribute.String("cachegen.lookup.result", "local_hit")},
	{"cachegen.lookups", "{lookup}", "", runtime.EventMiss, attribute.String("cachegen.lookup.result", "miss")},
	{"cachegen.lookups", "{lookup}", "", runtime.EventFallback, attribute.String("cachegen.lookup.result", "fallback")},
	{"cachegen.lookups", "{lookup}", "", runtime.EventBypass, attribute.String("cachegen.lookup.result", "bypass")},
	{"cachegen.source.calls", "{call}", "Calls of the source.", runtime.EventLoad, attribute.KeyValue{}},
	{"cachegen.source.errors", "{error}", "Source calls that returned an error other than the not-found sentinel.", runtime.EventLoadError, attribute.KeyValue{}},
	{"cachegen.fills", "{fill}", "Loaded values stored in Redis, or refused (lease lost, an invalidation raced the load).", runtime.EventFill, attribute.String("cachegen.fill.result", "stored")},
	{"cachegen.fills", "{fill}", "", runtime.EventFillRejected, attribute.String("cachegen.fill.result", "rejected")},
	{"cachegen.lease.waits", "{wait}", "Reads that waited for another loader's value.", runtime.EventLeaseWait, attribute.KeyValue{}},
	{"cachegen.lease.timeouts", "{timeout}", "Waiters that gave up and called the source themselves.", runtime.EventLeaseTimeout, attribute.KeyValue{}},
	{"cachegen.entries.corrupt", "{entry}", "Entries that could not be decoded (deleted).", runtime.EventCorrupt, attribute.KeyValue{}},
	{"cachegen.keyspace.invalidations", "{invalidation}", "Delivered invalidations that named a key or the pattern group of the keyspace.", runtime.EventInvalidate, attribute.KeyValue{}},
	{"cachegen.verify.checks", "{check}", "Hits re-read from the source by the consistency checker.", runtime.EventVerified, attribute.KeyValue{}},
	{"cachegen.verify.inconsistencies", "{inconsistency}", "Verified hits that differed from the source, also after the re-check.", runtime.EventInconsistent, attribute.KeyValue{}},
	{"cachegen.stale_hits", "{hit}", "Hits served past their TTL (stale=) while a reload runs or the source fails.", runtime.EventStale, attribute.KeyValue{}},
	{"cachegen.refreshes", "{refresh}", "Background reloads of a hit's entry (refresh=, stale=), by outcome.", runtime.EventRefresh, attribute.String("cachegen.refresh.result", "started")},
	{"cachegen.refreshes", "{refresh}", "", runtime.EventRefreshError, attribute.String("cachegen.refresh.result", "failed")},
}

var cacheCounters = []counterDef{
	{"cachegen.invalidations", "{invalidation}", "Invalidations delivered to Redis.", runtime.EventInvalidate, attribute.KeyValue{}},
	{"cachegen.redis.errors", "{error}", "Redis calls that failed or timed out.", runtime.EventRedisError, attribute.KeyValue{}},
	{"cachegen.breaker.transitions", "{transition}", "Circuit breaker transitions.", runtime.EventBreakerOpen, attribute.String("cachegen.breaker.state", "open")},
	{"cachegen.breaker.transitions", "{transition}", "", runtime.EventBreakerClose, attribute.String("cachegen.breaker.state", "closed")},
	{"cachegen.local.gaps", "{gap}", "Losses of the invalidation subscription (each drops the L1).", runtime.EventLocalGap, attribute.KeyValue{}},
}

// Register observes the caches on meter until the Registration is
// unregistered.
func Register(meter metric.Meter, caches ...*runtime.Cache) (metric.Registration, error) {
	counters := map[string]metric.Int64ObservableCounter{}
	var observables []metric.Observable
	counter := func(d counterDef) error {
		if _, ok := counters[d.name]; ok {
			return nil
		}
		desc := d.desc
		c, err := meter.Int64ObservableCounter(d.name, metric.WithUnit(d.unit), metric.WithDescription(desc))
		if err != nil {
			return err
		}
		counters[d.name] = c
		observables = append(observables, c)
		return nil
	}
	for _, d := range append(append([]counterDef{}, keyspaceCounters...), cacheCounters...) {
		if err := counter(d); err != nil {
			return nil, err
		}
	}
	breaker, err := meter.Int64ObservableGauge("cachegen.breaker.state", metric.WithUnit("1"),
		metric.WithDescription("Circuit breaker state: 1 for the current one (closed, open, or held open while invalidations wait to be replayed)."))
	if err != nil {
		return nil, err
	}
	pending, err := meter.Int64ObservableUpDownCounter("cachegen.invalidations.pending", metric.WithUnit("{invalidation}"),
		metric.WithDescription("Invalidations waiting to be replayed."))
	if err != nil {
		return nil, err
	}
	localN, err := meter.Int64ObservableUpDownCounter("cachegen.local.entries", metric.WithUnit("{entry}"),
		metric.WithDescription("Values held in the L1."))
	if err != nil {
		return nil, err
	}
	localB, err := meter.Int64ObservableUpDownCounter("cachegen.local.size", metric.WithUnit("By"),
		metric.WithDescription("Weight of the values held in the L1 (keys and encoded payloads)."))
	if err != nil {
		return nil, err
	}
	observables = append(observables, breaker, pending, localN, localB)

	bounds := make([]float64, len(runtime.LatencyBounds))
	for i, b := range runtime.LatencyBounds {
		bounds[i] = b.Seconds()
	}
	loadH, err := meter.Float64Histogram("cachegen.source.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of source calls."), metric.WithExplicitBucketBoundaries(bounds...))
	if err != nil {
		return nil, err
	}
	redisH, err := meter.Float64Histogram("cachegen.redis.lookup.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of the hit path's Redis lookup, as the reader waited for it."), metric.WithExplicitBucketBoundaries(bounds...))
	if err != nil {
		return nil, err
	}

	var seen []*runtime.Cache
	r := &registration{}
	for _, c := range caches {
		if c == nil || contains(seen, c) {
			continue
		}
		seen = append(seen, c)
		ns := c.Snapshot().Namespace
		o := &observer{r: r, ns: attribute.String("cachegen.namespace", ns), load: loadH, redis: redisH}
		c.AddObserver(o.observe)
	}
	reg, err := meter.RegisterCallback(func(ctx context.Context, obs metric.Observer) error {
		for _, c := range seen {
			s := c.Snapshot()
			ns := attribute.String("cachegen.namespace", s.Namespace)
			for _, k := range s.Keyspaces {
				base := []attribute.KeyValue{ns, attribute.String("cachegen.repo", k.Repo), attribute.String("cachegen.method", method(k))}
				for _, d := range keyspaceCounters {
					obs.ObserveInt64(counters[d.name], int64(k.Stats.Get(d.kind)), metric.WithAttributes(with(base, d.attr)...))
				}
			}
			for _, d := range cacheCounters {
				obs.ObserveInt64(counters[d.name], int64(s.Totals.Get(d.kind)), metric.WithAttributes(with([]attribute.KeyValue{ns}, d.attr)...))
			}
			for _, st := range []runtime.BreakerState{runtime.BreakerClosed, runtime.BreakerOpen, runtime.BreakerHeld} {
				v := int64(0)
				if st == s.Breaker {
					v = 1
				}
				obs.ObserveInt64(breaker, v, metric.WithAttributes(ns, attribute.String("cachegen.breaker.state", st.String())))
			}
			obs.ObserveInt64(pending, int64(s.PendingInvalidations), metric.WithAttributes(ns))
			obs.ObserveInt64(localN, int64(s.Local.Entries), metric.WithAttributes(ns))
			obs.ObserveInt64(localB, int64(s.Local.Bytes), metric.WithAttributes(ns))
		}
		return nil
	}, observables...)
	if err != nil {
		return nil, err
	}
	r.Registration = reg
	return r, nil
}

type registration struct {
	metric.Registration
	stopped atomic.Bool
}

// Unregister stops the callbacks and the latency recording.
func (r *registration) Unregister() error {
	r.stopped.Store(true)
	return r.Registration.Unregister()
}

// observer records the latencies of one Cache's events.
type observer struct {
	r           *registration
	ns          attribute.KeyValue
	load, redis metric.Float64Histogram
	opts        sync.Map // Event.Keyspace → []metric.RecordOption (its attribute set, made once)
}

func (o *observer) observe(e runtime.Event) {
	if e.Duration <= 0 || o.r.stopped.Load() {
		return
	}
	var h metric.Float64Histogram
	switch e.Kind {
	case runtime.EventLoad:
		h = o.load
	case runtime.EventHit, runtime.EventNegativeHit, runtime.EventMiss:
		h = o.redis
	default:
		return
	}
	opts, ok := o.opts.Load(e.Keyspace)
	if !ok {
		m := e.Method
		if m == "" {
			m = e.Template
		}
		set := attribute.NewSet(o.ns, attribute.String("cachegen.repo", e.Repo), attribute.String("cachegen.method", m))
		opts, _ = o.opts.LoadOrStore(e.Keyspace, []metric.RecordOption{metric.WithAttributeSet(set)})
	}
	h.Record(context.Background(), e.Duration.Seconds(), opts.([]metric.RecordOption)...)
}

func method(k runtime.KeyspaceStats) string {
	if k.Method != "" {
		return k.Method
	}
	return k.Template
}

func with(base []attribute.KeyValue, extra attribute.KeyValue) []attribute.KeyValue {
	out := append([]attribute.KeyValue{}, base...)
	if extra.Key != "" {
		out = append(out, extra)
	}
	return out
}

func contains(cs []*runtime.Cache, c *runtime.Cache) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}
