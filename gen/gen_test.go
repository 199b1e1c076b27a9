package gen

import (
	"bytes"
	"errors"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
	log := filepath.Join(t.TempDir(), "tools.log")
	wrapper := filepath.Join(t.TempDir(), "toolexec.sh")
	script := "#!/bin/sh\necho \"$@\" >> " + log + "\nexec \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// A fresh comment: nothing of this package can come from the build cache.
	if err := os.WriteFile(filepath.Join(dir, "stamp.go"), []byte("package scratch\n\n// "+t.Name()+" "+strconv.FormatInt(time.Now().UnixNano(), 10)+"\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	outs, err := Generate(Config{Dir: dir, BuildFlags: []string{"-toolexec=" + wrapper}})
	if err != nil || len(outs) != 1 {
		t.Fatalf("got %v, %d outputs", err, len(outs))
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("the wrapper ran no tool: %v", err)
	}
	pkg := "github.com/cachegen/cachegen/testdata/" + filepath.Base(dir)
	sawImport := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "/compile ") && strings.Contains(line, " -p "+pkg+" ") {
			t.Errorf("the package was compiled: %s", line)
		}
		sawImport = sawImport || strings.Contains(line, " -p github.com/cachegen/cachegen/annotations ")
	}
	if !sawImport && !strings.Contains(string(data), "compile -V=full") {
		t.Errorf("the wrapper saw no compile at all, so this test proves nothing:\n%s", data)
	}
}

// Packages named by import path are listed first to find the earlier
// outputs (directories are scanned): a stale output is overlaid either way.
func TestStaleOutputByImportPath(t *testing.T) {
	dir := scratch(t, map[string]string{
		"names.go":       repoSrc,
		"names_cache.go": Header + "\n\npackage scratch\n\nfunc broken() { undefined() }\n\nvar CachedNames int\n",
	})
	if _, ok := scanOutputs(dir, []string{"github.com/cachegen/cachegen/testdata/" + filepath.Base(dir)}); ok {
		t.Fatal("an import path was scanned as a directory")
	}
	outs, err := Generate(Config{Dir: dir, Patterns: []string{"github.com/cachegen/cachegen/testdata/" + filepath.Base(dir)}})
	if err != nil || len(outs) != 1 || !strings.Contains(string(outs[0].New), "type CachedNames struct") {
		t.Fatalf("got %v, %+v", err, outs)
	}
}

// scanOutputs finds outputs in the directories of ".", "./x" and "./..."
// patterns, skipping what go list skips under /..., and only ours.
func TestScanOutputs(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"a/a_cache.go":          Header + "\n\n//go:build x\n\npackage a\n",
		"a/a.go":                "package a\n",
		"a/b/b_cache.go":        Header + "\n\npackage bee\n",
		"a/testdata/t_cache.go": Header + "\n\npackage t\n",
		"a/_x/x_cache.go":       Header + "\n\npackage x\n",
		"a/foreign_cache.go":    "// Code generated by other. DO NOT EDIT.\n\npackage a\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o777)
		os.WriteFile(filepath.Join(dir, name), []byte(src), 0o666)
	}
	got := func(patterns ...string) []string {
		overlay, ok := scanOutputs(dir, patterns)
		if !ok {
			t.Fatalf("%v not scanned", patterns)
		}
		var out []string
		for f, src := range overlay {
			rel, _ := filepath.Rel(dir, f)
			out = append(out, filepath.ToSlash(rel)+"="+strings.TrimPrefix(string(src), Header+"\n\n"))
		}
		sort.Strings(out)
		return out
	}
	if g := got("./a"); strings.Join(g, " ") != "a/a_cache.go=package a\n" {
		t.Errorf("./a: %q", g)
	}
	if g := got("./a/..."); strings.Join(g, " ") != "a/a_cache.go=package a\n a/b/b_cache.go=package bee\n" {
		t.Errorf("./a/...: %q", g)
	}
	if _, ok := scanOutputs(dir, []string{"./a", "example.com/x"}); ok {
		t.Error("an import path among the patterns: want the listing")
	}
}

