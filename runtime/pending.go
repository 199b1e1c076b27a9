package runtime

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// pending holds invalidations that could not be delivered. While any wait,
// the breaker stays open, so this process reads from the source and never
// serves an entry the lost invalidation should have removed; a background
// loop replays them and closes the breaker. Past maxPending they collapse
// into one namespace invalidation.
//
// Once a replay round gets through, the queue is flowing: until it is empty,
// a new invalidation that the held breaker refuses is sent at once
// (invalidateCounted) instead of queueing behind the older ones, and the
// loop replays what is left without waiting a cooldown. Without that, a
// process that writes more often than one round trip refilled the queue
// during every round and its breaker stayed held — every read went to the
// source — for as long as it kept writing (TestPendingReplayUnderSteadyWrites).
// A later invalidation may so reach Redis before an older queued one; that
// is safe (docs/runtime.md, "Failures"): each bumps its markers to a seq
// above every marker and the clock, so markers only move forward, and a
// bump that lands later kills at least what it would have killed earlier.
// The breaker is still held until the queue is empty.
type pending struct {
	mu       sync.Mutex
	keys     []Key
	ids      []uint64
	overflow bool
	count    int         // invalidations waiting (counted once delivered)
	held     bool        // invalidations wait: the breaker is held open
	leases   [][2]string // (lease, token) whose release failed
	running  bool
	flowing  atomic.Bool  // the last replay round got through: send new invalidations at once
	rounds   atomic.Int64 // replay rounds that tried to deliver (tests)
}

func (p *pending) add(c *Cache, keys []Key, ids []uint64, counted bool) {
	p.mu.Lock()
	if counted {
		p.count++
	}
	if len(p.keys)+len(p.ids)+len(keys)+len(ids) > c.cfg.maxPending {
		p.overflow, p.keys, p.ids = true, nil, nil
	} else if !p.overflow {
		p.keys = append(p.keys, keys...)
		p.ids = append(p.ids, ids...)
	}
	p.held = true
	start := !p.running
	p.running = true
	p.mu.Unlock()
	c.brk.hold()
	if start {
		c.background(func() { p.replay(c) })
	}
}

// addRelease queues a lease whose release failed. Unlike an invalidation it
// does not hold the breaker (the lease expires by itself), but releasing it
// as soon as Redis is back spares that key's callers a wait of up to the
// lease wait after an outage. Past maxPending, leases are left to expire.
func (p *pending) addRelease(c *Cache, lease, token string) {
	p.mu.Lock()
	if len(p.leases) < c.cfg.maxPending {
		p.leases = append(p.leases, [2]string{lease, token})
	}
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		c.background(func() { p.replay(c) })
	}
}

func (p *pending) replay(c *Cache) {
	for wait := true; ; {
		if wait && !c.pause(c.cfg.breakerCooldown) || !wait && c.isClosed() {
			p.flowing.Store(false)
			return
		}
		p.mu.Lock()
		keys, ids, overflow, leases, count := p.keys, p.ids, p.overflow, p.leases, p.count
		p.keys, p.ids, p.overflow, p.leases, p.count = nil, nil, false, nil, 0
		p.mu.Unlock()
		var err error
		p.rounds.Add(1)
		if len(keys)+len(ids) > 0 || overflow {
			if overflow {
				keys, ids = nil, []uint64{c.nsDep}
			}
			_, err = c.deliver(context.Background(), keys, ids, viaReplay)
			if err == nil {
				c.stats[EventInvalidate].Add(uint64(count))
				count = 0
			}
		}
		if err == nil && len(leases) > 0 {
			_, err = replayCall(c, context.Background(), func(ctx context.Context) (int, error) {
				_, err := c.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
					for _, l := range leases {
						releaseScript.eval(ctx, pl, []string{l[0], l[0]}, l[1])
					}
					return nil
				})
				if err == redis.Nil {
					err = nil
				}
				return 0, err
			})
		}
		p.mu.Lock()
		if err != nil { // put them back, in front of anything added meanwhile
			p.flowing.Store(false)
			if overflow {
				p.overflow = true
			} else {
				p.keys = append(keys, p.keys...)
				p.ids = append(ids, p.ids...)
			}
			p.leases = append(leases, p.leases...)
			p.count += count
			p.mu.Unlock()
			wait = true
			continue
		}
		if len(p.keys)+len(p.ids)+len(p.leases) == 0 && !p.overflow {
			// Release under p.mu: an add that comes in now must not have its
			// hold undone by this release. The breaker is released before
			// flowing is cleared: an invalidation refused while it was held
			// sees flowing, or finds the breaker closed (invalidateCounted).
			if p.held {
				c.brk.release()
			}
			p.held, p.running = false, false
			p.flowing.Store(false)
			p.mu.Unlock()
			return
		}
		// This round got through: what was added meanwhile goes at once,
		// and new invalidations no longer queue (see pending).
		p.flowing.Store(true)
		p.mu.Unlock()
		wait = false
	}
}
