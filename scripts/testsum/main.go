// Command testsum reads `go test -json` output on stdin, prints the tests'
// output as `go test -v` would (without the === RUN/PAUSE/CONT lines; one
// package at a time: the oldest running package streams live, the output of
// packages running beside it is held until its turn), and closes with one
// line of counts:
//
//	N passed, N failed, N skipped
//
// Subtests count like tests. A package that fails without a failing test
// (build failure, panic outside a test, TestMain exit, timeout) counts as one
// failure. Lines that are not test2json events are printed unchanged. The exit
// status is 1 when anything failed.
//
//	go test -json ./... 2>&1 | go run ./scripts/testsum
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
}

func main() {
	passed, failed, skipped := 0, 0, 0
	failedTests := map[string]int{} // package → failed tests in it
	var failures []string
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	q := &pkgQueue{w: out, byName: map[string]*pkgOut{}}

	r := bufio.NewReaderSize(os.Stdin, 1<<20)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			var ev event
			if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &ev) != nil || ev.Action == "" {
				q.flushAll() // keep the go command's own messages in order
				fmt.Fprint(out, line)
			} else {
				pkg := ev.Package
				if pkg == "" {
					pkg = ev.ImportPath
				}
				switch ev.Action {
				case "output":
					if !isNoise(ev.Output) {
						q.write(pkg, ev.Output)
					}
				case "build-output": // compiler errors: show them at once
					q.flushAll()
					fmt.Fprint(out, ev.Output)
				case "pass":
					if ev.Test != "" {
						passed++
					}
				case "skip":
					if ev.Test != "" {
						skipped++
					}
				case "fail":
					if ev.Test != "" {
						failed++
						failedTests[ev.Package]++
						failures = append(failures, ev.Package+" "+ev.Test)
					} else if failedTests[ev.Package] == 0 {
						failed++
						failures = append(failures, ev.Package+" (package failed outside any test)")
					}
				case "build-fail":
					// The package's own "fail" event follows and is counted there.
				}
				if ev.Test == "" && (ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip") {
					q.done(pkg)
				}
				q.flush()
			}
			// Keep progress visible while long packages run.
			if strings.HasSuffix(line, "\n") {
				out.Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(out, "testsum: reading input: %v\n", err)
			failed++
			break
		}
	}

	q.flushAll()
	if len(failures) > 0 {
		sort.Strings(failures)
		fmt.Fprintln(out, "\nFailed:")
		for _, f := range failures {
			fmt.Fprintln(out, "  "+f)
		}
	}
	fmt.Fprintf(out, "\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	out.Flush()
	if failed > 0 {
		os.Exit(1)
	}
}

// isNoise drops the per-test scheduling lines of -v output.
func isNoise(s string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// pkgQueue prints packages' output in the order they started: the oldest
// unfinished package streams, later ones are buffered until it is done.
type pkgQueue struct {
	w      *bufio.Writer
	order  []*pkgOut
	byName map[string]*pkgOut
}

type pkgOut struct {
	buf    strings.Builder
	done   bool
	queued bool // in order
}

func (q *pkgQueue) get(name string) *pkgOut {
	p := q.byName[name]
	if p == nil {
		p = &pkgOut{}
		q.byName[name] = p
	}
	if !p.queued { // new, or output after its end: printed in its turn
		p.queued = true
		q.order = append(q.order, p)
	}
	return p
}

func (q *pkgQueue) write(name, s string) { q.get(name).buf.WriteString(s) }

func (q *pkgQueue) done(name string) { q.get(name).done = true }

// flush writes the head package's output, and moves on while heads are done.
func (q *pkgQueue) flush() {
	for len(q.order) > 0 {
		head := q.order[0]
		q.w.WriteString(head.buf.String())
		head.buf.Reset()
		if !head.done {
			break
		}
		head.queued = false
		q.order = q.order[1:]
	}
}

// flushAll writes everything buffered (end of input, or a non-JSON line).
func (q *pkgQueue) flushAll() {
	kept := q.order[:0]
	for _, p := range q.order {
		q.w.WriteString(p.buf.String())
		p.buf.Reset()
		if p.done {
			p.queued = false
		} else {
			kept = append(kept, p)
		}
	}
	q.order = kept
}
