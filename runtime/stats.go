package runtime

import (
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Per-keyspace statistics (docs/observability.md). Every keyspace event is
// one atomic add on a counter the Keyspace holds a pointer to: no map
// lookup, no label formatting and no allocation per hit. Cache-wide events
// (invalidations, Redis errors, the breaker, the subscription) are counted
// on the Cache. Cache.Stats sums both; Cache.Snapshot lists them.

// ksStats is the identity and the counters of one keyspace, shared by every
// Keyspace of one Cache with the same repository, template and schema.
type ksStats struct {
	name     string // "<prefix>:<version>/<template>", for logs and Event.Keyspace
	repo     string // Repo.Name(): "<prefix>:<version>", escaped
	prefix   string // the repository prefix as given
	version  int
	template string
	method   string
	local    bool

	n     [numEvents]atomic.Uint64
	load  histogram // source calls
	redis histogram // Redis lookups (the hit path's round trip, as the reader waited for it)
}

// String and LogValue make a keyspace print as its name in logs.
func (l *ksStats) String() string { return l.name }

// LogValue implements slog.LogValuer.
func (l *ksStats) LogValue() slog.Value { return slog.StringValue(l.name) }

// registry lists the keyspaces of a Cache, for Stats and Snapshot and for
// attributing invalidations (on the write path, where a map lookup is fine).
type registry struct {
	mu       sync.Mutex
	all      []*ksStats
	byPrefix map[string]*ksStats // by the key prefix "<ns>e:{<repo>:<ksid>:"
	byGroup  map[uint64]*ksStats
}

// register returns the stats of the keyspace with this key prefix, creating
// them on its first NewKeyspace.
func (r *registry) register(prefix string, group uint64, mk func() *ksStats) *ksStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.byPrefix[prefix]; ok {
		return l
	}
	if r.byPrefix == nil {
		r.byPrefix, r.byGroup = map[string]*ksStats{}, map[uint64]*ksStats{}
	}
	l := mk()
	r.byPrefix[prefix], r.byGroup[group] = l, l
	r.all = append(r.all, l)
	return l
}

func (r *registry) list() []*ksStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// ofKey finds the keyspace of an entry key: its prefix ends at the third
// colon after "e:{" (repository prefix, version and keyspace id never hold
// one: they are escaped or base64url).
func (r *registry) ofKey(ns string, k Key) *ksStats {
	s := string(k)
	if !strings.HasPrefix(s, ns+"e:{") {
		return nil
	}
	end, colons := len(ns)+3, 0
	for ; end < len(s) && colons < 3; end++ {
		if s[end] == ':' {
			colons++
		}
	}
	if colons < 3 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byPrefix[s[:end]]
}

func (r *registry) ofGroup(g uint64) *ksStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byGroup[g]
}

// countInvalidation counts one delivered invalidation: on the Cache, and
// on every keyspace whose keys or group it named.
func (c *Cache) countInvalidation(keys []Key, groups []uint64) {
	c.stats[EventInvalidate].Add(1)
	var seen []*ksStats
	add := func(l *ksStats) {
		if l != nil && !slices.Contains(seen, l) {
			seen = append(seen, l)
			l.n[EventInvalidate].Add(1)
		}
	}
	for _, k := range keys {
		add(c.reg.ofKey(c.ns, k))
	}
	for _, g := range groups {
		add(c.reg.ofGroup(g))
	}
	if o := c.observer.Load(); o != nil {
		(*o)(Event{Kind: EventInvalidate})
	}
}

// Latency histograms: fixed bounds, one atomic add per observation.

// LatencyBounds are the upper bounds of the latency histograms' buckets
// (the last bucket, past them, is unbounded).
var LatencyBounds = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

type histogram struct {
	buckets [len(LatencyBounds) + 1]atomic.Uint64
	sum     atomic.Int64 // ns
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

// Histogram is a snapshot of a latency histogram. Counts[i] is the number
// of observations at most LatencyBounds[i] and above the bound before it;
// the last count is of those above every bound (not cumulative).
type Histogram struct {
	Counts [len(LatencyBounds) + 1]uint64
	Sum    time.Duration
}

// Count is the number of observations.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Mean is Sum / Count (0 without observations).
func (h Histogram) Mean() time.Duration {
	if n := h.Count(); n > 0 {
		return h.Sum / time.Duration(n)
	}
	return 0
}

// Quantile estimates the q-quantile (0 < q ≤ 1) by linear interpolation
// within the bucket it falls in (as Prometheus's histogram_quantile does).
// Past the last bound it returns the last bound.
func (h Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := min(max(q, 0), 1) * float64(n)
	var seen float64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			if i == len(LatencyBounds) {
				return LatencyBounds[i-1]
			}
			lo := time.Duration(0)
			if i > 0 {
				lo = LatencyBounds[i-1]
			}
			frac := (rank - seen) / float64(c)
			return lo + time.Duration(frac*float64(LatencyBounds[i]-lo))
		}
		seen += float64(c)
	}
	return LatencyBounds[len(LatencyBounds)-1]
}

