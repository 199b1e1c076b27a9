// Package basic is the example of the issue: a users repository with every
// verb.
package basic

import (
	"context"
	"errors"
)

var ErrNotFound = errors.New("not found")

type User struct {
	ID    int64  `msgpack:"id"`
	Email string `msgpack:"email"`
	Name  string
}

type Article struct {
	ID    int64
	Title string
}

// Users is the source of truth for users.
//
//go:generate go tool cachegen
//cache:repo prefix=users version=1 ttl=10m jitter=10% negative=30s
type Users interface {
	//cache:get key="user:{id}" ttl=30m notfound=ErrNotFound tags="user:{id}"
	Get(ctx context.Context, id int64) (*User, error)

	//cache:get key="user:email:{email}" tags="user:{result.ID}"
	ByEmail(ctx context.Context, email string) (*User, error)

	//cache:get key="feed:{page}" ttl=1m tags="feed"
	Feed(ctx context.Context, page int) ([]Article, error)

	//cache:put key="user:{result.ID}" evict="user:email:{u.Email}" tags="feed"
	Save(ctx context.Context, u *User) (*User, error)

	//cache:evict keys="user:{u.ID}" tags="user:{u.ID},feed"
	Update(ctx context.Context, u *User) error

	//cache:evict patterns="feed:*"
	Publish(ctx context.Context, a Article) error

	Delete(ctx context.Context, id int64) error // no directive: passes straight through
}
