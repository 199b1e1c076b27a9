// Package store uses result types from two packages named model, and
// aliases.
package store

import (
	"context"

	amodel "github.com/cachegen/cachegen/testdata/golden/multipkg/a/model"
	"github.com/cachegen/cachegen/testdata/golden/multipkg/b/model"
)

// Customer is an alias of a type from another package.
type Customer = amodel.User

// ID is an alias of a basic type.
type ID = int64

// Shop reads users and orders.
//
//cache:repo prefix=shop ttl=15m negative=1m notfound=model.ErrMissing
type Shop interface {
	//cache:get key="customer:{id}"
	Customer(ctx context.Context, id ID) (*Customer, error)

	//cache:get key="order:{id}"
	Order(ctx context.Context, id int64) (*model.Order, error)

	//cache:get key="orders:{customer.ID}"
	Orders(ctx context.Context, customer *amodel.User) ([]model.Order, error)
}
