// Package cacheprom exports the statistics of runtime.Caches as Prometheus
// metrics: a prometheus.Collector that reads Cache.Snapshot at each scrape,
// so the hit path does nothing for it (the counters it reads are the ones
// the runtime keeps anyway).
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(cacheprom.NewCollector(cache))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Per keyspace (labels namespace, repo, method — the get method, or the key
// template when the Spec names no method) it exports counters
// cachegen_hits_total, cachegen_negative_hits_total, cachegen_local_hits_total,
// cachegen_misses_total, cachegen_loads_total, cachegen_load_errors_total,
// cachegen_fills_total, cachegen_fills_rejected_total,
// cachegen_lease_waits_total, cachegen_lease_timeouts_total,
// cachegen_fallbacks_total{reason="redis_error"|"breaker_open"},
// cachegen_corrupt_entries_total, cachegen_keyspace_invalidations_total,
// cachegen_verified_reads_total, cachegen_inconsistent_reads_total,
// cachegen_stale_hits_total, cachegen_refreshes_total,
// cachegen_refresh_errors_total, and the
// histograms cachegen_source_load_duration_seconds and
// cachegen_redis_lookup_duration_seconds. Per Cache (label namespace):
// cachegen_invalidations_total, cachegen_redis_errors_total,
// cachegen_breaker_transitions_total{to}, cachegen_local_gaps_total, and the
// gauges cachegen_breaker_state{state} (1 for the current state),
// cachegen_pending_invalidations, cachegen_local_entries and
// cachegen_local_bytes.
package cacheprom

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cachegen/cachegen/runtime"
)

// Collector is a prometheus.Collector over one or more Caches (one per
// namespace; several Caches of one namespace are summed).
type Collector struct {
	caches []*runtime.Cache

	ksCounters []ksCounter
	loadHist   *prometheus.Desc
	redisHist  *prometheus.Desc
	cacheCtrs  []cacheCounter
	breaker    *prometheus.Desc
	pending    *prometheus.Desc
	localN     *prometheus.Desc
	localBytes *prometheus.Desc
}

type ksCounter struct {
	kind runtime.EventKind
	desc *prometheus.Desc
	lv   string // value of the extra label, if the desc has one
}

type cacheCounter struct {
	kind runtime.EventKind
	desc *prometheus.Desc
	lv   string
}

var ksLabels = []string{"namespace", "repo", "method"}

// NewCollector returns a Collector of the given Caches.
func NewCollector(caches ...*runtime.Cache) *Collector {
	c := &Collector{}
	for _, cache := range caches {
		if cache != nil && !slices.Contains(c.caches, cache) {
			c.caches = append(c.caches, cache)
		}
	}
	counter := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc("cachegen_"+name, help, append(append([]string{}, ksLabels...), extra...), nil)
	}
	fallbacks := counter("fallbacks_total", "Reads served from the source without the cache: the Redis lookup failed (redis_error) or the circuit breaker was open (breaker_open).", "reason")
	c.ksCounters = []ksCounter{
		{runtime.EventHit, counter("hits_total", "Reads served from a positive Redis entry."), ""},
		{runtime.EventNegativeHit, counter("negative_hits_total", "Reads served from a negative entry (nil or not-found)."), ""},
		{runtime.EventLocalHit, counter("local_hits_total", "Reads served from this process's memory (the L1 of local= keyspaces)."), ""},
		{runtime.EventMiss, counter("misses_total", "Reads that found no usable entry and went on to load."), ""},
		{runtime.EventLoad, counter("loads_total", "Calls of the source."), ""},
		{runtime.EventLoadError, counter("load_errors_total", "Source calls that returned an error other than the not-found sentinel."), ""},
		{runtime.EventFill, counter("fills_total", "Loaded values stored in Redis."), ""},
		{runtime.EventFillRejected, counter("fills_rejected_total", "Fills refused: the lease was lost or an invalidation raced the load."), ""},
		{runtime.EventLeaseWait, counter("lease_waits_total", "Reads that waited for another loader's value."), ""},
		{runtime.EventLeaseTimeout, counter("lease_timeouts_total", "Waiters that gave up and called the source themselves."), ""},
		{runtime.EventFallback, fallbacks, "redis_error"},
		{runtime.EventBypass, fallbacks, "breaker_open"},
		{runtime.EventCorrupt, counter("corrupt_entries_total", "Entries that could not be decoded (deleted)."), ""},
		{runtime.EventInvalidate, counter("keyspace_invalidations_total", "Delivered invalidations that named a key or the pattern group of the keyspace."), ""},
		{runtime.EventVerified, counter("verified_reads_total", "Hits re-read from the source by the consistency checker (WithVerify)."), ""},
		{runtime.EventInconsistent, counter("inconsistent_reads_total", "Verified hits that differed from the source, also after the re-check."), ""},
		{runtime.EventStale, counter("stale_hits_total", "Hits served past their TTL (stale=) while a reload runs or the source fails."), ""},
		{runtime.EventRefresh, counter("refreshes_total", "Background reloads of a hit's entry that called the source (refresh=, stale=)."), ""},
		{runtime.EventRefreshError, counter("refresh_errors_total", "Background reloads that failed; the cached value is kept until its bound."), ""},
	}
	c.loadHist = prometheus.NewDesc("cachegen_source_load_duration_seconds", "Duration of source calls.", ksLabels, nil)
	c.redisHist = prometheus.NewDesc("cachegen_redis_lookup_duration_seconds", "Duration of the hit path's Redis lookup, as the reader waited for it.", ksLabels, nil)
	ns := []string{"namespace"}
	transitions := prometheus.NewDesc("cachegen_breaker_transitions_total", "Circuit breaker transitions.", []string{"namespace", "to"}, nil)
	c.cacheCtrs = []cacheCounter{
		{runtime.EventInvalidate, prometheus.NewDesc("cachegen_invalidations_total", "Invalidations delivered to Redis (keys, tags, groups, repositories).", ns, nil), ""},
		{runtime.EventRedisError, prometheus.NewDesc("cachegen_redis_errors_total", "Redis calls that failed or timed out.", ns, nil), ""},
		{runtime.EventBreakerOpen, transitions, "open"},
		{runtime.EventBreakerClose, transitions, "closed"},
		{runtime.EventLocalGap, prometheus.NewDesc("cachegen_local_gaps_total", "Losses of the invalidation subscription (each drops the L1).", ns, nil), ""},
	}
	c.breaker = prometheus.NewDesc("cachegen_breaker_state", "Circuit breaker state: 1 for the current one (closed, open, or held open while invalidations wait to be replayed).", []string{"namespace", "state"}, nil)
	c.pending = prometheus.NewDesc("cachegen_pending_invalidations", "Invalidations waiting to be replayed.", ns, nil)
	c.localN = prometheus.NewDesc("cachegen_local_entries", "Values held in the L1.", ns, nil)
	c.localBytes = prometheus.NewDesc("cachegen_local_bytes", "Weight of the values held in the L1 (keys and encoded payloads).", ns, nil)
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	seen := map[*prometheus.Desc]bool{}
	for _, k := range c.ksCounters {
		if !seen[k.desc] {
			seen[k.desc] = true
			ch <- k.desc
		}
	}
	for _, k := range c.cacheCtrs {
		if !seen[k.desc] {
			seen[k.desc] = true
			ch <- k.desc
		}
	}
	for _, d := range []*prometheus.Desc{c.loadHist, c.redisHist, c.breaker, c.pending, c.localN, c.localBytes} {
		ch <- d
	}
}

