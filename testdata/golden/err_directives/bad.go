// Package errdirectives has malformed directives: all are reported at once.
package errdirectives

import "context"

type User struct{ ID int64 }

//cache:repo prefix=users ttl=10 jitter=150% colour=blue
type Users interface {
	//cache:gett key="user:{id}"
	Get(ctx context.Context, id int64) (*User, error)

	//cache:get key="user:{id" ttl=1m
	Get2(ctx context.Context, id int64) (*User, error)

	//cache:get key="a:{id}{id}" ttl=1m tll=2m negative=soon
	Get3(ctx context.Context, id int64) (*User, error)

	//cache:evict keys="user:{id}" patterns="user:{id}"
	Delete(ctx context.Context, id int64) error
}

// Plain has no repo directive.
type Plain interface {
	//cache:get key="x" ttl=1m
	Get(ctx context.Context) (*User, error)
}

//cache:get key="x" ttl=1m
func helper() {}

//cache:repo prefix=local ttl=1m local=soon
type Local interface {
	//cache:get key="a:{id}" local=-1s
	A(ctx context.Context, id int64) (*User, error)

	//cache:get key="b:{id}" local=30
	B(ctx context.Context, id int64) (*User, error)
}

//cache:repo ttl=1m
type NotAnInterface struct{}
