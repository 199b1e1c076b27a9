// Package advfreshness combines refresh= and stale= with every other option
// and shape: batch reads (with and without a single read of the template),
// local=, multi-result reads, generic repositories, puts, result tags,
// not-found errors and parameters named like generated locals.
package advfreshness

import (
	"context"
	"errors"
	"time"
)

type T struct {
	ID    string
	Owner string
	When  time.Time
}

var ErrNo = errors.New("no such row")

//cache:repo prefix=fresh ttl=2s refresh=75 stale=1m negative=1s notfound=ErrNo local=1s
type Rows interface {
	//cache:get key="row:{id}" tags="owner:{result.Owner}"
	Get(ctx context.Context, id string) (*T, error)

	//cache:get key="row:{ids}" tags="owner:{result.Owner}"
	GetMany(ctx context.Context, ids []string) (map[string]*T, error)

	//cache:get key="alone:{ids}" refresh=10 stale=0 local=0
	Alone(ctx context.Context, ids []int64) (map[int64]*T, error)

	//cache:get key="page:{cursor}:{num}" refresh=99 stale=24h
	Page(ctx context.Context, cursor string, num int64) (res []T, next string, err error)

	//cache:get key="count:{rd}:{l}:{buf}" refresh=1 stale=1ms local=500ms
	Count(ctx context.Context, rd string, l int, buf bool) (int, error)

	//cache:get key="k:{key}:{inv}" ignore=r refresh=50
	ByKey(ctx context.Context, key, inv string, r time.Time) (*T, error)

	//cache:put key="row:{t.ID}" value=t tags="owner:{t.Owner}"
	Set(ctx context.Context, t *T) error

	//cache:evict keys="row:{id},alone:{n}" patterns="page:*" tags="owner:{id}"
	Del(ctx context.Context, id string, n int64) error
}

//cache:repo prefix=gfresh ttl=1m refresh=80 stale=10s
type Store[K ~string, V any] interface {
	//cache:get key="item:{k}" local=30s
	Get(ctx context.Context, k K) (V, error)

	//cache:get key="items:{ks}" local=30s stale=1h
	GetMany(ctx context.Context, ks []K) (map[K]V, error)

	//cache:get key="list:{cursor}" stale=0
	List(ctx context.Context, cursor string) ([]V, string, error)

	//cache:put key="item:{k}" value=v
	Put(ctx context.Context, k K, v V) error
}
