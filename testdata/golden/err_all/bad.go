// Package errall mixes syntax errors with semantic ones: every error is
// reported in one run, each once, where it is wrong. A directive that does
// not parse does not hide the other directives' errors, and one mistyped
// placeholder does not echo on the methods that name its key.
package errall

import "context"

type User struct {
	ID    int64
	Name  string
	Score float64
}

//cache:repo prefix=users ttl=10m
type Users interface {
	// The root cause: {uid} names no parameter.
	//cache:get key="user:{uid}"
	Get(ctx context.Context, id int64) (*User, error)

	// Not reported: they name the key of Get, which is wrong already.
	//cache:evict keys="user:{id}"
	Delete(ctx context.Context, id int64) error
	//cache:evict patterns="user:*"
	Purge(ctx context.Context) error
	//cache:put key="user:{u.ID}" value=u
	Save(ctx context.Context, u *User) error

	// A syntax error, then semantic errors on the next methods.
	//cache:get key="email:{email} ttl=1m
	ByEmail(ctx context.Context, email string) (*User, error)

	//cache:get key="score:{s}"
	ByScore(ctx context.Context, s float64) (*User, error)

	//cache:get key="rank:{r}" ttl=soon
	ByRank(ctx context.Context, r int) (*User, error)

	//cache:get key="one:{id}"
	One(ctx context.Context, id int64) *User

	//cache:evict keys="nope:{id}"
	Nope(ctx context.Context, id int64) error
}

// A bad ttl on the repo: its gets are not told they have no ttl.
//
//cache:repo prefix=orders ttl=bad
type Orders interface {
	//cache:get key="order:{id}"
	Get(ctx context.Context, id int64) (*User, error)

	//cache:get key="o2:{id}" ttl=1m
	Get2(ctx context.Context, id []int64) (*User, error)
}

// A repo line that does not parse: the methods are still checked.
//
//cache:repo prefix="x ttl=1m
type Broken interface {
	//cache:get key="b:{idd}" ttl=1m
	Get(ctx context.Context, id int64) (*User, error)
}
