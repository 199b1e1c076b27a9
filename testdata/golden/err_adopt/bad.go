// Package erradopt has mistakes in the features for annotating existing
// repositories: notfound= forms, positions, hashes, multi-result reads.
package erradopt

import (
	"context"
	"errors"
)

type User struct{ ID int64 }

type NotFound struct{ What string }

func (e *NotFound) Error() string { return e.What }

type Nope struct{ Ch chan int }

func (e *Nope) Error() string { return "nope" }

const Missing = "missing"

var ErrGone = errors.New("gone")

func Check(err error) string { return "" }

type Filter struct {
	Any    any
	secret string
	Done   chan struct{}
}

type Other struct{ A string }

//cache:repo prefix=bad ttl=1m negative=10s
type Bad interface {
	//cache:get key="a:{id}" notfound=NotFound
	A(ctx context.Context, id int64) (*User, error)
	//cache:get key="b:{id}" notfound=Missing
	B(ctx context.Context, id int64) (*User, error)
	//cache:get key="c:{id}" notfound=Check
	C(ctx context.Context, id int64) (*User, error)
	//cache:get key="d:{id}" notfound=nosuch.ErrX
	D(ctx context.Context, id int64) (*User, error)
	//cache:get key="e:{id}" notfound=errors.ErrNothing
	E(ctx context.Context, id int64) (*User, error)
	//cache:get key="f:{id}" notfound=*Nope
	F(ctx context.Context, id int64) (*User, error)
	//cache:get key="g:{id}" notfound="ErrGone,*NotFound"
	G(ctx context.Context, id int64) (*User, error)
	//cache:get key="h:{ids}" notfound=*NotFound
	H(ctx context.Context, ids []int64) (map[int64]*User, error)
	//cache:get key="i:{ids}" notfound=ErrGone
	I(ctx context.Context, ids []int64) (map[int64]*User, string, error)
	//cache:get key="j:{$1}"
	J(context.Context, int64) (*User, error)
	//cache:get key="k:{$3}"
	K(context.Context, int64) (*User, error)
	//cache:get key="l:{$2}"
	L(context.Context, int64, string) (*User, error)
	//cache:get key="m:{f#}"
	M(ctx context.Context, f Filter) (*User, error)
	//cache:get key="n:{o#}"
	N(ctx context.Context, o Other) (*User, error)
	//cache:evict keys="n:{s#}"
	DropN(ctx context.Context, s string) error
	//cache:get key="o:{id}"
	O(ctx context.Context, id int64) (*User, error, error)
}
