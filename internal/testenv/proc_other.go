//go:build !linux

package testenv

import (
	"errors"
	"os/exec"
)

func setDeathSignal(*exec.Cmd) {}

var errNoSignals = errors.New("testenv: SIGSTOP/SIGCONT are only supported on Linux")

func stopProcess(int) error { return errNoSignals }

func contProcess(int) error { return errNoSignals }

// processAlive cannot tell without /proc: it says yes, so nothing that may
// still be in use is swept.
func processAlive(int) bool { return true }
