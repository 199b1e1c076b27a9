package runtime

import "context"

// put is Put, with v = &the value.
func put[V any](ctx context.Context, ks *keyspace[V], key Key, v V, tags []string, inv Invalidation) {
	c := ks.c
	// Only what inv names counts as an invalidation: the bump of key's own
	// marker is how the write-through voids older fills and leases.
	rep, err := c.invalidateCounted(ctx, inv.Keys, c.markerIDs(inv, ks.repo.tagNS, []Key{key}), !inv.empty())
	if err != nil {
		return // pending: replayed, and the breaker holds this process off the cache
	}
	s, ok := entry(ks, v, nil, nil)
	if !ok {
		return // the key's marker moved: the old entry is dead already
	}
	ids := ks.repo.tagIDs(nil, tags)
	if len(ids) > maxTags {
		return
	}
	env := seal(ks, s, rep.inc, rep.seq, ids)
	_, err = call(c, context.WithoutCancel(ctx), func(ctx context.Context) (int64, error) {
		return c.remote.store(ctx, key, leaseKeyOf(key), "", env, s.life)
	})
	if err == nil {
		c.emit(EventFill, ks.label, nil)
	}
}
