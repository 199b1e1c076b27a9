package gen

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"go/types"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goVet fails the test unless go vet ./... passes in dir: the generated
// code compiles, and so does the code that uses it.
func goVet(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet: %v\n%s", err, out)
	}
}

// scratch makes a package directory inside the module, so it can import the
// runtime, and removes it after the test.
func scratch(t *testing.T, files map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp("../testdata", "scratch-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

const repoSrc = `package scratch

import "context"

//cache:repo ttl=1m
type Names interface {
	//cache:get key="name:{id}"
	Name(ctx context.Context, id int64) (string, error)
}
`

func generate(t *testing.T, dir string) []Output {
	t.Helper()
	outs, err := Generate(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(outs); err != nil {
		t.Fatal(err)
	}
	return outs
}

// A stale output that no longer compiles, and code that uses the generated
// constructor before it exists, must not stop generation.
func TestStaleOutputAndUsersDoNotBlock(t *testing.T) {
	dir := scratch(t, map[string]string{
		"names.go":       repoSrc,
		"names_cache.go": Header + "\n\npackage scratch\n\nfunc broken() { undefined() }\n",
		"use.go":         "package scratch\n\nvar _ = NewCachedNames\n",
	})
	generate(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "names_cache.go"))
	if err != nil || !strings.Contains(string(b), "func NewCachedNames(") {
		t.Fatalf("names_cache.go not regenerated: %v\n%s", err, b)
	}
}

// A stale output whose imports would make go list itself fail on the
// package (here an import cycle: sub imports the package, the stale output
// imports sub) is overlaid before go list reads it, whether the package is
// named by directory (scanned) or by import path (listed first).
func TestStaleOutputBreakingGoList(t *testing.T) {
	for _, byPath := range []bool{false, true} {
		dir := scratch(t, map[string]string{"names.go": repoSrc})
		self := "github.com/cachegen/cachegen/testdata/" + filepath.Base(dir)
		if err := os.Mkdir(filepath.Join(dir, "sub"), 0o777); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "sub", "sub.go"), []byte("package sub\n\nimport _ \""+self+"\"\n"), 0o666)
		os.WriteFile(filepath.Join(dir, "names_cache.go"), []byte(Header+"\n\npackage scratch\n\nimport _ \""+self+"/sub\"\n"), 0o666)
		cfg := Config{Dir: dir}
		if byPath {
			cfg.Patterns = []string{self}
		}
		outs, err := Generate(cfg)
		if err != nil || len(outs) != 1 || !strings.Contains(string(outs[0].New), "func NewCachedNames(") {
			t.Fatalf("by import path %v: %v %+v", byPath, err, outs)
		}
	}
}

// With earlier outputs overlaid, the package is loaded as if they were
// empty: a stale output that no longer compiles cannot break loading.
// (go/packages' own Overlay, used before, also made all export data invalid
// and type-checked the standard library from source on every rerun.)
func TestOverlayKeepsExportData(t *testing.T) {
	dir := scratch(t, map[string]string{
		"names.go":       repoSrc,
		"names_cache.go": Header + "\n\npackage scratch\n\nimport \"net/http\"\n\nfunc broken() { undefined(http.Get) }\n",
	})
	pkgs, generated, err := load(Config{Dir: dir}, []string{"."})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 || len(generated[pkgs[0].ID]) != 1 {
		t.Fatalf("packages %d, outputs %v", len(pkgs), generated)
	}
	if len(pkgs[0].Errors) > 0 {
		t.Errorf("errors: %v", pkgs[0].Errors)
	}
	var imports []string
	for _, p := range pkgs[0].Types.Imports() {
		imports = append(imports, p.Path())
	}
	if len(imports) != 1 || imports[0] != "context" {
		t.Errorf("imports %v, want only context (the output's are not the package's)", imports)
	}
	if pkgs[0].Types.Scope().Lookup("broken") != nil {
		t.Error("the earlier output was loaded, not overlaid")
	}
}

