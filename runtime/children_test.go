package runtime

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runChildren runs n copies of this test binary as child processes (TestMain
// tells them from a test run by their environment), child p with env(p)
// added. Until every child has exited it calls fault every interval (when
// not nil); past deadline it kills them and fails the test. It returns each
// child's combined output and the errors of the children that failed.
func runChildren(t *testing.T, n int, env func(p int) []string, deadline, interval time.Duration, fault func()) ([]string, []error) {
	t.Helper()
	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	for p := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), env(p)...)
		outs[p] = &strings.Builder{}
		cmd.Stdout, cmd.Stderr = outs[p], outs[p]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[p] = cmd
	}
	exited := make(chan error, n)
	for _, cmd := range cmds {
		go func() { exited <- cmd.Wait() }()
	}
	var tick <-chan time.Time
	if fault != nil {
		tk := time.NewTicker(interval)
		defer tk.Stop()
		tick = tk.C
	}
	late := time.After(deadline)
	var errs []error
	for running := n; running > 0; {
		select {
		case err := <-exited:
			running--
			if err != nil {
				errs = append(errs, err)
			}
		case <-tick:
			fault()
		case <-late:
			for _, cmd := range cmds {
				_ = cmd.Process.Kill()
			}
			t.Fatal("the child processes did not finish in time")
		}
	}
	res := make([]string, n)
	for p, out := range outs {
		res[p] = out.String()
	}
	return res, errs
}

// lastLine is the last line of out that starts with prefix, or "".
func lastLine(out, prefix string) string {
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			line = l
		}
	}
	return line
}
