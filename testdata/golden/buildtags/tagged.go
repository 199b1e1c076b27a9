//go:build !nocache

// Package buildtags copies the source's build constraint to the output.
package buildtags

import "context"

// Flags is only built without the nocache tag.
//
//cache:repo ttl=1m
type Flags interface {
	//cache:get key="flag:{name}"
	Enabled(ctx context.Context, name string) (bool, error)
}