// Loading compiles the imports of the packages named (for their export
// data), never the packages themselves: they are type-checked from source,
// so compiling them (go/packages' -export does) would be thrown away, and
// after every edit it cost a full compile of the user's package: most of
// a second for 200 interfaces. A -toolexec wrapper records what go runs.
func TestLoadDoesNotCompileThePackage(t *testing.T) {
	dir := scratch(t, map[string]string{
		"names.go": repoSrc,
		// An import outside the standard library, built for its export data.
		"use.go": "package scratch\n\nimport \"github.com/cachegen/cachegen/annotations\"\n\nvar _ annotations.Error\n",
	})
	pkg := "github.com/cachegen/cachegen/testdata/" + filepath.Base(dir)
	// A package importing the first: with ./... both are named, and the
	// guess of imports (scanOutputs) must not send the first to be built.
	os.Mkdir(filepath.Join(dir, "sub"), 0o777)
	if err := os.WriteFile(filepath.Join(dir, "sub", "sub.go"), []byte("package sub\n\nimport root \""+pkg+"\"\n\nvar _ root.Names\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(t.TempDir(), "toolexec.sh")
	for i, pattern := range []string{".", "./..."} {
		log := filepath.Join(t.TempDir(), "tools.log")
		script := "#!/bin/sh\necho \"$@\" >> " + log + "\nexec \"$@\"\n"
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		// A fresh comment: nothing of these packages can come from the build cache.
		stamp := "// " + t.Name() + " " + strconv.FormatInt(time.Now().UnixNano(), 10) + "\n"
		os.WriteFile(filepath.Join(dir, "stamp.go"), []byte("package scratch\n\n"+stamp), 0o666)
		os.WriteFile(filepath.Join(dir, "sub", "stamp.go"), []byte("package sub\n\n"+stamp), 0o666)
		outs, err := Generate(Config{Dir: dir, Patterns: []string{pattern}, BuildFlags: []string{"-toolexec=" + wrapper}})
		if err != nil || len(outs) != 1 {
			t.Fatalf("%s: got %v, %d outputs", pattern, err, len(outs))
		}
		data, err := os.ReadFile(log)
		if err != nil {
			t.Fatalf("%s: the wrapper ran no tool: %v", pattern, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "/compile ") && (strings.Contains(line, " -p "+pkg+" ") || strings.Contains(line, " -p "+pkg+"/sub ")) {
				t.Errorf("%s: a package named was compiled: %s", pattern, line)
			}
		}
		if i == 0 && !strings.Contains(string(data), "compile -V=full") && !strings.Contains(string(data), " -p github.com/cachegen/cachegen/annotations ") {
			t.Errorf("the wrapper saw no compile at all, so this test proves nothing:\n%s", data)
		}
	}
}

// The imports guessed while scanning for outputs: every non-test file's,
// cgo's for import "C", less the packages of the module the patterns name.
func TestScanGuessesImports(t *testing.T) {
	dir := scratch(t, map[string]string{
		"a.go": "package scratch\n\nimport (\n\t\"context\"\n\t\"unsafe\"\n\n\t\"github.com/cachegen/cachegen/annotations\"\n)\n",
		"b.go": "package scratch\n\n// #include <stdlib.h>\nimport \"C\"\n",
		// Files the build leaves out: their imports are not guessed.
		"tools.go":   "//go:build tools\n\npackage scratch\n\nimport _ \"golang.org/x/tools/cmd/stringer\"\n",
		"x_plan9.go": "package scratch\n\nimport _ \"golang.org/x/sys/plan9\"\n",
		"ignored.go": "//go:build ignore\n\npackage main\n\nimport _ \"flag\"\n",
		"a_test.go":  "package scratch\n\nimport \"testing\"\n",
		"long.go":    "package scratch\n\n/*" + strings.Repeat("x", 5000) + "*/\n\nimport \"net/http\"\n",
	})
	pkg := "github.com/cachegen/cachegen/testdata/" + filepath.Base(dir)
	os.Mkdir(filepath.Join(dir, "sub"), 0o777)
	os.WriteFile(filepath.Join(dir, "sub", "sub.go"), []byte("package sub\n\nimport _ \""+pkg+"\"\nimport _ \"sort\"\n"), 0o666)
	for pattern, want := range map[string]string{
		".":     "context github.com/cachegen/cachegen/annotations net/http runtime/cgo syscall",
		"./...": "context github.com/cachegen/cachegen/annotations net/http runtime/cgo sort syscall",
		"./sub": "" + pkg + " sort",
	} {
		_, guess, ok := scanOutputs(dir, []string{pattern})
		if !ok {
			t.Fatalf("%s: not scanned", pattern)
		}
		if got := strings.Join(slices.Sorted(maps.Keys(guess)), " "); got != want {
			t.Errorf("%s: guessed %q, want %q", pattern, got, want)
		}
	}
	// A file behind a tag counts when the build flags set it.
	os.WriteFile(filepath.Join(dir, "sub", "it.go"), []byte("//go:build integration\n\npackage sub\n\nimport _ \"expvar\"\n"), 0o666)
	for _, flags := range [][]string{nil, {"-tags=integration"}, {"-tags", "x,integration"}} {
		_, guess, _ := scanOutputs(dir, []string{"./sub"}, flags...)
		if guess["expvar"] != (len(flags) > 0) {
			t.Errorf("flags %q: expvar guessed %v", flags, guess["expvar"])
		}
	}
}

// An import that cannot be read is reported where it is, as the cause of
// the invalid types that follow; imports the interface does not use are
// not the generator's business.
func TestMissingImportIsTheCause(t *testing.T) {
	dir := scratch(t, map[string]string{"names.go": `package scratch

import (
	"context"

	"example.com/nothere/other"
	"example.com/nothere/pkg"
)

var _ other.X

//cache:repo ttl=1m
type Names interface {
	//cache:get key="name:{id}"
	Name(ctx context.Context, id int64) (*pkg.T, error)
}
`})
	_, err := Generate(Config{Dir: dir})
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want positioned errors", err)
	}
	var lines []string
	for _, e := range errs {
		lines = append(lines, strconv.Itoa(e.Pos.Line)+": "+e.Msg)
	}
	got := strings.Join(lines, "\n")
	if !strings.Contains(got, "7: could not import example.com/nothere/pkg") || strings.Contains(got, "nothere/other") {
		t.Errorf("errors:\n%s", got)
	}
}

// Packages named together are type-checked from source in import order,
// and one that imports another sees the same types (a result type of one
// used by the other's repository is identical, not a copy from export data).
func TestPackagesImportingEachOther(t *testing.T) {
	dir := scratch(t, map[string]string{"model.go": `package scratch

import "context"

type User struct{ ID int64 }

//cache:repo ttl=1m
type Users interface {
	//cache:get key="u:{id}"
	Get(ctx context.Context, id int64) (*User, error)
}
`})
	self := "github.com/cachegen/cachegen/testdata/" + filepath.Base(dir)
	if err := os.Mkdir(filepath.Join(dir, "feed"), 0o777); err != nil {
		t.Fatal(err)
	}
	feed := `package feed

import (
	"context"

	model "` + self + `"
)

//cache:repo ttl=1m
type Feed interface {
	//cache:get key="f:{id}"
	Of(ctx context.Context, id int64) ([]model.User, error)
}

var _ model.Users = model.NewCachedUsers(nil, nil)
`
	if err := os.WriteFile(filepath.Join(dir, "feed", "feed.go"), []byte(feed), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, patterns := range [][]string{{"./..."}, {"./feed", "."}} {
		pkgs, _, err := load(Config{Dir: dir}, patterns)
		if err != nil || len(pkgs) != 2 {
			t.Fatalf("%v: %v, %d packages", patterns, err, len(pkgs))
		}
		var model, feedPkg *types.Package
		for _, p := range pkgs {
			if p.PkgPath == self {
				model = p.Types
			} else {
				feedPkg = p.Types
			}
		}
		var imported *types.Package
		for _, q := range feedPkg.Imports() {
			if q.Path() == self {
				imported = q
			}
		}
		if imported != model {
			t.Errorf("%v: feed imports a different %s than the one checked from source", patterns, self)
		}
		outs, err := Generate(Config{Dir: dir, Patterns: patterns})
		if err != nil || len(outs) != 2 {
			t.Fatalf("%v: %v, %d outputs", patterns, err, len(outs))
		}
		if err := Write(outs); err != nil {
			t.Fatal(err)
		}
	}
	// The generated code compiles, the users of NewCachedUsers included.
	goVet(t, dir)
}

// The format cache gives what go/format gives, reuses its entries, and
// takes a damaged entry for a miss; a cache that cannot be written is no
// error.
func TestFormatCache(t *testing.T) {
	dir := scratch(t, map[string]string{"names.go": repoSrc})
	plain, err := Generate(Config{Dir: dir})
	if err != nil || len(plain) != 1 {
		t.Fatalf("%v, %d outputs", err, len(plain))
	}
	cache := t.TempDir()
	for run := range 2 {
		outs, err := Generate(Config{Dir: dir, FormatCache: cache})
		if err != nil || len(outs) != 1 || !bytes.Equal(outs[0].New, plain[0].New) {
			t.Fatalf("run %d: %v; output differs from the uncached one", run, err)
		}
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "??", "*"))
	if len(entries) != 1 {
		t.Fatalf("entries %v, want one", entries)
	}
	// A damaged entry (a byte of the source flipped) is a miss, rewritten.
	b, _ := os.ReadFile(entries[0])
	b[len(b)-2] ^= 0x20
	if err := os.WriteFile(entries[0], b, 0o666); err != nil {
		t.Fatal(err)
	}
	outs, err := Generate(Config{Dir: dir, FormatCache: cache})
	if err != nil || !bytes.Equal(outs[0].New, plain[0].New) {
		t.Fatalf("after damage: %v; output differs", err)
	}
	if again, _ := os.ReadFile(entries[0]); bytes.Equal(again, b) {
		t.Error("the damaged entry was not replaced")
	}
	// A cache entry is used: one planted under the key of this source is
	// what comes out (which is why entries carry their sum: only a valid
	// one is ever taken).
	planted := append([]byte(nil), plain[0].New...)
	planted = append(planted, "// planted\n"...)
	sum := sha256.Sum256(planted)
	if err := os.WriteFile(entries[0], append(sum[:], planted...), 0o666); err != nil {
		t.Fatal(err)
	}
	if outs, err := Generate(Config{Dir: dir, FormatCache: cache}); err != nil || !bytes.HasSuffix(outs[0].New, []byte("// planted\n")) {
		t.Errorf("the entry was not used: %v", err)
	}
	// An entry that is not a regular file (here a link to an endless
	// device) is a miss, not a hang.
	if _, err := os.Stat("/dev/zero"); err == nil {
		os.Remove(entries[0])
		if err := os.Symlink("/dev/zero", entries[0]); err != nil {
			t.Fatal(err)
		}
		if outs, err := Generate(Config{Dir: dir, FormatCache: cache}); err != nil || !bytes.Equal(outs[0].New, plain[0].New) {
			t.Errorf("entry linked to /dev/zero: %v", err)
		}
	}
	// A relative CACHEGEN_CACHE is no cache (go generate runs in each
	// package's directory), as go does with GOCACHE.
	t.Setenv("CACHEGEN_CACHE", "rel/dir")
	if d := DefaultFormatCache(); d != "" {
		t.Errorf("relative CACHEGEN_CACHE: cache %q", d)
	}
	t.Setenv("CACHEGEN_CACHE", cache)
	if d := DefaultFormatCache(); d != cache {
		t.Errorf("CACHEGEN_CACHE=%s: cache %q", cache, d)
	}
	// A cache path that cannot be a directory: generation goes on.
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o666)
	if outs, err := Generate(Config{Dir: dir, FormatCache: file}); err != nil || !bytes.Equal(outs[0].New, plain[0].New) {
		t.Errorf("unusable cache: %v", err)
	}
}

