package runtime

import "context"

// Loader is what generated code hands to Load on a miss.
type Loader[T any] struct {
	// Load calls the wrapped repository.
	Load func(ctx context.Context) (T, error)
	// Tags are the entry's tags known before the call (from parameters).
	Tags []string
	// ResultTags, when set, returns the tags taken from a positive result
	// ({result.Field}); ok=false (a nil hop) means the result is not stored.
	ResultTags func(v T) (tags []string, ok bool)
}

// loader is a Loader as the protocol sees it: over V = *T (typed.go).
type loader[V any] struct {
	Load       func(ctx context.Context) (V, error)
	Tags       []string
	ResultTags func(v V) (tags []string, ok bool)
}