func TestRemovesOutputOfRemovedRepository(t *testing.T) {
	dir := scratch(t, map[string]string{"names.go": repoSrc})
	generate(t, dir)
	out := filepath.Join(dir, "names_cache.go")
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(repoSrc, "//cache:repo ttl=1m\n", "", 1)
	src = strings.Replace(src, "\t//cache:get key=\"name:{id}\"\n", "", 1)
	os.WriteFile(filepath.Join(dir, "names.go"), []byte(src), 0o666)
	outs := generate(t, dir)
	if len(outs) != 1 || outs[0].New != nil {
		t.Fatalf("want one removal, got %+v", outs)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("stale names_cache.go still there")
	}
}

func TestRefusesToOverwriteForeignFile(t *testing.T) {
	dir := scratch(t, map[string]string{
		"names.go":       repoSrc,
		"names_cache.go": "package scratch\n\n// hand-written\n",
	})
	_, err := Generate(Config{Dir: dir})
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Msg, "refusing to overwrite names_cache.go") {
		t.Fatalf("got %v", err)
	}
}

func TestTypeErrorInRepository(t *testing.T) {
	dir := scratch(t, map[string]string{"names.go": strings.Replace(repoSrc, "(string, error)", "(Missing, error)", 1)})
	_, err := Generate(Config{Dir: dir})
	var errs Errors
	if !errors.As(err, &errs) || !strings.Contains(errs.Error(), "undefined: Missing") {
		t.Fatalf("got %v", err)
	}
}

func TestDiff(t *testing.T) {
	old := []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")
	new := []byte("a\nb\nc\nd\nE\nf\ng\nh\ni\nj\nk\n")
	want := `--- a/x.go
+++ b/x.go
@@ -2,9 +2,10 @@
 b
 c
 d
-e
+E
 f
 g
 h
 i
 j
+k
`
	if got := Diff("x.go", old, new); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if got := Diff("x.go", nil, []byte("a\n")); !strings.HasPrefix(got, "--- /dev/null\n+++ b/x.go\n@@ -1,0 +1,1 @@\n+a\n") {
		t.Fatalf("creation diff:\n%s", got)
	}
}

func TestParsePos(t *testing.T) {
	p := parsePos("/a/b.go:12:5")
	if p.Filename != "/a/b.go" || p.Line != 12 || p.Column != 5 {
		t.Fatalf("%+v", p)
	}
	if p := parsePos("-"); p.Filename != "-" || p.Line != 0 {
		t.Fatalf("%+v", p)
	}
}

