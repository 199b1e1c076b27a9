//go:build never

package warn

import "context"

// Excluded by its build constraint in this run.
//
//cache:repo ttl=1m
type Excluded interface {
	//cache:get key="e:{id}"
	Get(ctx context.Context, id int64) (string, error)
}
