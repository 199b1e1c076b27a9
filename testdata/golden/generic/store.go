// Package generic has a generic repository interface.
package generic

import "context"

type Page[T any] struct {
	Items []T
	Next  string
}

// Store is generic in its key and value types.
//
//cache:repo prefix=store ttl=5m
type Store[K ~string, V any] interface {
	//cache:get key="item:{k}" tags="item:{k}"
	Get(ctx context.Context, k K) (V, error)

	//cache:get key="list:{cursor}"
	List(ctx context.Context, cursor string) (Page[V], error)

	//cache:get key="many:{first}"
	Many(ctx context.Context, first K) (map[K]V, error)

	//cache:put key="item:{k}" value=v
	Set(ctx context.Context, k K, v V) error

	//cache:evict keys="item:{k}" patterns="list:*,many:*"
	Delete(ctx context.Context, k K) error

	//cache:evict tags="item:{k}"
	Touch(ctx context.Context, k K) error
}

// Counter has integer keys from a type set.
//
//cache:repo ttl=1m
type Counter[N ~int32 | ~int64] interface {
	//cache:get key="count:{n}"
	Count(ctx context.Context, n N) (int64, error)
}

// Mixed has keys whose type set mixes strings and integers: each
// instantiation appends them by its own kind.
//
//cache:repo ttl=1m
type Mixed[K ~string | ~int64, N ~int32 | ~uint8 | ~bool] interface {
	//cache:get key="m:{k}:{n}" tags="k:{k}"
	Get(ctx context.Context, k K, n N) (string, error)

	//cache:evict keys="m:{k}:{n}" tags="k:{k}"
	Drop(ctx context.Context, k K, n N) error
}
