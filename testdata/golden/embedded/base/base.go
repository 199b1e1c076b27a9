// Package base is embedded from another package.
package base

import "context"

type Health struct{ OK bool }

type Pinger interface {
	Ping(ctx context.Context) (Health, error)
	Close() error
}
