package gen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/tools/go/gcexportdata"
	"golang.org/x/tools/go/packages"
)

// The loader: what go/packages would give us for LoadMode syntax + types of
// the packages named and export data of their imports, in two go lists
// instead of three and without compiling the packages named.
//
// go/packages asks one go list for -export of every package it lists, the
// packages named included, although it type-checks those from source: after
// each edit of a repository file go generate compiled the whole package
// (implementations, SQL, everything in it) only to throw the result away —
// most of a second for a package of 200 interfaces, more for a real one. It
// also runs go list twice more (types.Sizes and release tags). Here:
//
//  1. go list of the packages named: files and imports, no build;
//  2. go list -export of their direct imports (what the type checker asks
//     for; go builds what those need), while the files are parsed;
//  3. type-check each package named from source, in import order, its
//     imports read from export data.

// listedPackage is what we read of go list -json.
type listedPackage struct {
	ImportPath        string
	Name              string
	Dir               string
	Export            string
	GoFiles           []string
	CgoFiles          []string
	CompiledGoFiles   []string
	IgnoredGoFiles    []string
	IgnoredOtherFiles []string
	Imports           []string
	Deps              []string
	ImportMap         map[string]string
	Module            *packages.Module
	Error             *struct{ Pos, Err string }
}

const (
	rootFields   = "-json=ImportPath,Name,Dir,GoFiles,CgoFiles,CompiledGoFiles,IgnoredGoFiles,IgnoredOtherFiles,Imports,Deps,ImportMap,Module,Error"
	exportFields = "-json=ImportPath,Export,Error"
)

// goList runs go list -e with the build flags and the arguments, and
// decodes its packages.
func goList(dir string, flags []string, args ...string) ([]*listedPackage, error) {
	argv := append([]string{"list", "-e", "-pgo=off"}, flags...)
	cmd := exec.Command("go", append(argv, args...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, errors.New("go list: " + msg)
	}
	var out []*listedPackage
	for dec := json.NewDecoder(&stdout); ; {
		p := new(listedPackage)
		if err := dec.Decode(p); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("go list: reading its output: %v", err)
		}
		out = append(out, p)
	}
}

// loadPackages lists, parses and type-checks the packages the patterns
// name, with the build flags (an -overlay among them). guess is what their
// imports are thought to be (scanOutputs): their export data is listed
// while the packages are, what the guess missed after.
func loadPackages(cfg Config, flags, patterns []string, guess map[string]bool) ([]*packages.Package, error) {
	var early chan exportList
	if len(guess) > 0 {
		early = make(chan exportList, 1)
		go func() { early <- listExports(cfg.Dir, guessFlags(flags), guess) }()
	}
	listed, err := goList(cfg.Dir, flags, append([]string{rootFields, "--"}, patterns...)...)
	if err != nil {
		return nil, err
	}
	if err := compileCgo(cfg.Dir, flags, listed); err != nil {
		return nil, err
	}
	roots := map[string]*packages.Package{}
	pkgs := make([]*packages.Package, 0, len(listed))
	fset := token.NewFileSet()
	for _, lp := range listed {
		p := rootPackage(lp, fset)
		roots[p.ID] = p
		pkgs = append(pkgs, p)
	}

	// The imports' export data, built while the packages named are parsed.
	need := map[string]bool{}
	for _, lp := range listed {
		addImports(need, lp, func(id string) bool { return roots[id] != nil })
	}
	var exports exportList
	done := make(chan struct{})
	go func() {
		defer close(done)
		exports.pkgs = map[string]*listedPackage{}
		if early != nil {
			if exports = <-early; exports.err != nil {
				return
			}
		}
		missing := map[string]bool{}
		for id := range need {
			// A guess listed without export data is listed again with
			// the build flags as they are (guessFlags may have changed
			// -mod).
			if lp := exports.pkgs[id]; lp == nil || lp.Export == "" {
				missing[id] = true
			}
		}
		if len(missing) > 0 {
			more := listExports(cfg.Dir, flags, missing)
			if exports.err = more.err; more.err == nil {
				maps.Copy(exports.pkgs, more.pkgs)
			}
		}
	}()
	parseAll(fset, pkgs)
	<-done
	if exports.err != nil {
		return nil, exports.err
	}

	tc := &typeChecker{dir: cfg.Dir, flags: flags, fset: fset, roots: roots, listed: map[string]*listedPackage{}, exports: exports.pkgs,
		imported: map[string]*types.Package{}, checking: map[string]bool{}, fromSource: map[string]*packages.Package{}, sizes: sizes()}
	for _, lp := range listed {
		tc.listed[lp.ImportPath] = lp
	}
	for _, lp := range listed {
		tc.check(roots[lp.ImportPath], lp)
	}
	return pkgs, nil
}

