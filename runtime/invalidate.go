package runtime

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Invalidate makes stale what inv names, O(1) however many entries carry a
// tag or belong to a group: one script on the invalidation state takes the
// next seq and sets every named marker (tags, groups, and the keys' own) to
// it; the keys' entries and leases are deleted too. Outstanding loads of any
// of them cannot fill afterwards, and no read that begins after Invalidate
// returns — in any process — serves an entry it made stale. An invalidation
// that cannot reach Redis (or, with replicas, is not acknowledged by one) is
// kept and replayed, and until then this process serves every read from the
// source; the error is returned for callers who want to know, and is logged
// and counted either way.
func (c *Cache) Invalidate(ctx context.Context, inv Invalidation) error {
	if inv.empty() {
		return nil
	}
	_, err := c.invalidate(ctx, inv.Keys, c.markerIDs(inv, "", nil))
	return err
}

// InvalidateAll drops every entry of the repository in O(1).
func (r *Repo) InvalidateAll(ctx context.Context) error {
	_, err := r.c.invalidate(ctx, nil, []uint64{r.dep})
	return err
}

// InvalidateNamespace drops every entry of every repository on this Cache in O(1).
func (c *Cache) InvalidateNamespace(ctx context.Context) error {
	_, err := c.invalidate(ctx, nil, []uint64{c.nsDep})
	return err
}

// Invalidate is Cache.Invalidate for the writes of a repository whose tags
// are its own (an instantiation of a generic one, RepoOf): its tags are
// those of this repository only.
func (r *Repo) Invalidate(ctx context.Context, inv Invalidation) error {
	if inv.empty() {
		return nil
	}
	_, err := r.c.invalidate(ctx, inv.Keys, r.c.markerIDs(inv, r.tagNS, nil))
	return err
}

// markerIDs lists the markers inv bumps: its tags (in the tag namespace
// ns), groups and keys.
func (c *Cache) markerIDs(inv Invalidation, ns string, extra []Key) []uint64 {
	ids := make([]uint64, 0, len(inv.Tags)+len(inv.Groups)+len(inv.Keys)+len(extra))
	ids = tagIDs(ns, ids, inv.Tags)
	for _, g := range inv.Groups {
		ids = append(ids, uint64(g))
	}
	for _, k := range inv.Keys {
		ids = append(ids, markerID(markKey, string(k)))
	}
	for _, k := range extra {
		ids = append(ids, markerID(markKey, string(k)))
	}
	return ids
}

// invalidate delivers one invalidation and returns the state's reply, whose
// seq a write-through entry is stored under.
func (c *Cache) invalidate(ctx context.Context, keys []Key, ids []uint64) (stateReply, error) {
	return c.invalidateCounted(ctx, keys, ids, true)
}

// invalidateCounted is invalidate; count false leaves it out of
// EventInvalidate (a put's bump of its own key is part of its fill). An
// invalidation is counted once delivered: now, or when its replay lands.
func (c *Cache) invalidateCounted(ctx context.Context, keys []Key, ids []uint64, count bool) (stateReply, error) {
	// The write it follows has happened: a caller that gives up must not
	// leave the cache stale. The time budget still bounds the round.
	ctx = context.WithoutCancel(ctx)
	rep, err := c.deliver(ctx, keys, ids, viaCall)
	if err == errBreakerOpen {
		if c.pend.flowing.Load() {
			// Held only for the queue, which the replay is getting through:
			// this one goes at once, not behind it (pending). A failure
			// stops the flow until a replay round gets through again.
			if rep, err = c.deliver(ctx, keys, ids, viaFlow); err != nil {
				c.pend.flowing.Store(false)
			}
		} else if !c.brk.isHeld() {
			// The replay may have released the breaker since it refused
			// this one: no need to queue (and hold it again) then.
			rep, err = c.deliver(ctx, keys, ids, viaCall)
		}
	}
	if err != nil {
		c.pend.add(c, keys, ids, count)
	} else if count {
		c.countInvalidation(keys, ids)
	}
	return rep, err
}

// How deliver reaches Redis.
type via uint8

const (
	viaCall   via = iota // call: through the breaker
	viaReplay            // the replay: the breaker's probe, unsettled
	viaFlow              // past the held breaker while the queue flows; settled
)

// deliver runs the invalidation script (and WAIT, when the state's master has
// replicas) and records the bump in this process's mirror.
func (c *Cache) deliver(ctx context.Context, keys []Key, ids []uint64, how via) (stateReply, error) {
	members := make([]string, len(ids))
	for i, id := range ids {
		members[i] = memberOf(id)
	}
	acks := c.acks.needed()
	op := func(ctx context.Context) (stateReply, error) {
		return c.remote.invalidate(ctx, keys, members, 'b', acks)
	}
	var rep stateReply
	var err error
	switch how {
	case viaReplay:
		rep, err = replayCall(c, ctx, op)
	case viaFlow:
		rep, err = bounded(c, ctx, op)
		c.settle(ctx, err)
	default:
		rep, err = call(c, ctx, op)
	}
	if rep.inc != 0 { // it ran, even if no replica has acknowledged it yet
		c.mirror.applyOwn(rep, ids)
	}
	return rep, err
}

// ensureState returns the current clock, creating the invalidation state
// when there is none (the first fill on an empty Redis).
func (c *Cache) ensureState(ctx context.Context) (stateReply, error) {
	return call(c, ctx, func(ctx context.Context) (stateReply, error) {
		return c.remote.invalidate(ctx, nil, nil, 'e', 0)
	})
}

// replayCall is call without the breaker: the replay is the breaker's probe.
func replayCall[R any](c *Cache, ctx context.Context, op func(context.Context) (R, error)) (R, error) {
	return bounded(c, ctx, op)
}

func isNil(err error) bool { return err == redis.Nil }
