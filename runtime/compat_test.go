package runtime

import "context"

// lookup3 is Lookup with the results spelled out, for tests.
func lookup3[T any](ctx context.Context, ks *Keyspace[T], key Key) (T, bool, error) {
	rd := Lookup(ctx, ks, key)
	return rd.Value, rd.Hit, rd.Err
}

// loadVia is what generated code does on a miss: a lookup (for the clock it
// reads), then Load. A hit is returned as is.
func loadVia[T any](ctx context.Context, ks *Keyspace[T], key Key, l Loader[T]) (T, error) {
	rd := Lookup(ctx, ks, key)
	if rd.Hit {
		return rd.Value, rd.Err
	}
	return Load(ctx, rd, l)
}
