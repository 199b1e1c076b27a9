// Package params has parameters named like imports and like the locals of
// the generated code, unnamed and variadic parameters, and named results.
package params

import (
	"context"
	"time"
)

type Event struct {
	ID   string
	When time.Time
}

type Filter struct{ Kind string }

// Events is full of awkward names.
//
//cache:repo prefix=events ttl=1m negative=10s
type Events interface {
	//cache:get key="event:{key}:{runtime}"
	Get(c context.Context, key string, runtime int) (ev *Event, err error)

	//cache:get key="since:{time}:{r}"
	Since(ctx context.Context, time string, r bool) ([]Event, error)

	//cache:get key="by:{next}:{v}:{hit}:{res}:{inv}:{buf}:{err}:{ok}"
	By(ctx context.Context, next, v, hit, res, inv, buf, err, ok string) (Event, error)

	//cache:get key="kind:{kind}" tags="kind:{kind}" ignore=filters
	Find(ctx context.Context, kind string, filters ...Filter) ([]Event, error)

	//cache:evict tags="kind:{tags}"
	Touch(ctx context.Context, tags string, _ int, txt0 ...string) (n int, at time.Time, err error)

	// Unnamed parameters pass straight through.
	Raw(context.Context, string, ...int) error

	Stats() (count int, err error)
}
