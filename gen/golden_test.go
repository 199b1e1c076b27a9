package gen

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const goldenDir = "../testdata/golden"

// TestGolden runs the generator on every case in testdata/golden. A case is
// a directory of Go packages: its generated *_cache.go files are the golden
// output, or, for a case that must fail, stderr.txt holds the errors. The
// generated code of every passing case is then built and vetted, and the
// tests of the cases that have some are run.
func TestGolden(t *testing.T) {
	entries, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	var built, tested []string
	var cases, errorCases int
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		cases++
		dir, err := filepath.Abs(filepath.Join(goldenDir, name))
		if err != nil {
			t.Fatal(err)
		}
		stderrPath := filepath.Join(dir, "stderr.txt")
		want, wantErr := os.ReadFile(stderrPath)
		errorCase := wantErr == nil
		if errorCase {
			errorCases++
		}
		ok := t.Run(name, func(t *testing.T) {
			var warns Errors
			outs, err := Generate(Config{Dir: dir, Patterns: []string{"./..."}, Warn: func(e Error) { warns = append(warns, e) }})
			// warnings.txt holds the warnings of a case, when it has any.
			warnPath := filepath.Join(dir, "warnings.txt")
			gotWarn := []byte(formatErrors(warns, dir))
			wantWarn, _ := os.ReadFile(warnPath)
			switch {
			case *update && len(gotWarn) > 0:
				if err := os.WriteFile(warnPath, gotWarn, 0o666); err != nil {
					t.Fatal(err)
				}
			case *update:
				os.Remove(warnPath)
			case !bytes.Equal(gotWarn, wantWarn):
				t.Errorf("warnings differ from warnings.txt (-want +got):\n%s", Diff("warnings.txt", wantWarn, gotWarn))
			}
			if err != nil {
				var errs Errors
				if !errors.As(err, &errs) {
					t.Fatalf("load: %v", err)
				}
				got := []byte(formatErrors(errs, dir))
				switch {
				case *update:
					if err := os.WriteFile(stderrPath, got, 0o666); err != nil {
						t.Fatal(err)
					}
				case !errorCase:
					t.Fatalf("unexpected errors:\n%s", got)
				case !bytes.Equal(got, want):
					t.Errorf("errors differ from stderr.txt (-want +got):\n%s", Diff("stderr.txt", want, got))
				}
				return
			}
			if errorCase {
				if !*update {
					t.Fatalf("generation succeeded, but stderr.txt expects errors:\n%s", want)
				}
				os.Remove(stderrPath)
			}
			if len(outs) == 0 {
				t.Fatal("no output")
			}
			for _, o := range outs {
				if !o.Changed() {
					continue
				}
				rel, _ := filepath.Rel(dir, o.Path)
				if *update {
					if err := Write([]Output{o}); err != nil {
						t.Fatal(err)
					}
					continue
				}
				t.Errorf("%s differs from the golden file (-want +got); run go test ./gen -update:\n%s", rel, Diff(rel, o.Old, o.New))
			}
		})
		if ok && !errorCase {
			built = append(built, "./testdata/golden/"+name+"/...")
			if hasTests(t, dir) {
				tested = append(tested, "./testdata/golden/"+name+"/...")
			}
		}
	}
	if cases < 12 || errorCases < 3 {
		t.Errorf("%d golden cases of which %d error cases; want at least 12 and 3", cases, errorCases)
	}
	if len(built) == 0 || t.Failed() {
		return
	}
	// Every golden output must compile and pass vet.
	for _, tool := range []string{"build", "vet"} {
		cmd := exec.Command("go", append([]string{tool}, built...)...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go %s of the golden outputs: %v\n%s", tool, err, out)
		}
	}
	// Cases with tests run them against their generated code (the deep
	// copies of local/, for one).
	if len(tested) > 0 && !t.Failed() {
		cmd := exec.Command("go", append([]string{"test", "-count=1"}, tested...)...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go test of the golden cases with tests: %v\n%s", err, out)
		}
	}
}

// hasTests reports whether a golden case has _test.go files.
func hasTests(t *testing.T, dir string) bool {
	found := false
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, "_test.go") {
			found = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// formatErrors prints errors as the command does, relative to dir.
func formatErrors(errs Errors, dir string) string {
	var b strings.Builder
	for _, e := range errs {
		if rel, err := filepath.Rel(dir, e.Pos.Filename); err == nil {
			e.Pos.Filename = filepath.ToSlash(rel)
		}
		b.WriteString(e.Error() + "\n")
	}
	return b.String()
}

// TestDeterministic generates cases twice and compares the bytes (local/
// has many deep-copy functions, planned through maps keyed by type).
func TestDeterministic(t *testing.T) {
	for _, name := range []string{"basic", "local"} {
		dir, _ := filepath.Abs(filepath.Join(goldenDir, name))
		a, err := Generate(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Generate(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != len(b) {
			t.Fatalf("%s: %d outputs, then %d", name, len(a), len(b))
		}
		for i := range a {
			if a[i].Path != b[i].Path || !bytes.Equal(a[i].New, b[i].New) {
				t.Fatalf("%s: output differs between runs", a[i].Path)
			}
		}
	}
}
