package gen

import (
	"go/token"
	"go/types"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The name stage chooses every identifier of the generated file before
// anything is rendered, in nested scopes that mirror Go's:
//
//	file:    the package scope and the universe (looked up in place), the
//	         deep-copy functions, the import names, and the type parameters
//	         of every repository (so no import is shadowed by one);
//	locals:  the fixed locals of the generated code (r, ctx, buf, key, …),
//	         renamed with a '_' when the file scope has them;
//	method:  one per method: its parameters (renamed to avoid everything
//	         above, keyArg), then the numbered locals its body asks for
//	         (txt0/err0, tags0, b2, res0), which avoid the parameters.
//
// The struct fields (next, cache, repo, ks<Get>) live in the struct's own
// namespace, shared with its methods: they avoid the method names.
//
// A scope holds only its own names and looks the others up through its
// parent, so a method scope costs what it declares, never a copy of the
// package scope.
type names struct {
	parent *names
	own    map[string]bool
	pkg    *types.Package // root only: its scope and the universe
}

func newNames(parent *names) *names { return &names{parent: parent, own: map[string]bool{}} }

// has reports whether n is declared in s or an enclosing scope.
func (s *names) has(n string) bool {
	for ; s != nil; s = s.parent {
		if s.own[n] {
			return true
		}
		if s.pkg != nil && (s.pkg.Scope().Lookup(n) != nil || types.Universe.Lookup(n) != nil) {
			return true
		}
	}
	return false
}

func (s *names) add(n string) { s.own[n] = true }

// suffixed declares base, or base with '_' appended until it is free.
func (s *names) suffixed(base string) string {
	n := base
	for s.has(n) {
		n += "_"
	}
	s.add(n)
	return n
}

// numbered declares base followed by the first free number from start on.
func (s *names) numbered(base string, start int) string {
	for i := start; ; i++ {
		if n := base + strconv.Itoa(i); !s.has(n) {
			s.add(n)
			return n
		}
	}
}

// pair declares a+N and b+N for the first N from start on where both are
// free, so a MarshalText text and its error read as one pair.
func (s *names) pair(a, b string, start int) (string, string) {
	for i := start; ; i++ {
		x, y := a+strconv.Itoa(i), b+strconv.Itoa(i)
		if !s.has(x) && !s.has(y) {
			s.add(x)
			s.add(y)
			return x, y
		}
	}
}

// fixedLocals are the names the generated methods and constructors declare
// or refer to; cloneLocals those of the deep-copy functions.
var (
	fixedLocals = []string{"r", "next", "c", "repo", "ctx", "buf", "key", "v", "rd", "err", "res", "inv", "tags", "b"}
	cloneLocals = []string{"v", "out", "i", "k", "e", "c", "zero"}
)

// Import is one import of the generated file.
type Import struct {
	Path  string
	Name  string // the name the file refers to it by
	Alias bool   // Name is not the package's own name: write it
}

// name runs the name stage on one file.
func name(f *File) {
	file := &names{own: map[string]bool{}, pkg: f.Pkg}
	for _, fn := range f.Clones {
		file.add(fn.Name)
	}
	if f.CloneCodec != "" {
		file.add(f.CloneCodec)
	}
	f.Imports = nameImports(f, file)
	// Type parameters are renamed (with a '_') where they would shadow a
	// name the generated code refers to: an import, a package-level or
	// predeclared name. The locals avoid the type parameters of every
	// repository of the file.
	tparams := newNames(file)
	for _, r := range f.Repos {
		r.TypeParamNames = map[*types.TypeParam]string{}
		repo := newNames(file)
		for _, tp := range r.TypeParams {
			n := repo.suffixed(tp.Obj().Name())
			r.TypeParamNames[tp] = n
			tparams.add(n)
		}
	}

	locals := newNames(tparams)
	f.Locals = map[string]string{}
	for _, n := range fixedLocals {
		f.Locals[n] = locals.suffixed(n)
	}
	// The deep-copy functions have one parameter and refer to types, the
	// runtime and each other only: their locals avoid just those.
	clones := newNames(file)
	f.CloneLocals = map[string]string{}
	for _, n := range cloneLocals {
		f.CloneLocals[n] = clones.suffixed(n)
	}
	for _, r := range f.Repos {
		nameFields(r)
		nameKeyParams(r, locals, f.Locals["b"])
		for _, m := range r.Methods {
			m.names = newNames(locals)
			nameParams(m, f.Locals["ctx"])
		}
	}
}

// nameImports names every package the file refers to, deterministically: the
// package's own name unless another import or a name of the file scope has
// it.
func nameImports(f *File, file *names) []Import {
	pkgs := map[string]string{rt: "runtime", ctxPkg: "context"} // path -> preferred name
	real := map[string]string{rt: "runtime", ctxPkg: "context", "time": "time"}
	add := func(p *types.Package) {
		if p != nil && p != f.Pkg {
			pkgs[p.Path()], real[p.Path()] = p.Name(), p.Name()
			if n, ok := f.Names[p.Path()]; ok {
				pkgs[p.Path()] = n
			}
		}
	}
	needTime := false
	for _, r := range f.Repos {
		for _, tp := range r.TypeParams {
			f.types.of(tp.Constraint()).packages(add)
		}
		f.types.of(r.Named).packages(add)
		for _, m := range r.Methods {
			for _, p := range m.Params {
				f.types.of(p.Type).packages(add)
			}
			for _, t := range m.Results {
				f.types.of(t).packages(add)
			}
		}
		for _, ks := range r.Spaces {
			f.types.of(ks.Result).packages(add)
			if nf := ks.NotFound; nf != nil {
				for _, o := range []types.Object{nf.Var, nf.Func} {
					if o != nil {
						add(o.Pkg())
					}
				}
				if nf.Type != nil {
					f.types.of(nf.Type).packages(add)
				}
			}
			needTime = true
		}
	}
	for _, fn := range f.Clones {
		f.types.of(fn.Type).packages(add)
	}
	if needTime {
		pkgs["time"] = "time"
	}
	paths := make([]string, 0, len(pkgs))
	for p := range pkgs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []Import
	for _, p := range paths {
		name := pkgs[p]
		alias := name
		for i := 2; file.has(alias); i++ {
			alias = name + strconv.Itoa(i)
		}
		file.add(alias)
		out = append(out, Import{Path: p, Name: alias, Alias: alias != real[p]})
	}
	return out
}

// nameFields names the fields of the generated struct, which share a
// namespace with its methods: the repository's own (exported or not) and
// the generated ones.
func nameFields(r *Repo) {
	taken := map[string]bool{"InvalidateAll": true}
	for _, m := range r.Methods {
		taken[m.Name] = true
		for _, n := range generatedMethods(r, m) {
			taken[n] = true
		}
	}
	pick := func(base string) string {
		n := base
		for taken[n] {
			n += "_"
		}
		taken[n] = true
		return n
	}
	r.Fields.Next, r.Fields.Cache, r.Fields.Repo = pick("next"), pick("cache"), pick("repo")
	for _, ks := range r.Spaces {
		ks.Field = pick("ks" + ks.Get.Name)
	}
	for _, ks := range r.Spaces {
		for i, kf := range ks.Keys {
			base := "key" + ks.Get.Name
			if i > 0 {
				base += strconv.Itoa(i + 1)
			}
			kf.Name = pick(base)
		}
	}
	r.Appenders = map[*types.TypeParam]string{}
	for _, tp := range r.UnionParams {
		r.Appenders[tp] = pick("append" + upperFirst(tp.Obj().Name()))
	}
}

// nameKeyParams names the parameters of the key helpers: the buffer (the
// fixed local b), then one per placeholder after its last path element
// (user:{u.ID} takes id). A helper's body refers to its receiver, the
// runtime, the parameter types and the type parameters only, so its own
// scope under the fixed locals is enough.
func nameKeyParams(r *Repo, locals *names, buf string) {
	for _, ks := range r.Spaces {
		for _, kf := range ks.Keys {
			sc := newNames(locals)
			kf.Params = []string{buf}
			for _, v := range kf.Tmpl.Values() {
				kf.Params = append(kf.Params, sc.suffixedNum(paramBase(v)))
			}
		}
	}
}

// paramBase is the name a key helper gives a value's parameter: the last
// element of its path ({u.Email} email, {f.Status#} status, {$2} p2).
func paramBase(v *Value) string {
	n := strings.TrimSuffix(v.Text, "#")
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		n = n[i+1:]
	}
	if rest, ok := strings.CutPrefix(n, "$"); ok {
		n = "p" + rest
	}
	n = strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' {
			return r
		}
		return -1
	}, n)
	if r, _ := utf8.DecodeRuneInString(n); n == "" || n == "result" || n == "_" || unicode.IsDigit(r) {
		n = "v" + strings.TrimPrefix(strings.TrimPrefix(n, "result"), "_")
	}
	if strings.ToUpper(n) == n {
		n = strings.ToLower(n) // ID -> id
	} else {
		r, size := utf8.DecodeRuneInString(n)
		n = string(unicode.ToLower(r)) + n[size:]
	}
	if token.IsKeyword(n) {
		n += "Arg"
	}
	return n
}

