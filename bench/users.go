package bench

import (
	"context"
	"errors"
	"time"
)

//go:generate go run github.com/cachegen/cachegen/cmd/cachegen

// User is one row of bench_users.
type User struct {
	ID        int64     `msgpack:"id"`
	Name      string    `msgpack:"name"`
	Email     string    `msgpack:"email"`
	Team      string    `msgpack:"team"`
	Bio       string    `msgpack:"bio"`
	Score     int64     `msgpack:"score"`
	UpdatedAt time.Time `msgpack:"updated_at"`
}

// ErrNotFound is returned for an id with no row.
var ErrNotFound = errors.New("bench: user not found")

// Users is the source the benchmarks cache. Get carries no tags, so the
// cachegen entry does what the hand-written cache-aside does (plus the
// runtime's own namespace, repository and pattern-group markers); Member
// carries a tag shared by a whole team, for the invalidation benchmark.
//
//cache:repo prefix=benchusers version=1 ttl=10m jitter=10% negative=30s
type Users interface {
	//cache:get key="user:{id}" notfound=ErrNotFound
	Get(ctx context.Context, id int64) (*User, error)

	//cache:get key="member:{team}:{id}" tags="team:{team}"
	Member(ctx context.Context, team string, id int64) (*User, error)

	//cache:get key="user:{ids}" notfound=ErrNotFound
	GetMany(ctx context.Context, ids []int64) (map[int64]*User, error)

	//cache:evict keys="user:{id}"
	Touch(ctx context.Context, id int64) error

	//cache:evict tags="team:{team}"
	TeamChanged(ctx context.Context, team string) error
}

// LocalUsers is Users with an in-process L1 in front of Redis (local=): the
// two-level cache, coherent across processes through the invalidations'
// pub/sub messages.
//
//cache:repo prefix=benchlocal version=1 ttl=10m jitter=10% negative=30s local=1m
type LocalUsers interface {
	//cache:get key="user:{id}" notfound=ErrNotFound
	Get(ctx context.Context, id int64) (*User, error)

	//cache:get key="member:{team}:{id}" tags="team:{team}"
	Member(ctx context.Context, team string, id int64) (*User, error)

	//cache:get key="user:{ids}" notfound=ErrNotFound
	GetMany(ctx context.Context, ids []int64) (map[int64]*User, error)

	//cache:evict keys="user:{id}"
	Touch(ctx context.Context, id int64) error

	//cache:evict tags="team:{team}"
	TeamChanged(ctx context.Context, team string) error
}

// ShortUsers and FreshUsers are the refresh benchmark's pair: hot rows with
// a one-second TTL, without and with refresh-ahead (refresh=80: a hit past
// 80–90 % of the TTL reloads the entry in the background).
//
//cache:repo prefix=benchshort version=1 ttl=1s jitter=10% negative=1s
type ShortUsers interface {
	//cache:get key="user:{id}" notfound=ErrNotFound
	Get(ctx context.Context, id int64) (*User, error)

	//cache:evict keys="user:{id}"
	Touch(ctx context.Context, id int64) error
}

// FreshUsers is ShortUsers with refresh=80.
//
//cache:repo prefix=benchfresh version=1 ttl=1s jitter=10% negative=1s refresh=80
type FreshUsers interface {
	//cache:get key="user:{id}" notfound=ErrNotFound
	Get(ctx context.Context, id int64) (*User, error)

	//cache:evict keys="user:{id}"
	Touch(ctx context.Context, id int64) error
}
