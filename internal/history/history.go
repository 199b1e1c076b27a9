// Package history records Jepsen-style histories of reads and writes of
// versioned keys, from any number of goroutines and OS processes, and
// checks them: CheckNoStaleRead (no read returns a version older than one
// whose write had already returned) and CheckLinearizable (each key behaves
// like a linearizable register, decided by porcupine).
//
// A value is a version: the writes of a key carry increasing versions
// greater than zero, and a read returns the version it saw, 0 for a key
// that is absent. Times are time.Now().UnixNano(), the wall clock
// (CLOCK_REALTIME), which every process of one machine shares, so the
// histories of several processes merge into one: each process appends to
// its own file with a Recorder, and Load merges the files.
//
// An operation's recorded interval contains the real one: the invoke time
// is taken before the operation starts and the return time after it ends.
// An operation that failed or never returned (its process died) has an
// unknown outcome: a write may or may not have taken effect, at any time
// after its invocation; a read tells nothing and is ignored.
package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Kind is what an operation does: Read or Write.
type Kind string

// The operation kinds.
const (
	Read  Kind = "read"
	Write Kind = "write"
)

// An Op is one operation of a history.
type Op struct {
	Process int    `json:"process"` // the recording process (any id, e.g. a worker number or pid)
	Client  int    `json:"client"`  // the client within the process (a goroutine, a connection)
	Key     string `json:"key"`
	Kind    Kind   `json:"kind"`
	Value   int64  `json:"value"`            // the version written, or the version the read returned (0: absent)
	Invoke  int64  `json:"invoke"`           // UnixNano before the operation started
	Return  int64  `json:"return,omitempty"` // UnixNano after it returned; 0 if it never did
	Err     string `json:"err,omitempty"`    // the error it returned, if any
}

// Unknown reports whether the operation's outcome is unknown: it returned an
// error or never returned.
func (o Op) Unknown() bool { return o.Err != "" || o.Return == 0 }

// Tally counts the reads, the writes and the operations whose outcome is
// unknown (failed or never returned; counted apart from both).
func Tally(ops []Op) (reads, writes, unknown int) {
	for _, op := range ops {
		switch {
		case op.Unknown():
			unknown++
		case op.Kind == Read:
			reads++
		default:
			writes++
		}
	}
	return reads, writes, unknown
}

func (o Op) String() string {
	var what string
	if o.Kind == Write {
		what = fmt.Sprintf("write %q v%d", o.Key, o.Value)
	} else {
		what = fmt.Sprintf("read %q", o.Key)
		if !o.Unknown() {
			what += fmt.Sprintf(" -> v%d", o.Value)
		}
	}
	end := "never returned"
	if o.Return != 0 {
		end = fmt.Sprintf("returned %s", stamp(o.Return))
	}
	if o.Err != "" {
		end += fmt.Sprintf(" with error %q", o.Err)
	}
	return fmt.Sprintf("p%d/c%d %s (invoked %s, %s)", o.Process, o.Client, what, stamp(o.Invoke), end)
}

// stamp renders a UnixNano time with nanoseconds, in UTC.
func stamp(ns int64) string {
	return time.Unix(0, ns).UTC().Format("15:04:05.000000000")
}

// line is one JSON line of a history file: an invocation, the return of an
// earlier invocation (same ID), or a complete operation.
type line struct {
	T  string `json:"t"` // "invoke", "return" or "op"
	ID int64  `json:"id,omitempty"`
	Op
}

// A Recorder appends the operations of one process to a file, one JSON line
// per event, each with a single write(2) — nothing is buffered, so a process
// killed at any moment leaves every event it recorded. It is safe for
// concurrent use.
type Recorder struct {
	process int

	mu   sync.Mutex
	f    *os.File
	next int64
	err  error // the first write error
}

// Create creates (or truncates) the history file at path for the process
// with the given id.
func Create(path string, process int) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o666)
	if err != nil {
		return nil, err
	}
	return &Recorder{process: process, f: f}, nil
}

// A Call is an invoked operation; Return records how it ended.
type Call struct {
	r    *Recorder
	id   int64
	kind Kind
	done bool
}

