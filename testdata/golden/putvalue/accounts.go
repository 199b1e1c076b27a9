// Package putvalue has puts that store a parameter, key off parameters, and
// return only an error.
package putvalue

import (
	"context"
	"errors"
)

var ErrNoAccount = errors.New("no account")

type Account struct {
	ID      int64
	Owner   *Owner
	Balance int64
}

type Owner struct{ Email string }

// Accounts writes through.
//
//cache:repo prefix=accounts ttl=10m negative=5s
type Accounts interface {
	//cache:get key="account:{id}" notfound=ErrNoAccount tags="account:{id},owner:{result.Owner.Email}"
	Get(ctx context.Context, id int64) (*Account, error)

	//cache:put key="account:{a.ID}" value=a
	Store(ctx context.Context, a *Account) error

	//cache:put key="account:{id}" tags="balances"
	Deposit(ctx context.Context, id int64, amount int64) (*Account, error)

	//cache:put key="account:{result.ID}" evict="account:{old}"
	Move(ctx context.Context, old int64, owner string) (*Account, error)
}
