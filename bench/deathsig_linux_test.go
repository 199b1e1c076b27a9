package bench

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel SIGKILL the child if the benchmark process
// dies without stopping it (a panic, a timeout, a kill).
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
