package local

import "context"

// Drafts is in another file of the package: its copies of the same types
// have names of their own.
//
//cache:repo prefix=drafts ttl=1m
type Drafts interface {
	//cache:get key="draft:{id}" local=1m
	Get(ctx context.Context, id int64) (*Article, error)

	//cache:get key="draft:tags:{id}"
	Tags(ctx context.Context, id int64) ([]Tag, error)
}
