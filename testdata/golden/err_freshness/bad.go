// Package errfreshness has refresh= and stale= mistakes: all reported at once.
package errfreshness

import "context"

type Quote struct{ Price float64 }

//cache:repo prefix=quotes ttl=1m refresh=100 stale=-5s
type Quotes interface {
	//cache:get key="quote:{s}" refresh=0.5
	Get(ctx context.Context, s string) (*Quote, error)

	//cache:get key="quote:{s}" refresh=fast stale=forever
	Get2(ctx context.Context, s string) (*Quote, error)

	//cache:get key="q:{s}" refresh=80
	Get3(ctx context.Context, s string) (*Quote, error)

	// Get4 shares Get3's template but not its freshness.
	//
	//cache:get key="q:{s}" refresh=50 stale=1m
	Get4(ctx context.Context, s string) (*Quote, error)

	//cache:evict keys="quote:{s},q:{s}"
	Set(ctx context.Context, s string) error
}
