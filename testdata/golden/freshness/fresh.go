// Package freshness: refresh-ahead and stale serving, set on the repository
// and overridden per method, with a batch read sharing its single read's
// entries and an L1.
package freshness

import (
	"context"
	"errors"
)

type Quote struct {
	Symbol string
	Price  float64
}

var ErrNoQuote = errors.New("no such quote")

//cache:repo prefix=quotes ttl=1s refresh=80 stale=30s negative=1s notfound=ErrNoQuote
type Quotes interface {
	//cache:get key="quote:{symbol}"
	Get(ctx context.Context, symbol string) (*Quote, error)

	//cache:get key="quote:{symbols}"
	GetMany(ctx context.Context, symbols []string) (map[string]*Quote, error)

	// History is large and cheap to wait for: no refresh, no stale.
	//
	//cache:get key="history:{symbol}" ttl=1m refresh=0 stale=0
	History(ctx context.Context, symbol string) ([]float64, error)

	//cache:get key="top" local=500ms refresh=50% stale=5s
	Top(ctx context.Context) ([]Quote, error)

	//cache:evict keys="quote:{symbol},history:{symbol},top"
	Set(ctx context.Context, symbol string, price float64) error
}