// cgoImports are what cgo's rewrite of a file imports besides its own.
var cgoImports = []string{"runtime/cgo", "syscall"}

// addImports adds to set the imports of lp that need export data (its own,
// which go list reports resolved, and cgo's), except those known.
func addImports(set map[string]bool, lp *listedPackage, known func(id string) bool) {
	imports := lp.Imports
	if len(lp.CgoFiles) > 0 {
		imports = append(slices.Clip(imports), cgoImports...)
	}
	for _, id := range imports {
		if id != "unsafe" && id != "C" && !known(id) {
			set[id] = true
		}
	}
}

// exportList is the export data go list built for some packages, by path.
type exportList struct {
	pkgs map[string]*listedPackage
	err  error
}

// listExports asks go list for the export data of the packages (building
// what they need).
func listExports(dir string, flags []string, paths map[string]bool) exportList {
	args := []string{exportFields, "-export=true", "--"}
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		args = append(args, p)
	}
	deps, err := goList(dir, flags, args...)
	if err != nil {
		return exportList{err: err}
	}
	out := exportList{pkgs: make(map[string]*listedPackage, len(deps))}
	for _, d := range deps {
		out.pkgs[d.ImportPath] = d
	}
	return out
}

// guessFlags are the build flags for listing the guessed imports: the
// guess reads every file in the directories, build-ignored ones too, and
// under -mod=mod a go list of an import nothing provides looks it up and
// adds it to go.mod, so there the guess is listed -mod=readonly. An import
// it cannot read that way is listed again with the flags as they are.
func guessFlags(flags []string) []string {
	goflags := os.Getenv("GOFLAGS")
	if goflags == "" {
		goflags = goEnvFile("GOFLAGS")
	}
	if mode, _ := flagValue(append(strings.Fields(goflags), flags...), "mod"); mode != "mod" {
		return flags
	}
	return append(append([]string(nil), flags...), "-mod=readonly")
}

// compileCgo fills in the CompiledGoFiles of the packages with cgo files
// (cgo's outputs: what the type checker reads), with one more go list.
// Others need none: their compiled files are their Go files, and
// -compiled costs a go list twice the time (it plans a build).
func compileCgo(dir string, flags []string, listed []*listedPackage) error {
	var cgo []string
	byPath := map[string]*listedPackage{}
	for _, lp := range listed {
		if len(lp.CgoFiles) > 0 {
			cgo = append(cgo, lp.ImportPath)
			byPath[lp.ImportPath] = lp
		}
	}
	if len(cgo) == 0 {
		return nil
	}
	compiled, err := goList(dir, flags, append([]string{"-json=ImportPath,CompiledGoFiles,Error", "-compiled=true", "--"}, cgo...)...)
	if err != nil {
		return err
	}
	for _, c := range compiled {
		if lp := byPath[c.ImportPath]; lp != nil {
			lp.CompiledGoFiles = c.CompiledGoFiles
		}
	}
	return nil
}

// rootPackage turns a listed package into the packages.Package the stages
// read, its Types, TypesInfo and Syntax still to be filled.
func rootPackage(lp *listedPackage, fset *token.FileSet) *packages.Package {
	p := &packages.Package{
		ID:              lp.ImportPath,
		PkgPath:         lp.ImportPath,
		Name:            lp.Name,
		Dir:             lp.Dir,
		Fset:            fset,
		GoFiles:         absJoin(lp.Dir, lp.GoFiles, lp.CgoFiles),
		CompiledGoFiles: absJoin(lp.Dir, lp.CompiledGoFiles),
		IgnoredFiles:    absJoin(lp.Dir, lp.IgnoredGoFiles, lp.IgnoredOtherFiles),
		Module:          lp.Module,
	}
	// go list puts assembly and C files in CompiledGoFiles too; cgo's
	// outputs in the build cache have no extension.
	compiled := p.CompiledGoFiles[:0]
	for _, f := range p.CompiledGoFiles {
		if ext := filepath.Ext(f); ext == ".go" || ext == "" {
			compiled = append(compiled, f)
		}
	}
	p.CompiledGoFiles = compiled
	if len(compiled) == 0 {
		// go list leaves CompiledGoFiles out when an import is missing:
		// type-check what is there, so the errors are positioned.
		p.CompiledGoFiles = p.GoFiles
	}
	if lp.Error != nil {
		p.Errors = append(p.Errors, packages.Error{Pos: lp.Error.Pos, Msg: strings.TrimSpace(lp.Error.Err), Kind: packages.ListError})
	}
	return p
}

func absJoin(dir string, lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, f := range l {
			if !filepath.IsAbs(f) {
				f = filepath.Join(dir, f)
			}
			out = append(out, f)
		}
	}
	return out
}

