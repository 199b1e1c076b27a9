package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// setDeathSignal makes the kernel SIGKILL the child if the test process dies
// without running its cleanups (a panic, a timeout, a kill).
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// stopProcess sends SIGSTOP and waits until the process is stopped.
func stopProcess(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return err
	}
	return waitState(pid, func(st byte) bool { return st == 'T' }, "stopped")
}

// contProcess sends SIGCONT and waits until the process is no longer stopped.
func contProcess(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		return err
	}
	return waitState(pid, func(st byte) bool { return st != 'T' }, "running")
}

func waitState(pid int, ok func(byte) bool, want string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := procState(pid)
		if err != nil {
			return err
		}
		if ok(st) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d not %s after 5s (state %c)", pid, want, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// procState is the state letter of /proc/PID/stat (R, S, T, Z, ...).
func procState(pid int) (byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// "PID (COMM) S ...": COMM may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0, errors.New("unparsable /proc stat")
	}
	return b[i+2], nil
}

// processAlive reports whether pid is a live (not zombie) process.
func processAlive(pid int) bool {
	st, err := procState(pid)
	return err == nil && st != 'Z' && st != 'X'
}