// generatedLocal reports names the method bodies declare on their own.
func generatedLocal(name string) bool {
	for _, p := range []string{"txt", "err", "res"} {
		if rest, ok := strings.CutPrefix(name, p); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			return true
		}
	}
	return false
}

// nameParams gives every parameter of m a name that clashes with nothing
// the generated method refers to: imports, package-level and predeclared
// names, type parameters, the fixed locals and the other parameters. They
// are declared in the method's scope, so the numbered locals its body asks
// for later avoid them.
func nameParams(m *Method, ctx string) {
	for _, p := range m.Params {
		if p.Context {
			p.Name = ctx
			continue
		}
		base := p.Orig
		if base == "" || base == "_" {
			base = "p" + strconv.Itoa(p.Pos) // {$2} is p2
		}
		name := base
		for n := 1; m.names.has(name) || generatedLocal(name); n++ {
			name = base + "Arg"
			if n > 1 {
				name += strconv.Itoa(n)
			}
		}
		m.names.add(name)
		p.Name = name
	}
	if bt := m.Batch; bt != nil { // one id, in the batch's key and tag functions; Warm's options
		bt.Elem.Name = m.names.suffixedNum("id")
		bt.Opts = m.names.suffixedNum("opts")
	}
}

// suffixedNum declares base, or base with the first free number appended.
func (s *names) suffixedNum(base string) string {
	if !s.has(base) && !generatedLocal(base) {
		s.add(base)
		return base
	}
	return s.numbered(base, 1)
}