// parseAll parses the compiled files of every package in parallel: our own
// earlier outputs as a bare package clause (what the overlay makes of
// them), everything else whole.
func parseAll(fset *token.FileSet, pkgs []*packages.Package) {
	type job struct {
		p *packages.Package
		i int
	}
	var jobs []job
	for _, p := range pkgs {
		p.Syntax = make([]*ast.File, len(p.CompiledGoFiles))
		for i := range p.CompiledGoFiles {
			jobs = append(jobs, job{p, i})
		}
	}
	errs := make([]error, len(jobs))
	parallel(len(jobs), func(j int) {
		p, i := jobs[j].p, jobs[j].i
		p.Syntax[i], errs[j] = parseSource(fset, p.CompiledGoFiles[i])
	})
	for j, jb := range jobs { // in file order: errors keep it
		if errs[j] != nil {
			jb.p.Errors = append(jb.p.Errors, parseErrors(errs[j])...)
		}
	}
	for _, p := range pkgs {
		p.Syntax = slices.DeleteFunc(p.Syntax, func(f *ast.File) bool { return f == nil })
	}
}

// parallel runs f(0) … f(n-1) on one goroutine per CPU and returns when
// all have.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(goruntime.GOMAXPROCS(0), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func parseSource(fset *token.FileSet, filename string) (*ast.File, error) {
	src, err := os.ReadFile(filename)
	if err != nil {
		return nil, err
	}
	if isHeader(src) {
		return parser.ParseFile(fset, filename, src, parser.PackageClauseOnly)
	}
	return parser.ParseFile(fset, filename, src, parser.AllErrors|parser.ParseComments|parser.SkipObjectResolution)
}

func parseErrors(err error) []packages.Error {
	var list scanner.ErrorList
	var perr *os.PathError
	switch {
	case errors.As(err, &list):
		out := make([]packages.Error, len(list))
		for i, e := range list {
			out[i] = packages.Error{Pos: e.Pos.String(), Msg: e.Msg, Kind: packages.ParseError}
		}
		return out
	case errors.As(err, &perr):
		return []packages.Error{{Pos: perr.Path + ":1", Msg: perr.Err.Error(), Kind: packages.ParseError}}
	}
	return []packages.Error{{Pos: "-", Msg: err.Error(), Kind: packages.ParseError}}
}

// sizes are the gc compiler's for the target architecture, the go
// command's GOARCH: the environment's when go generate (or the user) sets
// it, else the go env file's (go env -w), else this binary's, which go
// generate built for the machine it runs on.
func sizes() types.Sizes {
	arch := os.Getenv("GOARCH")
	if arch == "" {
		arch = goEnvFile("GOARCH")
	}
	if arch == "" {
		arch = goruntime.GOARCH
	}
	if s := types.SizesFor("gc", arch); s != nil {
		return s
	}
	return types.SizesFor("gc", goruntime.GOARCH)
}

// goEnvFile returns the value the go env file (GOENV, by default in the
// user's config directory) sets for key, "" when none.
func goEnvFile(key string) string {
	file := os.Getenv("GOENV")
	if file == "off" {
		return ""
	}
	if file == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return ""
		}
		file = filepath.Join(dir, "go", "env")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	value := ""
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k == key {
			value = v // the last setting wins, as in the go command
		}
	}
	return value
}

// typeChecker checks the packages named from source, and reads everything
// they import from export data into one map by package path: the view is
// the same for all of them, so types shared between them are identical.
type typeChecker struct {
	fset     *token.FileSet
	roots    map[string]*packages.Package
	listed   map[string]*listedPackage // the packages named, as listed
	exports  map[string]*listedPackage
	imported map[string]*types.Package
	sizes    types.Sizes
	checking map[string]bool
	dir      string // for go list of imports not listed before
	flags    []string
	// fromSource are the imports checked from source because they have no
	// export data (they do not compile), by path.
	fromSource map[string]*packages.Package
}