// The deep copies of two generated files of one package never clash, and a
// file's names do not depend on which other files the build includes.
func TestCloneNamesPerFile(t *testing.T) {
	user := "package scratch\n\ntype User struct {\n\tID   int64\n\tTags []string\n}\n"
	repo := func(name, build string) string {
		src := "package scratch\n\nimport \"context\"\n\n//cache:repo ttl=1m\ntype " + name + " interface {\n\t//cache:get key=\"u:{id}\"\n\tGet(ctx context.Context, id int64) (*User, error)\n}\n"
		if build != "" {
			src = "//go:build " + build + "\n\n" + src
		}
		return src
	}
	dir := scratch(t, map[string]string{
		"user.go": user + "\n// clonePtrUser_A is what A's copy of *User would be called.\nvar clonePtrUser_A = 1\n",
		"a.go":    repo("A", ""),
		"b.go":    repo("B", "special"),
	})
	plain, err := Generate(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := Generate(Config{Dir: dir, BuildFlags: []string{"-tags=special"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 1 || len(tagged) != 2 {
		t.Fatalf("%d and %d outputs, want 1 and 2", len(plain), len(tagged))
	}
	if !bytes.Equal(plain[0].New, tagged[0].New) {
		t.Fatalf("a_cache.go depends on the build tags:\n%s", Diff("a_cache.go", plain[0].New, tagged[0].New))
	}
	a, b := string(tagged[0].New), string(tagged[1].New)
	for _, want := range []string{"func clonePtrUser2_A(v *User) *User", "func cloneUser_A(v User) User", "Clone: clonePtrUser2_A,"} {
		if !strings.Contains(a, want) {
			t.Errorf("a_cache.go lacks %q:\n%s", want, a)
		}
	}
	if !strings.Contains(b, "func clonePtrUser_B(v *User) *User") {
		t.Errorf("b_cache.go lacks clonePtrUser_B:\n%s", b)
	}
	if err := Write(tagged); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "vet", "-tags=special", ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet: %v\n%s", err, out)
	}
}

// A cgo file's syntax comes from cgo's rewrite in the build cache; the
// output still goes next to the real file.
func TestCgoOutputNextToSource(t *testing.T) {
	if out, _ := exec.Command("go", "env", "CGO_ENABLED").Output(); strings.TrimSpace(string(out)) != "1" {
		t.Skip("cgo disabled")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no C compiler")
	}
	dir := scratch(t, map[string]string{"c.go": `package scratch

// #include <stdlib.h>
import "C"

import "context"

func Rand() int { return int(C.rand()) }

//cache:repo ttl=1m
type Names interface {
	//cache:get key="name:{id}"
	Name(ctx context.Context, id int64) (string, error)
}
`})
	outs := generate(t, dir)
	if len(outs) != 1 || outs[0].Path != filepath.Join(dir, "c_cache.go") {
		var paths []string
		for _, o := range outs {
			paths = append(paths, o.Path)
		}
		t.Fatalf("outputs %v, want %s", paths, filepath.Join(dir, "c_cache.go"))
	}
}

func TestNearMissDirective(t *testing.T) {
	for text, want := range map[string]bool{
		"// cache:get key=x":      true,
		"//cahce:get key=x":       true,
		"//Cache:repo":            true,
		"//cache:get key=x":       false, // a directive
		"// the cache: get it":    false,
		"// caches: get a value":  false, // prose: no option follows
		"// caches:get ttl=1m":    true,
		"// Cached: evicted soon": false,
		"// see cache:getter":     false,
	} {
		if got := nearMissDirective(text) != ""; got != want {
			t.Errorf("nearMissDirective(%q) = %v, want %v", text, got, want)
		}
	}
}

// A generic result type changed after its file was generated is caught like
// any other (Spec.Shape is predicted for instantiations too): the
// constructor logs that the generated file is stale.
func TestStaleInstantiatedResult(t *testing.T) {
	if testing.Short() {
		t.Skip("short: runs go test")
	}
	const src = `package scratch

import "context"

type Page[T any] struct {
	Items []T
	Next  string
}

type Item struct{ ID int64 }

//cache:repo ttl=1m
type Items interface {
	//cache:get key="items:{cursor}"
	List(ctx context.Context, cursor string) (Page[Item], error)
	//cache:evict keys="items:{cursor}"
	Drop(ctx context.Context, cursor string) error
}
`
	const test = `package scratch

import (
	"bytes"
	"log/slog"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/runtime"
)

func TestLog(t *testing.T) {
	var logs bytes.Buffer
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	c := runtime.New(rdb, runtime.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer c.Close()
	NewCachedItems(nil, c)
	os.WriteFile("log.txt", logs.Bytes(), 0o666)
}
`
	dir := scratch(t, map[string]string{"items.go": src, "log_test.go": test})
	generate(t, dir)
	run := func() string {
		t.Helper()
		cmd := exec.Command("go", "test", "-count=1", ".")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go test: %v\n%s", err, out)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "log.txt"))
		return string(b)
	}
	if log := run(); strings.Contains(log, "stale") {
		t.Fatalf("freshly generated, yet:\n%s", log)
	}
	// Item gains a field; items_cache.go is not regenerated.
	changed := strings.Replace(src, "type Item struct{ ID int64 }", "type Item struct {\n\tID   int64\n\tName string\n}", 1)
	if err := os.WriteFile(filepath.Join(dir, "items.go"), []byte(changed), 0o666); err != nil {
		t.Fatal(err)
	}
	if log := run(); !strings.Contains(log, "the generated file is stale") || !strings.Contains(log, "Page[") {
		t.Fatalf("a stale Page[Item] result went unnoticed; log:\n%s", log)
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
	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet: %v\n%s", err, out)
	}
}
