package runtime

import (
	"context"
	"encoding/base64"
	"strings"
	"sync/atomic"

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
	return r.c.deletePattern(ctx, r.c.ns+"e:{"+EscapeGlob(r.name)+":"+strings.Repeat("?", base64.RawURLEncoding.EncodedLen(ksidBytes))+":"+glob+"}")
}

// DeletePattern deletes every entry whose key, after the namespace and
// "e:", matches glob (see docs/runtime.md for the key layout), with SCAN and
// UNLINK on every master, and voids their leases.
func (c *Cache) DeletePattern(ctx context.Context, glob string) (int64, error) {
	return c.deletePattern(ctx, c.ns+"e:"+glob)
}

func (c *Cache) deletePattern(ctx context.Context, match string) (int64, error) {
	// Move the clock afterwards (that counts as the invalidation), so that reads which start later never join
	// a load that began before the entries were deleted.
	defer func() { _, _ = c.invalidate(ctx, nil, nil) }()
	var total atomic.Int64 // masters are scanned in parallel
	scan := func(ctx context.Context, node redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, match, 1000).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				cmds, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
					for _, k := range keys {
						p.Unlink(ctx, k, leaseKeyOf(Key(k))) // one hash slot
					}
					return nil
				})
				if err != nil {
					return err
				}
				var n int64
				for _, cmd := range cmds {
					n += cmd.(*redis.IntCmd).Val()
				}
				total.Add(n)
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
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
	return total.Load(), err
}
