package runtime

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Invalidate makes stale what inv names: keys are deleted together with their
// leases; tags and groups get a new invalidation marker, O(1) however many
// entries carry them. Outstanding loads of any of them cannot fill afterwards.
// An invalidation that cannot reach Redis is kept and replayed, and until then
// this process serves every read from the source; the error is returned for
// callers who want to know, and is logged and counted either way.
func (c *Cache) Invalidate(ctx context.Context, inv Invalidation) error {
	if inv.empty() {
		return nil
	}
	_, err := c.invalidate(ctx, inv.Keys, c.markers(inv), false)
	return err
}

// InvalidateAll drops every entry of the repository in O(1).
func (r *Repo) InvalidateAll(ctx context.Context) error {
	_, err := r.c.invalidate(ctx, nil, []string{r.dep}, false)
	return err
}

// InvalidateNamespace drops every entry of every repository on this Cache in O(1).
func (c *Cache) InvalidateNamespace(ctx context.Context) error {
	_, err := c.invalidate(ctx, nil, []string{c.nsDep}, false)
	return err
}

func (c *Cache) markers(inv Invalidation) []string {
	m := make([]string, 0, len(inv.Tags)+len(inv.Groups))
	for _, t := range inv.Tags {
		m = append(m, c.tagKey(t))
	}
	for _, g := range inv.Groups {
		m = append(m, string(g))
	}
	return m
}

// invalidate deletes keys and raises markers to a fresh sequence number. It
// returns the sequence a write-through entry may be stored under (with
// needSeq, the current one when no marker moved).
func (c *Cache) invalidate(ctx context.Context, keys []Key, markers []string, needSeq bool) (uint64, error) {
	c.emit(EventInvalidate, "", nil)
	// The write it follows has happened: a caller that gives up must not
	// leave the cache stale. The time budget still bounds each round.
	seq, err := c.deliver(context.WithoutCancel(ctx), keys, markers, needSeq, false)
	// Reads that start from now on must not join a lookup or load that began
	// before this point (while the invalidation was still on its way).
	c.epoch.Add(1)
	if err != nil {
		c.pend.add(c, keys, markers)
	}
	return seq, err
}

// deliver does the Redis work of an invalidation in two rounds: delete keys
// and take a sequence number, then raise every marker to it.
func (c *Cache) deliver(ctx context.Context, keys []Key, markers []string, needSeq, replay bool) (uint64, error) {
	do := call[uint64]
	if replay {
		do = replayCall[uint64]
	}
	seq, err := do(c, ctx, func(ctx context.Context) (uint64, error) {
		var seqCmd *redis.IntCmd
		var getCmd *redis.StringCmd
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Del(ctx, string(k), c.leaseKey(k)) // one hash slot
			}
			if len(markers) > 0 {
				seqCmd = p.Incr(ctx, c.seqKey)
			} else if needSeq {
				getCmd = p.Get(ctx, c.seqKey)
			}
			return nil
		})
		if err != nil && err != redis.Nil {
			return 0, err
		}
		switch {
		case seqCmd != nil:
			n, err := seqCmd.Result()
			return uint64(n), err
		case getCmd != nil:
			return parseSeq(getCmd)
		}
		return 0, nil
	})
	if err != nil || len(markers) == 0 {
		return seq, err
	}
	keep := c.cfg.maxTTL.Milliseconds()
	_, err = do(c, ctx, func(ctx context.Context) (uint64, error) {
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, m := range markers {
				p.Eval(ctx, markScript.src, []string{m}, seq, keep) // EVAL: a pipeline cannot retry NOSCRIPT
			}
			return nil
		})
		return seq, err
	})
	return seq, err
}

