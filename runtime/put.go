package runtime

import "context"

// Put is the write-through of a put directive: it invalidates inv and the
// key's own marker, then stores v under key with the keyspace's TTL and
// jitter and the given entry tags, at the seq of that invalidation, voiding
// any read lease on the key. Redis errors are logged, never returned. Two
// concurrent puts of one key store in the order they reach Redis, which may
// differ from the order their database writes committed; use evict for rows
// with concurrent writers.
func Put[T any](ctx context.Context, ks *Keyspace[T], key Key, v T, tags []string, inv Invalidation) {
	c := ks.c
	// Only what inv names counts as an invalidation: the bump of key's own
	// marker is how the write-through voids older fills and leases.
	rep, err := c.invalidateCounted(ctx, inv.Keys, c.markerIDs(inv, ks.repo.tagNS, []Key{key}), !inv.empty())
	if err != nil {
		return // pending: replayed, and the breaker holds this process off the cache
	}
	s, ok := ks.entry(v, nil, nil)
	if !ok {
		return // the key's marker moved: the old entry is dead already
	}
	ids := ks.repo.tagIDs(nil, tags)
	if len(ids) > maxTags {
		return
	}
	env := ks.seal(s, rep.inc, rep.seq, ids)
	_, err = call(c, context.WithoutCancel(ctx), func(ctx context.Context) (int64, error) {
		return c.remote.store(ctx, key, leaseKeyOf(key), "", env, s.life)
	})
	if err == nil {
		c.emit(EventFill, ks.label, nil)
	}
}
