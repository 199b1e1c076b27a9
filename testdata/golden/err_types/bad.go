// Package errtypes has directives that do not fit the method's types.
package errtypes

import "context"

type User struct {
	ID   int64
	Tags map[string]string
	Rank float64
}

//cache:repo prefix=users ttl=10m
type Users interface {
	//cache:get key="user:{uid}"
	ByID(ctx context.Context, id int64) (*User, error)

	//cache:get key="user:rank:{u.Rank}:{u.Nmae}"
	ByUser(ctx context.Context, u *User) (*User, error)

	//cache:get key="user:tags:{u.Tags}"
	ByTags(ctx context.Context, u User) (*User, error)

	//cache:get key="one:{id}"
	NoContext(id int64) (*User, error)

	//cache:get key="two:{id}"
	OneResult(ctx context.Context, id int64) *User

	//cache:evict keys="one:{id}"
	NoError(ctx context.Context, id int64) bool

	//cache:put key="user:{result.ID}"
	PutNoValue(ctx context.Context, u *User) error

	//cache:evict keys="user:{result.ID}"
	EvictResult(ctx context.Context, id int64) (*User, error)
}

//cache:repo prefix=nottl
type NoTTL interface {
	//cache:get key="x:{id}" notfound=ErrMissing
	Get(ctx context.Context, id int64) (*User, error)
}

// copy shadows the builtin, which the deep copies (Spec.Clone) of User call.
func copy() {}