// Invoke records that client is about to perform an operation: for a Write,
// value is the version it writes; for a Read it is ignored. Call Invoke
// right before the operation starts and Return right after it ends.
func (r *Recorder) Invoke(client int, key string, kind Kind, value int64) *Call {
	now := time.Now().UnixNano()
	if kind == Read {
		value = 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	r.writeLocked(line{T: "invoke", ID: r.next, Op: Op{Process: r.process, Client: client, Key: key, Kind: kind, Value: value, Invoke: now}})
	return &Call{r: r, id: r.next, kind: kind}
}

// Return records that the operation ended: value is the version a Read
// returned (ignored for a Write), err the error it returned — which makes
// the outcome unknown. Only the first Return of a Call counts.
func (c *Call) Return(value int64, err error) {
	now := time.Now().UnixNano()
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	l := line{T: "return", ID: c.id, Op: Op{Return: now}}
	if c.kind == Read {
		l.Value = value
	}
	if err != nil {
		l.Err = err.Error()
		if l.Err == "" {
			l.Err = "error"
		}
	}
	r.writeLocked(l)
}

// Append records a complete operation, for a caller that times operations
// itself. Its Process is set to the recorder's.
func (r *Recorder) Append(op Op) error {
	op.Process = r.process
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeLocked(line{T: "op", Op: op})
	return r.err
}

func (r *Recorder) writeLocked(l line) {
	if r.err != nil {
		return
	}
	b, err := json.Marshal(l)
	if err == nil {
		_, err = r.f.Write(append(b, '\n'))
	}
	if err != nil {
		r.err = fmt.Errorf("history: recording to %s: %w", r.f.Name(), err)
	}
}

// Err is the first error met while recording, if any.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close closes the file; it returns the first recording error, if any.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.f.Close(); err != nil && r.err == nil {
		r.err = err
	}
	return r.err
}

// Load reads and merges history files written by Recorders (or by hand, one
// JSON Op per line with "t":"op"). An invocation without a return is an
// operation that never returned. A last line cut short, as by a process
// killed in the middle of a write, is ignored. The operations come sorted
// by invoke time.
func Load(paths ...string) ([]Op, error) {
	var ops []Op
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		fileOps, err := parse(b)
		if err != nil {
			return nil, fmt.Errorf("history: %s: %w", p, err)
		}
		ops = append(ops, fileOps...)
	}
	Sort(ops)
	return ops, nil
}

// Sort orders ops by invoke time (then process, client, return time).
func Sort(ops []Op) {
	sort.SliceStable(ops, func(i, j int) bool {
		a, b := ops[i], ops[j]
		if a.Invoke != b.Invoke {
			return a.Invoke < b.Invoke
		}
		if a.Process != b.Process {
			return a.Process < b.Process
		}
		if a.Client != b.Client {
			return a.Client < b.Client
		}
		return a.Return < b.Return
	})
}

func parse(b []byte) ([]Op, error) {
	var ops []Op
	pending := map[int64]int{} // invocation id -> index in ops
	r := bufio.NewReader(bytes.NewReader(b))
	for n := 1; ; n++ {
		text, err := r.ReadBytes('\n')
		last := err == io.EOF // no newline: the end of the file
		if len(bytes.TrimSpace(text)) == 0 {
			if last {
				return ops, nil
			}
			continue
		}
		var l line
		if err := json.Unmarshal(text, &l); err != nil {
			if last {
				// A torn last line: its event is lost, as if it
				// never happened.
				return ops, nil
			}
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		switch l.T {
		case "op":
			if err := valid(l.Op); err != nil {
				return nil, fmt.Errorf("line %d: %v", n, err)
			}
			ops = append(ops, l.Op)
		case "invoke":
			if _, dup := pending[l.ID]; dup {
				return nil, fmt.Errorf("line %d: invocation %d recorded twice", n, l.ID)
			}
			l.Op.Return, l.Op.Err = 0, ""
			pending[l.ID] = len(ops)
			ops = append(ops, l.Op)
		case "return":
			i, ok := pending[l.ID]
			if !ok {
				return nil, fmt.Errorf("line %d: return of invocation %d, which was not recorded or already returned", n, l.ID)
			}
			delete(pending, l.ID)
			op := &ops[i]
			op.Return, op.Err = l.Return, l.Err
			if op.Kind == Read {
				op.Value = l.Value
			}
			if err := valid(*op); err != nil {
				return nil, fmt.Errorf("line %d: %v", n, err)
			}
		default:
			return nil, fmt.Errorf("line %d: unknown event type %q", n, l.T)
		}
		if last {
			return ops, nil
		}
	}
}

func valid(op Op) error {
	switch {
	case op.Kind != Read && op.Kind != Write:
		return fmt.Errorf("operation kind %q is neither read nor write", op.Kind)
	case op.Return != 0 && op.Return < op.Invoke:
		return errors.New("operation returned before it was invoked")
	}
	return nil
}
