// Package options covers ttl, jitter, negative and notfound forms.
package options

import (
	"context"
	"io/fs"
)

// Files has options on the repo and overrides on methods.
//
//cache:repo prefix=files version=7 ttl=90m jitter=2s negative=0 notfound=fs.ErrNotExist
type Files interface {
	//cache:get key="file:{name}"
	Read(ctx context.Context, name string) ([]byte, error)

	//cache:get key="mode:{name}" ttl=1500ms jitter=12.5% negative=250ms
	Mode(ctx context.Context, name string) (fs.FileMode, error)

	//cache:get key="dir:{name}" jitter=0%
	List(ctx context.Context, name string) ([]string, error)
}
