package runtime

import (
	"sync/atomic"
	"time"
)

// EventKind says what happened.
type EventKind uint8

// The events a Cache reports to WithObserver and counts in Stats.
const (
	EventHit          EventKind = iota // a positive entry was served
	EventNegativeHit                   // a negative entry (nil or not-found) was served
	EventMiss                          // no usable entry; the caller goes on to load
	EventLoad                          // the source was called
	EventFill                          // a loaded value was stored
	EventFillRejected                  // a fill lost its lease or raced an invalidation
	EventLeaseWait                     // a caller waited for another loader's value
	EventLeaseTimeout                  // a waiter gave up and called the source itself
	EventInvalidate                    // keys, tags, groups or a repository were invalidated
	EventRedisError                    // a Redis call failed or timed out (served from the source)
	EventCorrupt                       // an entry could not be decoded; it was deleted
	EventBypass                        // the call skipped the cache (breaker open, nil hop)
	EventBreakerOpen                   // the circuit breaker opened
	EventBreakerClose                  // the circuit breaker closed again
	EventLocalHit                      // a value was served from this process's memory (L1)
	EventLocalGap                      // the invalidation subscription was lost: the L1 was dropped
	numEvents
)

var eventNames = [numEvents]string{"hit", "negative_hit", "miss", "load", "fill", "fill_rejected",
	"lease_wait", "lease_timeout", "invalidate", "redis_error", "corrupt", "bypass", "breaker_open", "breaker_close", "local_hit", "local_gap"}

func (k EventKind) String() string {
	if k < numEvents {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one observation. Keyspace is "<prefix>:<version>/<template>", empty
// for Cache-wide events.
type Event struct {
	Kind     EventKind
	Keyspace string
	Err      error
	Duration time.Duration // of the source call, for EventLoad
}

// Stats are the Cache's counters since New, one per EventKind.
type Stats [numEvents]uint64

// Get returns the count of one kind.
func (s Stats) Get(k EventKind) uint64 { return s[k] }

// HitRate is (hits + negative hits + L1 hits) / (those + misses).
func (s Stats) HitRate() float64 {
	h := s[EventHit] + s[EventNegativeHit] + s[EventLocalHit]
	if h+s[EventMiss] == 0 {
		return 0
	}
	return float64(h) / float64(h+s[EventMiss])
}

type counters [numEvents]atomic.Uint64

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	var s Stats
	for i := range c.stats {
		s[i] = c.stats[i].Load()
	}
	return s
}

func (c *Cache) emit(k EventKind, label string, err error) {
	c.stats[k].Add(1)
	if c.cfg.observer != nil {
		c.cfg.observer(Event{Kind: k, Keyspace: label, Err: err})
	}
}
