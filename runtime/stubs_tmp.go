package runtime

import "context"

// TEMPORARY: signatures only, bodies land in the next commits.

func Lookup[T any](ctx context.Context, ks *Keyspace[T], key Key) (v T, hit bool, err error) {
	return v, false, nil
}

func Load[T any](ctx context.Context, ks *Keyspace[T], key Key, l Loader[T]) (T, error) {
	return l.Load(ctx)
}

func Put[T any](ctx context.Context, ks *Keyspace[T], key Key, v T, tags []string, inv Invalidation) {}

func (c *Cache) Invalidate(ctx context.Context, inv Invalidation) error { return nil }
func (r *Repo) InvalidateAll(ctx context.Context) error               { return nil }
func (c *Cache) InvalidateNamespace(ctx context.Context) error        { return nil }
func (c *Cache) DeletePattern(ctx context.Context, glob string) (int64, error) {
	return 0, nil
}
func (s *space) Bypass() {}

type flightGroup struct{}
type breaker struct{}

func (b *breaker) init(*config, *Cache) {}

type counters struct{}
type pending struct{}
type Event struct{}
