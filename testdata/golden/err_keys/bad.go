// Package errkeys has keys, patterns and puts that match nothing.
package errkeys

import (
	"context"
	"errors"
)

var ErrGone = errors.New("gone")

type User struct {
	ID    int64
	Email string
}

type Profile struct{ Bio string }

//cache:repo prefix=users ttl=10m negative=1s
type Users interface {
	//cache:get key="user:{id}" tags="org:{org}" ignore=org
	Get(ctx context.Context, id int64, org string) (*User, error)

	//cache:get key="user:{id}"
	Profile(ctx context.Context, id int64) (*Profile, error)

	//cache:get key="email:{email}" notfound=ErrGon
	ByEmail(ctx context.Context, email string) (*User, error)

	//cache:put key="user:{result.ID}"
	Save(ctx context.Context, u *User) (*User, error)

	//cache:put key="usr:{result.ID}"
	Typo(ctx context.Context, u *User) (*User, error)

	//cache:put key="email:{u.Email}" value=p
	WrongType(ctx context.Context, u *User, p *Profile) error

	//cache:evict keys="user:{u.Email},usr:{u.ID}" patterns="feed:*"
	Update(ctx context.Context, u *User) error

	// Parameters the key does not hold.
	//cache:get key="page:{n}"
	Page(ctx context.Context, n int, lang string, opts ...string) ([]User, error)

	//cache:get key="p2:{n}" ignore=n,nope,trace
	Page2(ctx context.Context, n int, trace bool, _ int) ([]User, error)
}

//cache:repo prefix=users ttl=1m
type Duplicate interface {
	InvalidateAll(ctx context.Context) error
}

//cache:repo prefix=totals ttl=1m
type Totals interface {
	//cache:get key="all"
	All(ctx context.Context) (int64, error)
}

// Cached sets local= longer than a ttl, on the method and on the repo, and
// two gets of one template disagree on it.
//
//cache:repo prefix=cached ttl=1m local=2m
type Cached interface {
	//cache:get key="a:{id}" local=30s
	A(ctx context.Context, id int64) (*User, error)

	//cache:get key="b:{id}" ttl=10m local=1h30m
	B(ctx context.Context, id int64) (*User, error)

	//cache:get key="c:{id}" ttl=30s
	C(ctx context.Context, id int64) (*User, error)

	//cache:get key="a:{other}" local=10s
	D(ctx context.Context, other int64) (*User, error)
}
