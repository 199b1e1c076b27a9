// Package local covers local= (how long a read may be served from the
// process's memory) and the deep copies generated for Spec.Clone.
package local

import (
	"context"
	"math/big"
	"time"

	"github.com/cachegen/cachegen/testdata/golden/local/ext"
)

// Base is embedded by value.
type Base struct {
	ID     int64
	Labels []string
}

// Meta is reached through a pointer (not embedded: a nil embedded pointer
// would come back allocated, and the generator refuses it).
type Meta struct {
	Source string
	Scores map[string]int
}

// Author is reached through slices, maps and Page.
type Author struct {
	Name   string
	Emails []string
}

// Point is a map key without references.
type Point struct{ X, Y int }

// Tag holds no references (time.Time is immutable): assignment copies it.
type Tag struct {
	Name   string
	Weight float64
	At     time.Time
}

// Article has a part of every kind.
type Article struct {
	Base
	Meta      *Meta
	Title     string
	Body      []byte
	Tags      []Tag
	Authors   []*Author
	Attrs     map[string][]string
	ByPoint   map[Point]*Author
	Grid      [2][3]int
	Links     [2][]string
	Matrix    [][]float64
	Published time.Time
	Updated   *time.Time
	Extra     any
	Notes     struct {
		Lines []string
		Count int
	}
	Doc     ext.Doc
	Opaque  ext.Opaque
	Wrapper ext.Wrapper
	Amount  *big.Int
}

// Node is recursive: its copy recurses through the functions.
type Node struct {
	Value    int
	Next     *Node
	Children []Node
	Index    map[string]*Node
}

// cloneNode_Articles would be the name of Node's copy: the generated one
// takes another.
var cloneNode_Articles = "taken"

// Index and Authors are named map and slice types.
type (
	Index   map[string][]int
	Authors []*Author
)

// Page is generic; instantiations are copied like any struct.
type Page[T any] struct {
	Items []T
	Next  string
}

// Stats holds no references: no Clone.
type Stats struct {
	Views int64
	Ratio float64
	Name  string
	At    time.Time
	Grid  [4]int
	Where Point
}

// Articles sets local= on the repository; gets inherit, override or turn it off.
//
//cache:repo prefix=articles ttl=10m local=30s
type Articles interface {
	//cache:get key="article:{id}"
	Get(ctx context.Context, id int64) (*Article, error)

	// ByID shares Get's key template, local= included.
	//cache:get key="article:{articleID}"
	ByID(ctx context.Context, articleID int64) (*Article, error)

	//cache:get key="feed:{page}" ttl=1m local=5s
	Feed(ctx context.Context, page int) ([]*Article, error)

	//cache:get key="stats:{id}" local=0
	Stats(ctx context.Context, id int64) (Stats, error)

	//cache:get key="count:{id}"
	Count(ctx context.Context, id int64) (int64, error)

	//cache:get key="published:{id}"
	Published(ctx context.Context, id int64) (time.Time, error)

	// Tree may live in memory as long as in Redis.
	//cache:get key="tree:{id}" local=10m
	Tree(ctx context.Context, id int64) (*Node, error)

	//cache:get key="opaque:{id}"
	Opaque(ctx context.Context, id int64) (ext.Opaque, error)

	//cache:get key="raw:{id}"
	Raw(ctx context.Context, id int64) ([]byte, error)

	//cache:get key="index:{id}"
	Index(ctx context.Context, id int64) (Index, error)

	//cache:get key="authors:{id}"
	Authors(ctx context.Context, id int64) (Authors, error)

	//cache:get key="ids:{cursor}"
	IDs(ctx context.Context, cursor string) (Page[int64], error)

	//cache:get key="people:{cursor}"
	People(ctx context.Context, cursor string) (Page[*Author], error)

	//cache:get key="extra:{id}"
	Extra(ctx context.Context, id int64) (any, error)

	//cache:get key="amount:{id}"
	Amount(ctx context.Context, id int64) (*big.Int, error)

	//cache:evict keys="article:{id}"
	Delete(ctx context.Context, id int64) error
}

// Store is generic: results that depend on its type parameters are copied
// through the codec, unless their type set holds no references.
//
//cache:repo prefix=store ttl=5m local=10s
type Store[K ~string, V any, N ~int32 | ~int64] interface {
	//cache:get key="item:{k}"
	Get(ctx context.Context, k K) (V, error)

	//cache:get key="page:{k}"
	Page(ctx context.Context, k K) (Page[V], error)

	//cache:get key="num:{k}"
	Num(ctx context.Context, k K) (N, error)

	//cache:get key="ints:{k}"
	Ints(ctx context.Context, k K) ([]int, error)
}