// A package named that reaches another package named only through one that
// is not (a -> c -> b, a and b named): c must see the b checked from source,
// or a type of b reached through c is a copy, not identical to b's own (here
// b.Impl then fails b.Iface's constraint); and c may not compile at all
// while b's outputs are overlaid (w uses b's generated constructor), which
// go/packages answered by type-checking it from source.
func TestNamedPackageThroughUnnamed(t *testing.T) {
	dir := scratch(t, nil)
	self := "github.com/cachegen/cachegen/testdata/" + filepath.Base(dir)
	files := map[string]string{
		"b/b.go": `package b

import "context"

type T struct{ ID int64 }

type Iface interface{ M() T }

type Impl struct{}

func (Impl) M() T { return T{} }

//cache:repo ttl=1m
type Users interface {
	//cache:get key="u:{id}"
	Get(ctx context.Context, id int64) (*T, error)
}
`,
		"c/c.go": "package c\n\nimport \"" + self + "/b\"\n\ntype Box[X b.Iface] struct{ V X }\n",
		"w/w.go": "package w\n\nimport \"" + self + "/b\"\n\ntype Page struct{ Items []b.T }\n\nvar New = b.NewCachedUsers\n",
		// Separate import declarations: c is imported before b.
		"a/a.go": `package a

import "context"

import "` + self + `/c"

import "` + self + `/w"

import "` + self + `/b"

//cache:repo ttl=1m
type Repo interface {
	//cache:get key="p:{id}"
	Get(ctx context.Context, id int64) (*c.Box[b.Impl], error)
	//cache:get key="w:{id}"
	Page(ctx context.Context, id int64) (*w.Page, error)
}
`,
	}
	for name, src := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o777)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	// Twice: before the outputs exist, and with them overlaid.
	for run := range 2 {
		outs, err := Generate(Config{Dir: dir, Patterns: []string{"./a", "./b"}})
		if err != nil || len(outs) != 2 {
			t.Fatalf("run %d: %v, %d outputs", run, err, len(outs))
		}
		if err := Write(outs); err != nil {
			t.Fatal(err)
		}
	}
	goVet(t, dir)
}

