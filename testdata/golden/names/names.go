// Package names has every combination of names the generated code could
// clash with: keys and tags of three or more placeholders side by side,
// parameters named like generated locals, unexported methods named like
// the generated fields, type parameters named like imports, and parameters
// named like predeclared identifiers, and unexported methods and
// placeholders named like the key helpers and their parameters.
package names

import (
	"context"
	"time"
)

type T struct {
	ID   string
	When time.Time
}

// Multi has two keys of three placeholders in one method, and a put key of
// three placeholders with evict=.
//
//cache:repo prefix=multi ttl=1m
type Multi interface {
	//cache:get key="x:{a}:{b}:{c}"
	Get(ctx context.Context, a, b, c string) (*T, error)
	//cache:get key="y:{a}:{b}:{c}"
	Get2(ctx context.Context, a, b, c string) (*T, error)
	//cache:evict keys="x:{a}:{b}:{c},y:{a}:{b}:{c}"
	Del(ctx context.Context, a, b, c string) error
	//cache:put key="x:{a}:{b}:{c}" value=t evict="y:{a}:{b}:{c}" tags="t:{a}:{b}:{c},u:{c}:{b}:{a}"
	Set(ctx context.Context, a, b, c string, t *T) error
	// Keys and tags behind the same nil checks share one if.
	//cache:evict keys="x:{n.P.ID}:{n.P.ID}:{n.Q},y:{n.P.ID}:{n.P.ID}:{n.Q}" tags="t:{n.P.ID}:{n.P.ID}:{n.Q},n:{n.Q}"
	Drop(ctx context.Context, n *Nested) error
}

type Nested struct {
	P *T
	Q string
}

// Locals has parameters named like the generated locals and unexported
// methods named like the generated fields.
//
//cache:repo prefix=locals ttl=1m
type Locals interface {
	//cache:get key="t:{tags0}:{tags1}" tags="a:{tags0},b:{tags1}"
	Get(ctx context.Context, tags0, tags1 string) (*T, error)
	//cache:get key="u:{b}:{txt0}:{err0}" tags="a:{b},b:{txt0}" ignore=key
	ByB(ctx context.Context, b, txt0, err0 string, key time.Time) (*T, error)
	//cache:evict keys="t:{tags0}:{tags1}" tags="a:{tags0},b:{tags1}"
	Del(ctx context.Context, tags0, tags1 string) error
	//cache:put key="t:{inv}:{key}" value=res evict="t:{inv}:{key}" tags="a:{inv},b:{key}"
	Set(ctx context.Context, inv, key string, res *T) error

	next(ctx context.Context) error
	cache() int
	ksGet() string
	repo() bool
}

// Generic has type parameters named like the imports of the generated file.
//
//cache:repo prefix=generic ttl=1m
type Generic[runtime ~string, time any] interface {
	//cache:get key="g:{id}"
	Get(ctx context.Context, id runtime) (time, error)
	//cache:evict keys="g:{id}"
	Del(ctx context.Context, id runtime) error
}

// Predeclared has parameters named like predeclared identifiers.
//
//cache:repo prefix=predeclared ttl=1m
type Predeclared interface {
	//cache:get key="p:{append}:{string}:{len}" tags="l:{len},s:{string}"
	Get(ctx context.Context, append string, string int64, len bool) ([]T, error)
	//cache:evict keys="p:{append}:{string}:{len}" tags="l:{len},s:{string}"
	Del(ctx context.Context, append string, string int64, len bool) error
	//cache:get key="q:{nil}:{true}:{make}" tags="n:{nil}"
	Q(ctx context.Context, nil string, true int, make string) (map[string]int, error)
}

// Helpers has unexported methods named like the key helpers (one per
// keyspace, keyGet…), and placeholders whose helper parameters would clash:
// with the buffer b, with a Go keyword (q.Type), with each other (x.ID and
// y.ID). Drop binds n:{} in other forms than Num does (an unsigned integer, a
// MarshalText text), so that keyspace gets a second helper.
//
//cache:repo prefix=helpers ttl=1m
type Helpers interface {
	//cache:get key="h:{b}:{q.Type}:{q.B}"
	Get(ctx context.Context, b string, q Query) (*T, error)
	//cache:get key="pair:{x.ID}:{y.ID}"
	ByType(ctx context.Context, x, y T) (*T, error)
	//cache:get key="n:{n}:{s}"
	Num(ctx context.Context, n int64, s string) (*T, error)
	//cache:evict keys="n:{u}:{when},h:{b}:{q.Type}:{q.B},n:{n}:{b}"
	Drop(ctx context.Context, u uint32, when time.Time, b string, q Query, n int16) error

	keyGet() int
	keyByType(ctx context.Context) error
}

type Query struct {
	Type string
	B    int
}
