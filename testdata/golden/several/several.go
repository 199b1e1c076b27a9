// Package several declares several repositories in one file, with value,
// slice, map and pointer results.
package several

import "context"

type Stats struct {
	Views int64
	Likes int64
}

// Counters has a value result and a map result.
//
//cache:repo ttl=30s
type Counters interface {
	//cache:get key="stats:{id}"
	Stats(ctx context.Context, id uint32) (Stats, error)

	//cache:get key="all"
	Totals(ctx context.Context) (map[string]int64, error)
}

// Names has slice and pointer results.
//
//cache:repo prefix=names ttl=1h jitter=0
type Names interface {
	//cache:get key="names:{prefix}"
	List(ctx context.Context, prefix string) ([]string, error)

	//cache:get key="name:{id}"
	One(ctx context.Context, id int) (*string, error)
}

// notCached has no directive and gets no code.
type notCached interface {
	Get(ctx context.Context) error
}