// An import that does not compile (a type error, a syntax error, an import
// of its own missing) is type-checked from source, as go/packages did: the
// interface generates as long as the types it uses are sound.
func TestBrokenImportFromSource(t *testing.T) {
	dir := scratch(t, nil)
	self := "github.com/cachegen/cachegen/testdata/" + filepath.Base(dir)
	files := map[string]string{
		"typeerr/t.go":  "package typeerr\n\ntype T struct{ ID int64 }\n\nvar _ int = \"x\"\n",
		"syntax/s.go":   "package syntax\n\ntype S struct{ ID int64 }\n\nfunc broken( {\n",
		"missing/m.go":  "package missing\n\nimport \"example.com/nothere/x\"\n\ntype M struct{ ID int64 }\n\nvar _ x.Y\n",
		"through/th.go": "package through\n\nimport \"" + self + "/typeerr\"\n\ntype Th struct{ T typeerr.T }\n",
		"repo.go": `package scratch

import (
	"context"

	"` + self + `/missing"
	"` + self + `/syntax"
	"` + self + `/through"
	"` + self + `/typeerr"
)

//cache:repo ttl=1m
type Repo interface {
	//cache:get key="t:{id}"
	T(ctx context.Context, id int64) (*typeerr.T, error)
	//cache:get key="s:{id}"
	S(ctx context.Context, id int64) (*syntax.S, error)
	//cache:get key="m:{id}"
	M(ctx context.Context, id int64) (*missing.M, error)
	//cache:get key="th:{id}"
	Th(ctx context.Context, id int64) (*through.Th, error)
}
`,
	}
	for name, src := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o777)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	outs, err := Generate(Config{Dir: dir})
	if err != nil || len(outs) != 1 || !strings.Contains(string(outs[0].New), "func NewCachedRepo(") {
		t.Fatalf("%v, %d outputs", err, len(outs))
	}
}

