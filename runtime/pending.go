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
type pending struct {
	mu       sync.Mutex
	keys     []Key
	ids      []uint64
	overflow bool
	count    int         // invalidations waiting (counted once delivered)
	held     bool        // invalidations wait: the breaker is held open
	leases   [][2]string // (lease, token) whose release failed
	running  bool
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
	for {
		if !c.pause(c.cfg.breakerCooldown) {
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
			_, err = c.deliver(context.Background(), keys, ids, true)
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
			if overflow {
				p.overflow = true
			} else {
				p.keys = append(keys, p.keys...)
				p.ids = append(ids, p.ids...)
			}
			p.leases = append(leases, p.leases...)
			p.count += count
			p.mu.Unlock()
			continue
		}
		if len(p.keys)+len(p.ids)+len(p.leases) == 0 && !p.overflow {
			// Release under p.mu: an add that comes in now must not have its
			// hold undone by this release.
			if p.held {
				c.brk.release()
			}
			p.held, p.running = false, false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}