type ksID struct{ ns, repo, method string }

type ksAgg struct {
	stats       runtime.Stats
	load, redis runtime.Histogram
}

type cacheAgg struct {
	stats   runtime.Stats
	breaker runtime.BreakerState
	pending int
	local   runtime.LocalState
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	keyspaces := map[ksID]*ksAgg{}
	var order []ksID
	caches := map[string]*cacheAgg{}
	var nsOrder []string
	for _, cache := range c.caches {
		s := cache.Snapshot()
		ca := caches[s.Namespace]
		if ca == nil {
			ca = &cacheAgg{}
			caches[s.Namespace] = ca
			nsOrder = append(nsOrder, s.Namespace)
		}
		for i, n := range s.Totals {
			ca.stats[i] += n
		}
		ca.breaker = max(ca.breaker, s.Breaker)
		ca.pending += s.PendingInvalidations
		ca.local.Entries += s.Local.Entries
		ca.local.Bytes += s.Local.Bytes
		for _, k := range s.Keyspaces {
			m := k.Method
			if m == "" {
				m = k.Template
			}
			id := ksID{s.Namespace, k.Repo, m}
			a := keyspaces[id]
			if a == nil {
				a = &ksAgg{}
				keyspaces[id] = a
				order = append(order, id)
			}
			for i, n := range k.Stats {
				a.stats[i] += n
			}
			addHist(&a.load, k.LoadLatency)
			addHist(&a.redis, k.RedisLatency)
		}
	}
	for _, id := range order {
		a := keyspaces[id]
		for _, k := range c.ksCounters {
			lvs := []string{id.ns, id.repo, id.method}
			if k.lv != "" {
				lvs = append(lvs, k.lv)
			}
			ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(a.stats.Get(k.kind)), lvs...)
		}
		ch <- histogram(c.loadHist, a.load, id.ns, id.repo, id.method)
		ch <- histogram(c.redisHist, a.redis, id.ns, id.repo, id.method)
	}
	for _, ns := range nsOrder {
		a := caches[ns]
		for _, k := range c.cacheCtrs {
			lvs := []string{ns}
			if k.lv != "" {
				lvs = append(lvs, k.lv)
			}
			ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(a.stats.Get(k.kind)), lvs...)
		}
		for _, st := range []runtime.BreakerState{runtime.BreakerClosed, runtime.BreakerOpen, runtime.BreakerHeld} {
			v := 0.0
			if st == a.breaker {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.breaker, prometheus.GaugeValue, v, ns, st.String())
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(a.pending), ns)
		ch <- prometheus.MustNewConstMetric(c.localN, prometheus.GaugeValue, float64(a.local.Entries), ns)
		ch <- prometheus.MustNewConstMetric(c.localBytes, prometheus.GaugeValue, float64(a.local.Bytes), ns)
	}
}

func addHist(dst *runtime.Histogram, h runtime.Histogram) {
	for i, n := range h.Counts {
		dst.Counts[i] += n
	}
	dst.Sum += h.Sum
}

// histogram turns a runtime.Histogram into Prometheus's cumulative buckets.
func histogram(d *prometheus.Desc, h runtime.Histogram, lvs ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(runtime.LatencyBounds))
	var cum uint64
	for i, b := range runtime.LatencyBounds {
		cum += h.Counts[i]
		buckets[b.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count(), h.Sum.Seconds(), buckets, lvs...)
}
