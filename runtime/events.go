package runtime

import (
	"sync/atomic"
	"time"
)

// EventKind says what happened.
type EventKind uint8

// The events a Cache reports to WithObserver and counts in Stats. Kinds
// about one keyspace are also counted per keyspace (Snapshot); the others
// (invalidations are both) are cache-wide.
const (
	EventHit          EventKind = iota // a positive entry was served
	EventNegativeHit                   // a negative entry (nil or not-found) was served
	EventMiss                          // no usable entry; the caller goes on to load
	EventLoad                          // the source was called
	EventFill                          // a loaded value was stored
	EventFillRejected                  // a fill lost its lease or raced an invalidation
	EventLeaseWait                     // a caller waited for another loader's value
	EventLeaseTimeout                  // a waiter gave up and called the source itself
	EventInvalidate                    // keys, tags, groups or a repository were invalidated (counted once delivered)
	EventRedisError                    // a Redis call failed or timed out (served from the source)
	EventCorrupt                       // an entry could not be decoded; it was deleted
	EventBypass                        // the call skipped the cache (breaker open, nil hop)
	EventBreakerOpen                   // the circuit breaker opened
	EventBreakerClose                  // the circuit breaker closed again
	EventLocalHit                      // a value was served from this process's memory (L1)
	EventLocalGap                      // the invalidation subscription was lost: the L1 was dropped
	EventLoadError                     // the source returned an error (other than the not-found sentinel)
	EventFallback                      // a read's Redis lookup failed: it was served from the source
	EventVerified                      // WithVerify re-read a hit from the source and compared it
	EventInconsistent                  // a verified hit differed from the source, also after the re-check
	EventStale                         // a hit was served past its TTL (stale=), counted besides the hit
	EventRefresh                       // a background reload of a hit's entry called the source (refresh=, stale=)
	EventRefreshError                  // a background reload failed; the cached value is kept until its bound
	numEvents
)

var eventNames = [numEvents]string{"hit", "negative_hit", "miss", "load", "fill", "fill_rejected",
	"lease_wait", "lease_timeout", "invalidate", "redis_error", "corrupt", "bypass", "breaker_open", "breaker_close",
	"local_hit", "local_gap", "load_error", "fallback", "verified", "inconsistent",
	"stale", "refresh", "refresh_error"}

// String is the kind's name ("hit", "negative_hit", …); "unknown" for a
// value that is not a kind.
func (k EventKind) String() string {
	if k < numEvents {
		return eventNames[k]
	}
	return "unknown"
}

// EventKinds lists every kind, in order.
func EventKinds() []EventKind {
	ks := make([]EventKind, numEvents)
	for i := range ks {
		ks[i] = EventKind(i)
	}
	return ks
}

// Valid reports whether k is one of EventKinds.
func (k EventKind) Valid() bool { return k < numEvents }

// Event is one observation. Repo, Template and Method name the keyspace
// (empty for Cache-wide events); Keyspace is "<prefix>:<version>/<template>"
// (the prefix escaped like a key), kept for observers written before Repo
// and Template existed.
type Event struct {
	Kind     EventKind
	Keyspace string // "<prefix>:<version>/<template>"
	Repo     string // the repository's prefix, as given to Cache.Repo ("articles")
	Template string // the key template, placeholders emptied ("article:{}")
	Method   string // the get method, when generated code names it
	Err      error
	// Duration is the source call's for EventLoad and EventLoadError, the
	// Redis lookup's for EventHit, EventNegativeHit and EventMiss (0 when
	// the read did not ask Redis, or under WithMetrics(false)).
	Duration time.Duration
}

// Stats are counters since New, one per EventKind. Index it with a kind or
// use Get, which is safe for any value.
type Stats [numEvents]uint64

// Get returns the count of one kind, 0 for a value that is not a kind.
func (s Stats) Get(k EventKind) uint64 {
	if k >= numEvents {
		return 0
	}
	return s[k]
}

// Map returns the counts by kind name.
func (s Stats) Map() map[string]uint64 {
	m := make(map[string]uint64, numEvents)
	for i, n := range s {
		m[eventNames[i]] = n
	}
	return m
}

// Hits is hits + negative hits + L1 hits.
func (s Stats) Hits() uint64 { return s[EventHit] + s[EventNegativeHit] + s[EventLocalHit] }

// HitRate is (hits + negative hits + L1 hits) / (those + misses).
func (s Stats) HitRate() float64 {
	h := s.Hits()
	if h+s[EventMiss] == 0 {
		return 0
	}
	return float64(h) / float64(h+s[EventMiss])
}

type counters [numEvents]atomic.Uint64

// Stats returns a snapshot of the counters: the cache-wide events and the
// sum of every keyspace's (Snapshot has them one by one).
func (c *Cache) Stats() Stats {
	var s Stats
	for i := range c.stats {
		s[i] = c.stats[i].Load()
	}
	for _, l := range c.reg.list() {
		var k Stats
		for i := range l.n {
			k[i] = l.n[i].Load()
		}
		s.add(&k)
	}
	return s
}

// emit counts one event of keyspace l (nil: a cache-wide event) and tells
// the observer.
func (c *Cache) emit(k EventKind, l *ksStats, err error) {
	if l != nil {
		l.n[k].Add(1)
	} else {
		c.stats[k].Add(1)
	}
	if o := c.observer.Load(); o != nil {
		(*o)(l.event(k, err, 0))
	}
}

// emitTimed is emit with the Redis lookup's duration (0: not measured),
// which also goes into the keyspace's histogram.
func (c *Cache) emitTimed(k EventKind, l *ksStats, d time.Duration) {
	l.n[k].Add(1)
	if d > 0 {
		l.redis.observe(d)
	}
	if o := c.observer.Load(); o != nil {
		(*o)(l.event(k, nil, d))
	}
}

func (l *ksStats) event(k EventKind, err error, d time.Duration) Event {
	if l == nil {
		return Event{Kind: k, Err: err, Duration: d}
	}
	return Event{Kind: k, Keyspace: l.name, Repo: l.prefix, Template: l.template, Method: l.method, Err: err, Duration: d}
}

// AddObserver adds f to the observers of every Event (WithObserver's), for
// exporters set up after New (cacheotel). Like WithObserver's, f is called
// synchronously and must be fast.
func (c *Cache) AddObserver(f func(Event)) {
	if f == nil {
		return
	}
	c.obsMu.Lock()
	defer c.obsMu.Unlock()
	next := f
	if o := c.observer.Load(); o != nil {
		prev := *o
		next = func(e Event) { prev(e); f(e) }
	}
	c.observer.Store(&next)
}
