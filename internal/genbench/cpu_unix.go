//go:build unix

package genbench

import (
	"syscall"
	"time"
)

// CPU is the processor time of this process and its waited-for children
// (go list, the compiler it starts), user and system: a cost that a loaded
// machine distorts much less than the wall clock.
func CPU() time.Duration {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}
