package runtime

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// DeletePattern deletes, with SCAN and UNLINK (never KEYS), every entry of the
// repository whose key matches glob, on every master of a Cluster, and voids
// their leases. glob is matched against keys as the templates spell them
// ("feed:*"); values spliced into it should go through AppendString (or
// EscapeGlob) so they cannot widen it. It is O(keys in Redis): prefer tags
// and patterns in directives, which are O(1).
func (r *Repo) DeletePattern(ctx context.Context, glob string) (int64, error) {
	// The keyspace id has a fixed length; '?' keeps '*' in glob from spanning it.
	return r.c.deletePattern(ctx, "{"+EscapeGlob(r.name)+":"+strings.Repeat("?", base64.RawURLEncoding.EncodedLen(ksidBytes))+":"+glob+"}", r.dep, r.local)
}

// DeletePattern deletes every entry whose key, after the namespace and
// "e:", matches glob (see docs/runtime.md for the key layout), with SCAN and
// UNLINK on every master, and voids their leases.
func (c *Cache) DeletePattern(ctx context.Context, glob string) (int64, error) {
	return c.deletePattern(ctx, glob, c.nsDep, c.nsL1)
}

// deletePattern scans for entries, leases and hand-offs matching glob (what
// follows "<ns>e:"), and invalidates every key found — entries, and the keys
// of loads in flight (their leases) — by its key marker, so no load that
// began before can fill afterwards. A lease that existed before the caller's
// write is present through the whole scan, so SCAN returns it. If anything
// fails, the invalidation falls back to fallback (the repository's or the
// namespace's marker), which is replayed like any undelivered invalidation.
//
// A SCAN cannot see what Redis no longer holds (an evicted entry, a master
// that restarted empty) but an L1 may: the first batch also moves local,
// which every L1 entry of the repository (or namespace) depends on and no
// Redis entry does — every process drops those L1 entries, Redis keeps the
// entries the pattern did not match.
func (c *Cache) deletePattern(ctx context.Context, glob string, fallback, local uint64) (int64, error) {
	ctx = context.WithoutCancel(ctx) // the write it follows has happened
	var mu sync.Mutex
	found := map[Key]bool{}
	entries := int64(0)
	prefix := len(c.ns) // the kind letter after the namespace
	scan := func(ctx context.Context, node redis.UniversalClient) error {
		for _, kind := range []string{"e:", "l:", "h:"} {
			var cursor uint64
			for {
				sctx, cancel := context.WithTimeout(ctx, c.cfg.timeout)
				keys, next, err := node.Scan(sctx, cursor, EscapeGlob(c.ns)+kind+glob, 1000).Result()
				cancel()
				if err != nil {
					return err
				}
				mu.Lock()
				for _, k := range keys {
					b := []byte(k)
					b[prefix] = 'e'
					if kind == "e:" {
						entries++
					}
					found[Key(b)] = true
				}
				mu.Unlock()
				if cursor = next; cursor == 0 {
					break
				}
			}
		}
		return nil
	}
	var err error
	switch cl := c.rdb.(type) {
	case *redis.ClusterClient:
		err = cl.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
	case *redis.Ring:
		err = cl.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
	default:
		err = scan(ctx, c.rdb)
	}
	if err != nil {
		_, ierr := c.invalidate(ctx, nil, []uint64{fallback})
		if ierr == nil {
			err = nil // the fallback covered every key the scan could have found
		}
		return entries, err
	}
	keys := make([]Key, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	// Deletes entries, leases and hand-offs' entries' leases; moves the key
	// markers (and the clock, even when nothing matched).
	for i := 0; i == 0 || i < len(keys); i += 500 {
		batch := keys[i:min(i+500, len(keys))]
		ids := c.markerIDs(Invalidation{Keys: batch}, "", nil)
		if i == 0 {
			ids = append(ids, local)
		}
		if _, err := c.invalidate(ctx, batch, ids); err != nil {
			if _, ierr := c.invalidate(ctx, nil, []uint64{fallback}); ierr == nil {
				err = nil
			}
			return entries, err
		}
	}
	return entries, nil
}
