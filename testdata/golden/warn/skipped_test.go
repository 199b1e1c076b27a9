package warn

import "context"

// A repository in a test file is not generated.
//
//cache:repo ttl=1m
type TestOnly interface {
	//cache:get key="t:{id}"
	Get(ctx context.Context, id int64) (string, error)
}
