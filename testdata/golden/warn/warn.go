// Package warn generates, with warnings: directives that are comments, files
// that are skipped, a tag no read carries, a read nothing invalidates, and
// a write that invalidates nothing.
package warn

import "context"

type Article struct {
	ID    int64
	Title string
}

//cache:repo prefix=articles ttl=1m
type Articles interface {
	// cache:get key="article:{id}"
	Get(ctx context.Context, id int64) (*Article, error)

	//cahce:get key="x:{id}"
	//Cache:evict keys="x:{id}"
	X(ctx context.Context, id int64) (string, error)

	//cache:get key="feed:{page}" tags="feed"
	Feed(ctx context.Context, page int) ([]Article, error)

	//cache:get key="stats:{id}"
	Stats(ctx context.Context, id int64) (int, error)

	// fed is a typo of feed.
	//cache:evict tags="fed"
	Publish(ctx context.Context, a *Article) error

	// A write with no invalidation: passes straight through.
	UpdateTitle(ctx context.Context, id int64, title string) error

	// Not a write by its name.
	Settings(ctx context.Context) (map[string]string, error)
}
