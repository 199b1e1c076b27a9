package gen

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cachegen/cachegen/internal/genbench"
)

// TestInstantiationsIndependentOfTypes guards the cost of compiling
// generated code (docs/runtime.md, "One shape for every result type"): it
// generates and compiles (go build -gcflags=-S) packages of 2 and of 6
// repositories whose results are non-pointer types of their own — a struct
// value, a slice and a map of it, and a batch read of it — and counts the
// runtime's functions in the machine code. The protocol's functions must be
// the same set for both: compiled once, whatever the number of result types.
// What each added repository costs is only the typed layer (runtime/typed.go:
// a few small wrappers per result type), bounded here. Before the protocol
// ran on one shape, each such repository compiled ~470 runtime functions.
func TestInstantiationsIndependentOfTypes(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles two synthetic packages")
	}
	const few, more = 2, 6
	protoFew, typedFew := runtimeFunctions(t, few)
	protoMore, typedMore := runtimeFunctions(t, more)
	if added, gone := setDiff(protoMore, protoFew), setDiff(protoFew, protoMore); len(added)+len(gone) > 0 {
		t.Errorf("the runtime's protocol functions depend on the number of result types: %d more with %d repositories than with %d, %d fewer:\n+ %s\n- %s",
			len(added), more, few, len(gone), strings.Join(added, "\n+ "), strings.Join(gone, "\n- "))
	}
	// 3 result types and one batch read per repository: ~27 functions per
	// type today (the typed wrappers, their shape instantiations and
	// closures, two methods of the L1's entry).
	const maxPerRepo = 120
	per := (typedMore - typedFew) / (more - few)
	t.Logf("runtime functions: %d shared by every result type, %d per repository (%d with %d repositories, %d with %d)",
		len(protoMore), per, typedMore, more, typedFew, few)
	if per > maxPerRepo {
		t.Errorf("each repository compiles %d runtime functions, more than %d: a generic function of the protocol takes the result type again (see runtime/typed.go)", per, maxPerRepo)
	}
}

// runtimeFunctions generates and compiles a package of n repositories
// (genbench.WriteValues) and returns the runtime's functions in its machine
// code: those whose names do not name the package's types (compiled once for
// every result type), and how many name them (the typed layer).
func runtimeFunctions(t *testing.T, n int) (proto map[string]bool, typed int) {
	t.Helper()
	dir := scratch(t, nil)
	if err := genbench.WriteValues(dir, n); err != nil {
		t.Fatal(err)
	}
	outs, err := Generate(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(outs); err != nil {
		t.Fatal(err)
	}
	// A fresh directory is a fresh package path: nothing comes from the
	// build cache, so the compiler prints every function.
	cmd := exec.Command("go", "build", "-gcflags=-S", "-o", os.DevNull, ".")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v\n%s", err, tail(stderr.String(), 2000))
	}
	pkg := "github.com/cachegen/cachegen/testdata/" + filepath.Base(dir) + "."
	const rt = "github.com/cachegen/cachegen/runtime."
	proto = map[string]bool{}
	sc := bufio.NewScanner(&stderr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, " STEXT")
		if i < 0 {
			continue
		}
		name := line[:i]
		if !strings.HasPrefix(strings.TrimPrefix(name, "type:.eq."), rt) {
			continue
		}
		if strings.Contains(name, pkg) {
			typed++
		} else {
			proto[name] = true
		}
	}
	if len(proto) == 0 || typed == 0 {
		t.Fatalf("no runtime functions in the output of go build -gcflags=-S:\n%s", tail(stderr.String(), 2000))
	}
	return proto, typed
}

func setDiff(a, b map[string]bool) []string {
	var d []string
	for k := range a {
		if !b[k] {
			d = append(d, k)
		}
	}
	sort.Strings(d)
	return d
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
