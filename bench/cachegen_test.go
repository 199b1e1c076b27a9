package bench

import (
	"context"

	"github.com/cachegen/cachegen/runtime"
)

// The cachegen contender is the repository `go generate` wrote from users.go
// (users_cache.go), used exactly as an application would.
func init() {
	newCachegen = func(src Users, c *runtime.Cache) cachegenRepo {
		return cachegenUsers{NewCachedUsers(src, c)}
	}
	newCachegenLocal = func(src Users, c *runtime.Cache) cachegenRepo {
		return cachegenLocalUsers{NewCachedLocalUsers(src, c)}
	}
}

type cachegenLocalUsers struct{ *CachedLocalUsers }

func (c cachegenLocalUsers) Forget(ctx context.Context, id int64) error {
	return c.InvalidateGet(ctx, id)
}
func (c cachegenLocalUsers) Reset(ctx context.Context) error { return c.InvalidateAll(ctx) }

type cachegenUsers struct{ *CachedUsers }

func (c cachegenUsers) Forget(ctx context.Context, id int64) error { return c.InvalidateGet(ctx, id) }
func (c cachegenUsers) Reset(ctx context.Context) error            { return c.InvalidateAll(ctx) }
