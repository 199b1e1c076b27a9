//go:build unix

package history

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A fileRegister is a linearizable register shared by processes: a file
// holding a version, read and written under flock.
type fileRegister string

func (f fileRegister) do(how int, fn func(*os.File) error) error {
	file, err := os.OpenFile(string(f), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return err
	}
	defer file.Close()
	if err := syscall.Flock(int(file.Fd()), how); err != nil {
		return err
	}
	defer syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
	return fn(file)
}

func (f fileRegister) write(v int64) error {
	return f.do(syscall.LOCK_EX, func(file *os.File) error {
		_, err := file.WriteAt(binary.LittleEndian.AppendUint64(nil, uint64(v)), 0)
		return err
	})
}

func (f fileRegister) read() (int64, error) {
	var v int64
	err := f.do(syscall.LOCK_SH, func(file *os.File) error {
		b := make([]byte, 8)
		n, err := file.ReadAt(b, 0)
		if n == 0 { // never written
			return nil
		}
		if err != nil {
			return err
		}
		v = int64(binary.LittleEndian.Uint64(b))
		return nil
	})
	return v, err
}

// TestHelperProcess is not a test: TestProcessesShareAHistory runs the test
// binary again with HISTORY_HELPER=DIR,PROCESS,MODE, and this function then
// is one recording process.
func TestHelperProcess(t *testing.T) {
	env := os.Getenv("HISTORY_HELPER")
	if env == "" {
		return
	}
	var dir, mode string
	var p int
	if _, err := fmt.Sscanf(env, "%s %d %s", &dir, &p, &mode); err != nil {
		t.Fatalf("HISTORY_HELPER=%q: %v", env, err)
	}
	rec, err := Create(filepath.Join(dir, fmt.Sprintf("p%d.jsonl", p)), p)
	if err != nil {
		t.Fatal(err)
	}
	shared := fileRegister(filepath.Join(dir, "shared.reg"))
	own := fileRegister(filepath.Join(dir, fmt.Sprintf("own%d.reg", p)))
	for i := int64(1); i <= 100; i++ {
		// Process 0 alone writes the shared key, in order; everyone
		// reads it. Each process writes and reads a key of its own.
		if p == 0 {
			c := rec.Invoke(0, "shared", Write, i)
			c.Return(0, shared.write(i))
		} else {
			c := rec.Invoke(0, "shared", Read, 0)
			v, err := shared.read()
			c.Return(v, err)
		}
		key := fmt.Sprintf("own%d", p)
		c := rec.Invoke(1, key, Write, i)
		c.Return(0, own.write(i))
		c = rec.Invoke(1, key, Read, 0)
		v, err := own.read()
		c.Return(v, err)
	}
	if mode == "die" {
		rec.Invoke(2, "shared", Write, 1000) // and the process dies
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestProcessesShareAHistory: four OS processes record to a file each,
// one of them dies in the middle of an operation; Load merges the files
// and both checkers accept the result.
func TestProcessesShareAHistory(t *testing.T) {
	dir := t.TempDir()
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*strings.Builder, procs)
	for p := range cmds {
		mode := "ok"
		if p == procs-1 {
			mode = "die"
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=60s")
		cmd.Env = append(os.Environ(), "HISTORY_HELPER="+dir+" "+strconv.Itoa(p)+" "+mode)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		outs[p] = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[p] = cmd
	}
	var paths []string
	for p, cmd := range cmds {
		err := cmd.Wait()
		if p < procs-1 && err != nil {
			t.Fatalf("process %d: %v\n%s", p, err, outs[p])
		}
		if p == procs-1 && err == nil {
			t.Fatalf("process %d was to die, exited cleanly\n%s", p, outs[p])
		}
		paths = append(paths, filepath.Join(dir, fmt.Sprintf("p%d.jsonl", p)))
	}

	ops, err := Load(paths...)
	if err != nil {
		t.Fatal(err)
	}
	if want := procs*300 + 1; len(ops) != want {
		t.Fatalf("Load: %d ops, want %d", len(ops), want)
	}
	perProcess := map[int]int{}
	var unknown []Op
	for i, o := range ops {
		perProcess[o.Process]++
		if i > 0 && ops[i-1].Invoke > o.Invoke {
			t.Fatalf("not sorted by invoke time at %d", i)
		}
		if o.Unknown() {
			unknown = append(unknown, o)
		}
	}
	if len(perProcess) != procs || len(unknown) != 1 || unknown[0].Process != procs-1 || unknown[0].Value != 1000 {
		t.Fatalf("per process %v, unknown %v", perProcess, unknown)
	}
	if stale := CheckNoStaleRead(ops); len(stale) != 0 {
		t.Errorf("stale reads: %v", stale)
	}
	res, err := CheckLinearizable(ops, 30*time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if res.Result != Ok || res.Keys != procs+1 {
		t.Errorf("%v, want Ok on %d keys", res, procs+1)
	}

	// The same history with a stale read added is caught by both: a read
	// of v1 after the last write of the shared key returned.
	var last Op
	for _, o := range ops {
		if o.Key == "shared" && o.Kind == Write && !o.Unknown() && o.Return > last.Return {
			last = o
		}
	}
	ops = append(ops, Op{Process: 1, Client: 9, Key: "shared", Kind: Read, Value: 1, Invoke: last.Return + 1, Return: last.Return + 2})
	if stale := CheckNoStaleRead(ops); len(stale) != 1 {
		t.Errorf("one stale read planted, %d found: %v", len(stale), stale)
	}
	if res, _ := CheckLinearizable(ops, 30*time.Second, ""); res.Result != Illegal || len(res.IllegalKeys) != 1 || res.IllegalKeys[0] != "shared" {
		t.Errorf("planted stale read: %v", res)
	}
}
