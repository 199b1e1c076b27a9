// Package defaults relies on the defaults: prefix from the interface name,
// version 1, jitter 10%, no negative caching.
package defaults

import "context"

type Config struct {
	Values map[string]string `json:"values"`
}

//cache:repo ttl=1h
type Settings interface {
	//cache:get key="config"
	Config(ctx context.Context) (*Config, error)

	//cache:evict keys="config"
	Reload(ctx context.Context) error
}
