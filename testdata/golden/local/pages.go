package local

import (
	"context"

	"github.com/cachegen/cachegen/testdata/golden/local/ext"
)

// Bytes is an alias: a type argument is named by what it stands for.
type Bytes = []byte

// Pages returns instantiated generic types. Their Spec.Shape is predicted
// as reflect names an instantiation (Page[int64], Pair[string,*…/ext.Page]),
// so a result type changed without regenerating is caught for them too
// (TestShapesMatch builds every one). A type argument spelled as a struct,
// func, chan or non-empty interface literal gets no Shape: the check is
// skipped for it.
//
//cache:repo prefix=pages ttl=1m
type Pages interface {
	//cache:get key="docs:{cursor}"
	Docs(ctx context.Context, cursor string) (Page[ext.Doc], error)

	//cache:get key="nested:{cursor}"
	Nested(ctx context.Context, cursor string) (Page[Page[int]], error)

	//cache:get key="pair:{k}"
	Pair(ctx context.Context, k string) (ext.Pair[string, *ext.Page], error)

	//cache:get key="blobs:{k}"
	Blobs(ctx context.Context, k string) (*ext.Pair[rune, Bytes], error)

	//cache:get key="mixed:{k}"
	Mixed(ctx context.Context, k string) (ext.Pair[[2]uint8, map[string][]any], error)

	//cache:get key="anys:{k}"
	Anys(ctx context.Context, k string) (Page[any], error)

	//cache:get key="literal:{k}"
	Literal(ctx context.Context, k string) (Page[struct{ N int }], error)

	//cache:evict keys="docs:{cursor},nested:{cursor},pair:{cursor},blobs:{cursor},mixed:{cursor},anys:{cursor},literal:{cursor}"
	Drop(ctx context.Context, cursor string) error
}