// Put is the write-through of a put directive: it applies inv, then stores v
// under key with the keyspace's TTL and jitter and the given entry tags,
// voiding any read lease on the key. Redis errors are logged, never returned.
// Two concurrent puts of one key store in the order they reach Redis, which
// may differ from the order their database writes committed; use evict for
// rows with concurrent writers.
func Put[T any](ctx context.Context, ks *Keyspace[T], key Key, v T, tags []string, inv Invalidation) {
	c := ks.c
	// As in invalidate: a read that starts after Put returns must not join a
	// lookup that began before the new value was stored.
	defer c.epoch.Add(1)
	seq, err := c.invalidate(ctx, inv.Keys, c.markers(inv), true)
	if err != nil {
		c.pend.add(c, []Key{key}, nil)
		return
	}
	flags, payload, ttl, _, ok := ks.entry(v, nil, nil)
	if !ok {
		_ = c.Invalidate(ctx, Invalidation{Keys: []Key{key}})
		return
	}
	deps := ks.depsWith(tags)
	env := appendEnvelope(nil, flags, c.cfg.now().UnixMilli(), seq, deps, payload)
	_, err = call(c, context.WithoutCancel(ctx), func(ctx context.Context) (int64, error) {
		return storeScript.run(ctx, c.rdb, []string{string(key), c.leaseKey(key)}, env, ttl.Milliseconds()).Int64()
	})
	if err != nil {
		c.pend.add(c, []Key{key}, nil)
		return
	}
	c.emit(EventFill, ks.label, nil)
}

// Bypass counts a call that went straight to the source (a nil pointer in a
// key placeholder, a MarshalText error).
func (s *space) Bypass() { s.c.emit(EventBypass, s.label, nil) }

// pending holds invalidations that could not be delivered. While any wait,
// the breaker stays open, so this process reads from the source and never
// serves an entry the lost invalidation should have removed; a background
// loop replays them and closes the breaker. Past maxPending they collapse
// into one namespace invalidation.
type pending struct {
	mu       sync.Mutex
	keys     []Key
	markers  []string
	overflow bool
	held     bool        // invalidations wait: the breaker is held open
	leases   [][2]string // (lease, token) whose release failed
	running  bool
}

func (p *pending) add(c *Cache, keys []Key, markers []string) {
	p.mu.Lock()
	if len(p.keys)+len(p.markers)+len(keys)+len(markers) > c.cfg.maxPending {
		p.overflow, p.keys, p.markers = true, nil, nil
	} else if !p.overflow {
		p.keys = append(p.keys, keys...)
		p.markers = append(p.markers, markers...)
	}
	p.held = true
	start := !p.running
	p.running = true
	p.mu.Unlock()
	c.brk.hold()
	if start {
		go p.replay(c)
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
		go p.replay(c)
	}
}

func (p *pending) replay(c *Cache) {
	for {
		time.Sleep(c.cfg.breakerCooldown)
		p.mu.Lock()
		keys, markers, overflow, leases := p.keys, p.markers, p.overflow, p.leases
		p.keys, p.markers, p.overflow, p.leases = nil, nil, false, nil
		p.mu.Unlock()
		var err error
		if len(keys)+len(markers) > 0 || overflow {
			if overflow {
				keys, markers = nil, []string{c.nsDep}
			}
			_, err = c.deliver(context.Background(), keys, markers, false, true)
		}
		if err == nil && len(leases) > 0 {
			_, err = replayCall(c, context.Background(), func(ctx context.Context) (int, error) {
				_, err := c.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
					for _, l := range leases {
						pl.Eval(ctx, releaseScript.src, []string{l[0]}, l[1])
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
				p.markers = append(markers, p.markers...)
			}
			p.leases = append(leases, p.leases...)
			p.mu.Unlock()
			continue
		}
		if len(p.keys)+len(p.markers)+len(p.leases) == 0 && !p.overflow {
			held := p.held
			p.held, p.running = false, false
			p.mu.Unlock()
			if held {
				c.brk.release()
			}
			return
		}
		p.mu.Unlock()
	}
}

// replayCall is call without the breaker: the replay is the breaker's probe.
func replayCall[R any](c *Cache, ctx context.Context, op func(context.Context) (R, error)) (R, error) {
	return bounded(c, ctx, op)
}