// The imports guessed from every file in the directory (build-ignored ones
// too) are listed for export data before go list says which files count:
// with -mod=mod that listing must not add an ignored file's import to
// go.mod (nor look it up on the network).
func TestGuessedImportsLeaveGoModAlone(t *testing.T) {
	dir := t.TempDir()
	gomod := "module example.com/guess\n\ngo 1.26\n\nreplace example.com/extra => ./extra\n"
	files := map[string]string{
		"go.mod":         gomod,
		"names.go":       strings.Replace(repoSrc, "package scratch", "package guess", 1),
		"tool.go":        "//go:build ignore\n\npackage main\n\nimport \"example.com/extra\"\n\nfunc main() { extra.F() }\n",
		"extra/go.mod":   "module example.com/extra\n\ngo 1.26\n",
		"extra/extra.go": "package extra\n\nfunc F() {}\n",
	}
	for name, src := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o777)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOWORK", "off")
	outs, err := Generate(Config{Dir: dir})
	if err != nil || len(outs) != 1 {
		t.Fatalf("%v, %d outputs", err, len(outs))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "go.mod")); string(b) != gomod {
		t.Errorf("go.mod changed:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.sum")); err == nil {
		t.Error("go.sum written")
	}
}

// The sizes of the target architecture are the go command's: GOARCH from
// the environment, else from the go env file (go env -w), as the export
// data is built.
func TestSizesFromGoEnvFile(t *testing.T) {
	arch, want := "386", int64(4)
	if goruntime.GOARCH == "386" {
		arch, want = "amd64", 8
	}
	env := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(env, []byte("GOARCH="+arch+"\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOENV", env)
	t.Setenv("GOARCH", "")
	if got := sizes().Sizeof(types.Typ[types.Uintptr]); got != want {
		t.Errorf("uintptr size %d with GOARCH=%s in the go env file, want %d", got, arch, want)
	}
	t.Setenv("GOARCH", goruntime.GOARCH)
	if got := sizes().Sizeof(types.Typ[types.Uintptr]); got != types.SizesFor("gc", goruntime.GOARCH).Sizeof(types.Typ[types.Uintptr]) {
		t.Errorf("GOARCH in the environment did not win over the go env file: size %d", got)
	}
}

// The trim removes cache entries unused for a week, nothing else: the
// directory is whatever CACHEGEN_CACHE names, and may hold other files
// (a repository's v1/ or db/, the marker's name taken by a file of its own).
func TestFormatCacheTrimKeepsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-30 * 24 * time.Hour)
	key := strings.Repeat("ab", sha256.Size)
	files := map[string]string{
		"v1/users.go":      "package v1\n",
		"ab/notes.txt":     "notes\n",
		"ab/" + key:        "an old entry",
		"cd/" + key:        "not where its key puts it",
		"ab/" + key + ".x": "not an entry's name",
		"trimmed":          "a file of the user's\n",
	}
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(path), 0o777)
		if err := os.WriteFile(path, []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(path, old, old)
	}
	trimFormatCache(dir)
	for name, content := range files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		switch {
		case name == "ab/"+key:
			if err == nil {
				t.Errorf("%s: the old entry was not trimmed", name)
			}
		case err != nil || string(b) != content:
			t.Errorf("%s: removed or changed by the trim: %v %q", name, err, b)
		}
	}
}

// guessFlags reads -mod as the go command does: the build flags after
// GOFLAGS, the last one winning, in any of its spellings.
func TestGuessFlagsMod(t *testing.T) {
	t.Setenv("GOENV", "off")
	for _, c := range []struct {
		goflags  string
		flags    []string
		readonly bool
	}{
		{"", nil, false},
		{"-mod=mod", nil, true},
		{"--mod=mod -tags=x", nil, true},
		{"-mod=mod", []string{"-mod=vendor"}, false},
		{"-mod=vendor", []string{"-mod", "mod", "-tags=x"}, true},
		{"", []string{"-mod", "readonly"}, false},
		{"-modfile=mod", nil, false},
	} {
		t.Setenv("GOFLAGS", c.goflags)
		got := guessFlags(c.flags)
		if readonly := len(got) > 0 && got[len(got)-1] == "-mod=readonly" && len(got) == len(c.flags)+1; readonly != c.readonly {
			t.Errorf("GOFLAGS=%q flags %q: got %q", c.goflags, c.flags, got)
		}
	}
}
