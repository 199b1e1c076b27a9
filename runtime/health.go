package runtime

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// checkServer runs once after New: it reads maxmemory-policy (when CONFIG is
// allowed) and says what it means for the cache, and counts the replicas of
// the invalidation state's master.
func (c *Cache) checkServer() {
	if c.rdb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go func() {
		select {
		case <-c.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	c.acks.refresh(ctx)
	policies := map[string]bool{}
	get := func(ctx context.Context, n redis.UniversalClient) error {
		v, err := n.ConfigGet(ctx, "maxmemory-policy").Result()
		if err == nil {
			if p, ok := v["maxmemory-policy"]; ok {
				policies[p] = true
			}
		}
		return err
	}
	var err error
	switch cl := c.rdb.(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex
		err = cl.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return get(ctx, n)
		})
	default:
		err = get(ctx, c.rdb)
	}
	if err != nil {
		c.cfg.logger.Debug("cachegen: could not read maxmemory-policy (CONFIG not allowed?)", "err", err)
		return
	}
	for p := range policies {
		switch {
		case p == "allkeys-random":
			c.cfg.logger.Warn("cachegen: maxmemory-policy allkeys-random may evict the invalidation state; "+
				"that is safe (every entry becomes a miss once) but costly — prefer allkeys-lru or allkeys-lfu", "policy", p)
		case p == "noeviction":
			c.cfg.logger.Debug("cachegen: maxmemory-policy noeviction: when Redis is full, invalidations still run (allow-oom scripts) "+
				"but new entries are not stored — size maxmemory for the working set", "policy", p)
		case strings.HasPrefix(p, "allkeys-") || strings.HasPrefix(p, "volatile-"):
			c.cfg.logger.Debug("cachegen: maxmemory-policy supported", "policy", p)
		default:
			c.cfg.logger.Warn("cachegen: unknown maxmemory-policy", "policy", p)
		}
	}
}

// replicaAcks decides how many replicas an invalidation waits for. With the
// default (auto) it is one when the state's master has replicas, checked at
// New and again at most every recheck when invalidations run.
type replicaAcks struct {
	c        *Cache
	mu       sync.Mutex
	count    int
	checked  time.Time
	lastSeen time.Time // when a replica was last connected
	replid   string    // the master's replication id then
	busy     bool
}

const (
	recheckReplicas = 5 * time.Second
	replicaMemory   = 5 * time.Minute
)

func (a *replicaAcks) init(c *Cache) { a.c = c }

func (a *replicaAcks) needed() int {
	if n := a.c.cfg.replicaAcks; n >= 0 {
		return n
	}
	a.mu.Lock()
	n, stale := a.count, time.Since(a.checked) > recheckReplicas && !a.busy
	if stale {
		a.busy = true
	}
	a.mu.Unlock()
	if stale {
		a.c.background(func() {
			ctx, cancel := context.WithTimeout(context.Background(), a.c.cfg.timeout)
			defer cancel()
			a.refresh(ctx)
		})
	}
	return min(n, 1)
}

func (a *replicaAcks) refresh(ctx context.Context) {
	if a.c.cfg.replicaAcks >= 0 {
		return
	}
	n, replid, err := a.c.remote.replicas(ctx)
	a.mu.Lock()
	if err == nil {
		// A replica whose link is down right now is still a failover
		// target: keep waiting for one until none has been seen for a
		// while (replicaMemory), or invalidations could be lost with it —
		// unless the master itself changed (a promotion: new replication
		// id), whose replicas are counted afresh.
		switch {
		case n > 0:
			a.count, a.lastSeen, a.replid = n, time.Now(), replid
		case replid != a.replid || time.Since(a.lastSeen) > replicaMemory:
			a.count, a.replid = 0, replid
		}
	}
	a.checked, a.busy = time.Now(), false
	a.mu.Unlock()
}
