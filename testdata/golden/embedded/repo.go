// Package embedded embeds interfaces from the same and another package.
package embedded

import (
	"context"

	"github.com/cachegen/cachegen/testdata/golden/embedded/base"
)

type Product struct {
	SKU   string
	Price int
}

// Reader is embedded from the same package; its methods pass through unless
// redeclared with a directive.
type Reader interface {
	Product(ctx context.Context, sku string) (*Product, error)
	Count(ctx context.Context) (int, error)
}

// Catalog embeds Reader and base.Pinger and caches Product by redeclaring it.
//
//cache:repo prefix=catalog ttl=2m
type Catalog interface {
	Reader
	base.Pinger

	//cache:get key="product:{sku}"
	Product(ctx context.Context, sku string) (*Product, error)

	//cache:put key="product:{p.SKU}" value=p
	Upsert(ctx context.Context, p *Product) error
}
