// Package keys covers every kind of placeholder value and nil-checked hops.
package keys

import (
	"context"
	"net/netip"
	"time"
)

type Status int

func (s Status) String() string { return [...]string{"new", "done"}[s] }

type Slug string

type Color struct{ R, G, B uint8 }

func (c Color) String() string { return "#" + string(rune('0'+c.R)) }

type Org struct {
	ID   int64
	Name *string
}

type Base struct{ Tenant string }

type Query struct {
	*Base
	Org    *Org
	Status Status
	Slug   Slug
	Since  time.Time
	Addr   netip.Addr
	Active bool
	Color  Color
	Limit  uint16
}

type Item struct{ ID int64 }

// Items builds keys from every allowed kind of value.
//
//cache:repo prefix=items ttl=1m
type Items interface {
	//cache:get key="q:{q.Tenant}:{q.Org.ID}:{q.Org.Name}:{q.Status}:{q.Slug}:{q.Active}:{q.Limit}"
	Search(ctx context.Context, q *Query) ([]Item, error)

	//cache:get key="t:{q.Since}:{q.Addr}:{q.Color}" tags="addr:{q.Addr}"
	Recent(ctx context.Context, q Query) ([]Item, error)

	//cache:get key="at:{at}:{s}" tags="item:{result.ID},at:{at}"
	At(ctx context.Context, at *time.Time, s fmtStringer) (*Item, error)

	//cache:evict keys="at:{at}:{s}" tags="at:{at}"
	Forget(ctx context.Context, at *time.Time, s fmtStringer) error

	//cache:evict keys="q:{q.Tenant}:{q.Org.ID}:{q.Org.Name}:{q.Status}:{q.Slug}:{q.Active}:{q.Limit}" tags="org:{q.Org.ID}:{q.Status}:{q.Slug}"
	Drop(ctx context.Context, q *Query) error

	//cache:get key="tr:{a}:{b}:{c}" tags="tr:{a}:{b}:{c}"
	Triple(ctx context.Context, a, b, c string) (*Item, error)

	//cache:put key="tr:{a}:{b}:{c}"
	SetTriple(ctx context.Context, a, b, c string) (*Item, error)
}

type fmtStringer interface{ String() string }
