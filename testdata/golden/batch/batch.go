// Package batch has batch reads: gets whose key names a slice parameter.
package batch

import (
	"context"
	"errors"
	"strings"
)

var ErrNotFound = errors.New("not found")

type User struct {
	ID   int64
	Name string
	Team *Team
}

type Team struct{ ID int64 }

// A batch read next to the single read of the same template: they share
// entries, tags and invalidation.
//
//cache:repo prefix=users version=2 ttl=10m negative=1m notfound=ErrNotFound
type Users interface {
	//cache:get key="user:{id}" tags="user:{id},team:{result.Team.ID}"
	Get(ctx context.Context, id int64) (*User, error)
	//cache:get key="user:{ids}" tags="user:{ids},team:{result.Team.ID}"
	GetMany(ctx context.Context, ids []int64) (map[int64]*User, error)
	//cache:put key="user:{u.ID}" tags="user:{u.ID}"
	Save(ctx context.Context, u *User) (*User, error)
	//cache:evict keys="user:{id}"
	Delete(ctx context.Context, id int64) error
}

type Score struct {
	Name  string
	Board string
	Value int
}

// A batch read alone: string ids, a value type (absent ids are cached as
// absent), an L1, a static tag.
//
//cache:repo prefix=scores ttl=1m negative=30s local=10s
type Scores interface {
	//cache:get key="score:{names}" tags="scores,board:{result.Board}"
	Scores(ctx context.Context, names []string) (map[string]Score, error)
}

// Code marshals itself as text: its keys go through MarshalText.
type Code struct{ A, B string }

func (c Code) MarshalText() ([]byte, error) {
	if c.A == "" {
		return nil, errors.New("empty code")
	}
	return []byte(c.A + "-" + c.B), nil
}

type Label string

func (l Label) String() string { return strings.ToUpper(string(l)) }

type Thing struct{ Name string }

// ID is a named integer.
type ID int32

// Names that clash with the generated ones (b, buf, id, opts), elements
// with MarshalText, named strings and integers, variadic ids.
//
//cache:repo prefix=things ttl=1m
type Things interface {
	//cache:get key="code:{id}"
	ByCode(ctx context.Context, id []Code) (map[Code]*Thing, error)
	//cache:get key="label:{b}"
	ByLabel(ctx context.Context, b []Label) (map[Label]*Thing, error)
	//cache:get key="n:{buf}"
	ByNum(ctx context.Context, buf ...uint32) (map[uint32]*Thing, error)
	//cache:get key="p:{opts}"
	ByID(ctx context.Context, opts []ID) (map[ID]*Thing, error)
}