// check type-checks p (listed as lp) after the packages named that it
// imports; a package already checked is left as it is.
func (tc *typeChecker) check(p *packages.Package, lp *listedPackage) {
	if p.Types != nil {
		return
	}
	if tc.checking[p.ID] {
		return // an import cycle, which go list reports
	}
	tc.checking[p.ID] = true
	// The packages named that p reaches through packages not named first:
	// the export data of those mentions them, and must be read into the
	// types checked from source, not into copies (go list's Deps are
	// transitive).
	for _, d := range lp.Deps {
		if root := tc.roots[d]; root != nil && d != p.ID {
			tc.check(root, tc.listed[d])
		}
	}
	p.Types = types.NewPackage(p.PkgPath, p.Name)
	p.TypesInfo = &types.Info{
		Types:        map[ast.Expr]types.TypeAndValue{},
		Defs:         map[*ast.Ident]types.Object{},
		Uses:         map[*ast.Ident]types.Object{},
		Implicits:    map[ast.Node]types.Object{},
		Instances:    map[*ast.Ident]types.Instance{},
		Scopes:       map[ast.Node]*types.Scope{},
		Selections:   map[*ast.SelectorExpr]*types.Selection{},
		FileVersions: map[*ast.File]string{},
	}
	importMap := lp.ImportMap
	conf := &types.Config{
		Importer: importerFunc(func(path string) (*types.Package, error) {
			id := path
			if to, ok := importMap[path]; ok {
				id = to
			}
			return tc.importPackage(id)
		}),
		Sizes: tc.sizes,
		Error: func(err error) {
			var te types.Error
			if errors.As(err, &te) {
				p.TypeErrors = append(p.TypeErrors, te)
				p.Errors = append(p.Errors, packages.Error{Pos: te.Fset.Position(te.Pos).String(), Msg: te.Msg, Kind: packages.TypeError})
				return
			}
			p.Errors = append(p.Errors, packages.Error{Pos: "-", Msg: err.Error(), Kind: packages.UnknownError})
		},
	}
	if p.Module != nil && p.Module.GoVersion != "" {
		conf.GoVersion = "go" + p.Module.GoVersion
	}
	_ = types.NewChecker(conf, tc.fset, p.Types, p.TypesInfo).Files(p.Syntax)
	p.TypesSizes = tc.sizes
	if tc.imported[p.PkgPath] == nil {
		// Export data read from now on that mentions p uses these types.
		tc.imported[p.PkgPath] = p.Types
	}
}

func (tc *typeChecker) importPackage(id string) (*types.Package, error) {
	if id == "unsafe" {
		return types.Unsafe, nil
	}
	if id == "C" {
		// A cgo file read as it is (its package checked from source
		// after cgo failed): nothing to list.
		return nil, errors.New("cgo's output is not available")
	}
	if root := tc.roots[id]; root != nil {
		// Another package named: checked from source first.
		tc.check(root, tc.listed[id])
		if root.Types == nil || !root.Types.Complete() {
			return nil, fmt.Errorf("import cycle through %s", id)
		}
		return root.Types, nil
	}
	if p := tc.imported[id]; p != nil && p.Complete() {
		return p, nil
	}
	lp := tc.exports[id]
	if lp == nil {
		// Not among the imports go list reported (cgo's rewrite adds
		// runtime/cgo and syscall): ask for it now.
		more := listExports(tc.dir, tc.flags, map[string]bool{id: true})
		if more.err != nil {
			return nil, more.err
		}
		maps.Copy(tc.exports, more.pkgs)
		if lp = tc.exports[id]; lp == nil {
			return nil, fmt.Errorf("no metadata for %s", id)
		}
	}
	if lp.Export == "" {
		err := errors.New("no export data file")
		if lp.Error != nil {
			err = errors.New(strings.TrimSpace(lp.Error.Err))
		}
		// It does not compile (an error of its own, or of a package it
		// imports): type-check it from source, as go/packages did, so
		// the types the interface uses may still be sound.
		if p := tc.checkFromSource(id); p != nil {
			return p, nil
		}
		return nil, err
	}
	f, err := os.Open(lp.Export)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := gcexportdata.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %v", lp.Export, err)
	}
	pkg, err := gcexportdata.Read(r, tc.fset, tc.imported, id)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %v", lp.Export, err)
	}
	return pkg, nil
}

// checkFromSource lists, parses and type-checks an import that has no
// export data, its own errors dropped (what is used of it is judged where it
// is used). It returns nil when there is nothing to check: no files, or a
// cycle.
func (tc *typeChecker) checkFromSource(id string) *types.Package {
	if p, ok := tc.fromSource[id]; ok {
		if p == nil || p.Types == nil || !p.Types.Complete() {
			return nil // being checked: an import cycle
		}
		return p.Types
	}
	tc.fromSource[id] = nil
	listed, err := goList(tc.dir, tc.flags, rootFields, "--", id)
	if err != nil || len(listed) != 1 || listed[0].ImportPath != id || len(listed[0].GoFiles)+len(listed[0].CgoFiles) == 0 {
		return nil
	}
	lp := listed[0]
	if compileCgo(tc.dir, tc.flags, listed) != nil {
		lp.CompiledGoFiles = nil // cgo's rewrite failed: its Go files as they are
	}
	p := rootPackage(lp, tc.fset)
	parseAll(tc.fset, []*packages.Package{p})
	// Its imports not listed yet, in one go list.
	missing := map[string]bool{}
	addImports(missing, lp, func(id string) bool { return tc.roots[id] != nil || tc.exports[id] != nil })
	if len(missing) > 0 {
		if more := listExports(tc.dir, tc.flags, missing); more.err == nil {
			maps.Copy(tc.exports, more.pkgs)
		}
	}
	tc.fromSource[id] = p
	tc.check(p, lp)
	return p.Types
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
