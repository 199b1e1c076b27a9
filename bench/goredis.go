package bench

import (
	"context"
	"strconv"
	"time"

	"github.com/go-redis/cache/v9"
)

// GoRedisCache is github.com/go-redis/cache/v9 used the documented way:
// Once with a Do loader (local singleflight, msgpack, s2 compression above
// 64 bytes), no local in-process cache, so every hit goes to Redis.
type GoRedisCache struct {
	C      *cache.Cache
	Src    Users
	TTL    time.Duration
	Prefix string // e.g. "benchgrc:user:"
}

func (g *GoRedisCache) key(id int64) string { return g.Prefix + strconv.FormatInt(id, 10) }

// Get reads through the cache with Once.
func (g *GoRedisCache) Get(ctx context.Context, id int64) (*User, error) {
	u := new(User)
	err := g.C.Once(&cache.Item{
		Ctx:   ctx,
		Key:   g.key(id),
		Value: u,
		TTL:   g.TTL,
		Do:    func(*cache.Item) (any, error) { return g.Src.Get(ctx, id) },
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// Touch writes the source, then deletes the entry.
func (g *GoRedisCache) Touch(ctx context.Context, id int64) error {
	err := g.Src.Touch(ctx, id)
	_ = g.C.Delete(ctx, g.key(id))
	return err
}

// Forget deletes the entry.
func (g *GoRedisCache) Forget(ctx context.Context, id int64) error {
	return g.C.Delete(ctx, g.key(id))
}
