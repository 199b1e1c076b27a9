//go:build !unix

package genbench

import "time"

// CPU is not measured here: the benchmarks report 0.
func CPU() time.Duration { return 0 }
