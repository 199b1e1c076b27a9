package news

import "context"

// Users is the source of truth for user profiles.
//
//cache:repo prefix=users version=1 ttl=30m jitter=10% negative=1m local=1m
type Users interface {
	// Profile returns the user with the given id, or ErrNotFound.
	//
	//cache:get key="user:{id}" notfound=ErrNotFound tags="user:{id}"
	Profile(ctx context.Context, id int64) (*User, error)

	// UpdateProfile saves name, email and bio of user u.ID and returns the
	// stored row. Write-through: the result replaces the cached profile, and
	// the author's cached articles (which show the name) are dropped.
	//
	//cache:put key="user:{u.ID}" tags="author:{u.ID}"
	UpdateProfile(ctx context.Context, u *User) (*User, error)
}