func (h *histogram) snapshot() Histogram {
	var s Histogram
	for i := range h.buckets {
		s.Counts[i] = h.buckets[i].Load()
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Snapshot is the Cache's state for exporters and the health page: a copy,
// safe to keep and to range over.
type Snapshot struct {
	Time      time.Time
	Namespace string // as given to WithNamespace
	Totals    Stats  // Cache.Stats(): cache-wide events and the sum of every keyspace's
	Keyspaces []KeyspaceStats
	Breaker   BreakerState
	// PendingInvalidations is the number of invalidations waiting to be
	// replayed (Redis could not take them); PendingOverflow is set when
	// they collapsed into one namespace invalidation.
	PendingInvalidations int
	PendingOverflow      bool
	// Local reports the two-level cache: whether it exists and its
	// subscription is live, and its size.
	Local LocalState
	// Verify is the fraction of hits WithVerify re-reads (0: off);
	// VerifyCalls the source calls the checker made (they reach the
	// source like loads do), VerifyDropped the sampled hits it skipped (its
	// queue was full, or too many mismatches waited for their re-check).
	Verify        float64
	VerifyCalls   uint64
	VerifyDropped uint64
}

// KeyspaceStats are the counters and latencies of one keyspace.
type KeyspaceStats struct {
	Repo     string // the repository prefix ("articles")
	Version  int
	Template string // "article:{}"
	Method   string // the get method, when the generated code names it ("Get")
	Local    bool   // has an L1 (local=)
	Stats    Stats  // the keyspace's events (cache-wide kinds are 0)
	// LoadLatency is the duration of source calls; RedisLatency that of the
	// hit path's Redis round trip as the reader waited for it. Both are
	// empty under WithMetrics(false).
	LoadLatency  Histogram
	RedisLatency Histogram
}

// Name is "<repo>:<version>/<template>", as Event.Keyspace spells it.
func (k KeyspaceStats) Name() string {
	return string(AppendString(nil, k.Repo)) + ":" + itoa10(k.Version) + "/" + k.Template
}

// BreakerState is the circuit breaker's state.
type BreakerState uint8

// The breaker's states.
const (
	BreakerClosed BreakerState = iota // Redis is used
	BreakerOpen                       // Redis is failing: reads go to the source, one probe per cooldown
	BreakerHeld                       // invalidations wait to be replayed: reads go to the source until they are delivered
)

func (b BreakerState) String() string {
	switch b {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHeld:
		return "held"
	}
	return "unknown"
}

// LocalState describes the L1.
type LocalState struct {
	Enabled bool   // some keyspace has local=
	Live    bool   // its invalidation subscription is live (the L1 may serve)
	Entries int    // values held
	Bytes   uint64 // their weight (key and encoded payload)
}

// Snapshot returns the Cache's counters per keyspace, latencies and state.
// It takes a few locks briefly and allocates; call it from a scrape or a
// health check, not per request.
func (c *Cache) Snapshot() Snapshot {
	s := Snapshot{Time: time.Now(), Namespace: c.cfg.namespace, Verify: c.cfg.verify,
		VerifyCalls: c.verify.calls.Load(), VerifyDropped: c.verify.dropped.Load()}
	for i := range c.stats {
		s.Totals[i] = c.stats[i].Load()
	}
	for _, l := range c.reg.list() {
		k := KeyspaceStats{Repo: l.prefix, Version: l.version, Template: l.template, Method: l.method, Local: l.local,
			LoadLatency: l.load.snapshot(), RedisLatency: l.redis.snapshot()}
		for i := range l.n {
			k.Stats[i] = l.n[i].Load()
		}
		s.Totals.add(&k.Stats)
		s.Keyspaces = append(s.Keyspaces, k)
	}
	s.Breaker = c.brk.state()
	c.pend.mu.Lock()
	s.PendingInvalidations, s.PendingOverflow = c.pend.count, c.pend.overflow
	c.pend.mu.Unlock()
	if l := c.l1.Load(); l != nil {
		s.Local = LocalState{Enabled: true, Live: l.sub.liveGen() != 0,
			Entries: l.store.EstimatedSize(), Bytes: l.store.WeightedSize()}
	}
	return s
}

// state reports the breaker's state.
func (b *breaker) state() BreakerState {
	if !b.open.Load() {
		return BreakerClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open.Load():
		return BreakerClosed
	case b.held:
		return BreakerHeld
	}
	return BreakerOpen
}

func itoa10(i int) string { return string(AppendInt(nil, int64(i))) }

// counted records one source call of the keyspace: EventLoad, its
// duration, and EventLoadError when it failed (the not-found sentinel is an
// answer, not a failure).
func counted[V any](ks *keyspace[V], err error, d time.Duration) {
	l := ks.label
	l.n[EventLoad].Add(1)
	l.load.observe(d)
	failed := err != nil && !isNotFound(ks, err)
	if failed {
		l.n[EventLoadError].Add(1)
	}
	if o := ks.c.observer.Load(); o != nil {
		(*o)(l.event(EventLoad, err, d))
		if failed {
			(*o)(l.event(EventLoadError, err, d))
		}
	}
}

// add sums a keyspace's counts into cache-wide totals. Invalidations are
// counted on the Cache already: a keyspace's are the ones that named it.
func (s *Stats) add(k *Stats) {
	for i, n := range k {
		if EventKind(i) != EventInvalidate {
			s[i] += n
		}
	}
}
