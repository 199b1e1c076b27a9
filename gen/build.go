package gen

import (
	"go/ast"
	"go/token"
	"go/types"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/tools/go/packages"

	"github.com/cachegen/cachegen/annotations"
)

// builder turns the directives of one package into the model, collecting
// every error rather than stopping at the first.
type builder struct {
	p     *packages.Package
	errs  Errors
	warns Errors
	d     *ifaceDecl // the interface being built
	// broken are the key templates of gets whose keys did not bind (a
	// mistyped placeholder): puts and evicts that name them are not
	// reported again.
	broken   []annotations.Template
	ctxType  types.Type // context.Context, when the package can see it
	prefixes map[string]*Repo
	// repoUnion are the type parameters the repository's keys use as
	// KindUnion.
	repoUnion []*types.TypeParam
	types     *typeGraph // the type model of the package (build_types.go)
}

func buildPackage(p *packages.Package) ([]*File, Errors, Errors) {
	b := &builder{p: p, prefixes: map[string]*Repo{}, types: newTypeGraph()}
	b.ctxType = findContext(p.Types)
	var files []*File
	for i, f := range p.Syntax {
		if i >= len(p.CompiledGoFiles) {
			break
		}
		name := sourceName(p, i, f)
		decls, errs := scanFile(p, f)
		b.errs = append(b.errs, errs...)
		b.warns = append(b.warns, nearMisses(p.Fset, f)...)
		file := &File{Source: name, Output: outputPath(name), Pkg: p.Types, Build: buildConstraint(p.Fset, f), Names: map[string]string{}, types: b.types}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if imp.Name != nil && imp.Name.Name != "_" && imp.Name.Name != "." {
				file.Names[path] = imp.Name.Name
			}
		}
		for _, d := range decls {
			b.typeErrorsIn(d)
			if r := b.repo(d); r != nil {
				file.Repos = append(file.Repos, r)
			}
		}
		if len(file.Repos) > 0 {
			b.planClones(file)
			files = append(files, file)
		}
	}
	b.warns = append(b.warns, skippedFiles(p)...)
	return files, b.errs, b.warns
}

// sourceName is the file the i-th syntax tree of p was parsed from. For a
// cgo file CompiledGoFiles names cgo's rewrite in the build cache; its
// //line directives lead back to the real file, next to which the output
// belongs.
func sourceName(p *packages.Package, i int, f *ast.File) string {
	name := p.CompiledGoFiles[i]
	for _, g := range p.GoFiles {
		if g == name {
			return name
		}
	}
	orig := p.Fset.Position(f.Package).Filename
	for _, g := range p.GoFiles {
		if g == orig {
			return orig
		}
	}
	return name
}

func (b *builder) errorf(p token.Position, format string, args ...any) {
	b.errs = append(b.errs, errorf(p, format, args...))
}

// typeErrorsIn reports the type errors inside a repository interface: its
// types would be wrong. Type errors elsewhere in the package (say, code that
// calls a generated constructor which does not exist yet) do not matter.
func (b *builder) typeErrorsIn(d *ifaceDecl) {
	start := b.p.Fset.Position(d.spec.Pos())
	end := b.p.Fset.Position(d.spec.End())
	for _, e := range b.p.Errors {
		if e.Kind != packages.TypeError {
			continue
		}
		p := parsePos(e.Pos)
		inside := p.Filename == start.Filename && p.Line >= start.Line && p.Line <= end.Line
		if inside || p.Filename == start.Filename && strings.HasPrefix(e.Msg, "could not import ") && usesImportAt(d, b.p.Fset, p.Line) {
			b.errs = append(b.errs, annotations.Error{Pos: p, Msg: e.Msg})
		}
	}
}

// usesImportAt reports whether the interface names a package imported at
// that line of its file: an import that could not be read is why the
// interface's types are invalid, and its error is the one to show.
func usesImportAt(d *ifaceDecl, fset *token.FileSet, line int) bool {
	for _, imp := range d.file.Imports {
		if fset.Position(imp.Path.Pos()).Line != line {
			continue
		}
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		used := false
		ast.Inspect(d.spec, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == name {
					used = true
				}
			}
			return !used
		})
		return used
	}
	return false
}

// findContext returns context.Context if pkg imports context, directly or not.
func findContext(pkg *types.Package) types.Type {
	seen := map[*types.Package]bool{}
	var walk func(p *types.Package) types.Type
	walk = func(p *types.Package) types.Type {
		if seen[p] {
			return nil
		}
		seen[p] = true
		if p.Path() == "context" {
			if obj := p.Scope().Lookup("Context"); obj != nil {
				return obj.Type()
			}
		}
		for _, q := range p.Imports() {
			if t := walk(q); t != nil {
				return t
			}
		}
		return nil
	}
	return walk(pkg)
}

var errorType = types.Universe.Lookup("error").Type()

func isError(t types.Type) bool { return types.Identical(t, errorType) }

func (b *builder) isContext(t types.Type) bool {
	if b.ctxType != nil {
		return types.Identical(t, b.ctxType)
	}
	// Export data may not list context among the imports; the object's
	// package path and name then identify the type just as well.
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "context" && n.Obj().Name() == "Context"
}

func (b *builder) typeString(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string {
		if p == b.p.Types {
			return ""
		}
		return p.Name()
	})
}

// repo builds one repository and validates everything its directives say.
func (b *builder) repo(d *ifaceDecl) *Repo {
	named, ok := d.name.Type().(*types.Named)
	if !ok {
		return nil
	}
	iface, ok := named.Underlying().(*types.Interface)
	if !ok {
		return nil
	}
	dr := d.repo
	b.d, b.broken, b.repoUnion = d, append([]annotations.Template(nil), d.brokenKeys...), nil
	r := &Repo{Name: d.name.Name(), Named: named, Prefix: strings.ToLower(d.name.Name()), Version: dr.Version, Pos: dr.Pos}
	if dr.PrefixSet {
		r.Prefix = dr.Prefix
	}
	if !iface.IsMethodSet() {
		b.errorf(dr.Pos, "%s is a constraint interface (it has a type set); a repository needs methods only", r.Name)
		return nil
	}
	if other := b.prefixes[r.Prefix]; other != nil {
		b.errorf(dr.Pos, "%s uses prefix %q, like %s: repositories on one Cache would share entries; set prefix=", r.Name, r.Prefix, other.Name)
	}
	b.prefixes[r.Prefix] = r
	for i := 0; i < named.TypeParams().Len(); i++ {
		r.TypeParams = append(r.TypeParams, named.TypeParams().At(i))
	}
	for _, n := range []string{r.Struct(), "New" + r.Struct()} {
		if obj := b.p.Types.Scope().Lookup(n); obj != nil {
			b.errorf(dr.Pos, "generated name %s clashes with %s declared at %s", n, n, b.p.Fset.Position(obj.Pos()))
		}
	}

	// Methods: the interface's own in source order, then embedded ones by name.
	byName := map[string]*types.Func{}
	for i := 0; i < iface.NumMethods(); i++ {
		byName[iface.Method(i).Name()] = iface.Method(i)
	}
	var order []string
	for _, f := range d.itype.Methods.List {
		for _, n := range f.Names {
			order = append(order, n.Name)
		}
	}
	own := map[string]bool{}
	for _, n := range order {
		own[n] = true
	}
	var rest []string
	for n := range byName {
		if !own[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	order = append(order, rest...)

	spaces := map[string]*Keyspace{}
	var pending []func()
	for _, name := range order {
		fn := byName[name]
		if fn == nil {
			continue
		}
		if !fn.Exported() && fn.Pkg() != b.p.Types {
			b.errorf(dr.Pos, "%s cannot be implemented here: method %s of package %s is unexported", r.Name, name, fn.Pkg().Path())
			continue
		}
		m := b.method(fn)
		r.Methods = append(r.Methods, m)
		if pm := d.partial[name]; pm != nil && b.checkShape(&Method{Name: m.Name, Verb: pm.Verb, Params: m.Params, Results: m.Results}, true) {
			b.bindOnly(m, pm)
		}
		dm := d.methods[name]
		if dm == nil || d.broken[name] {
			continue
		}
		m.Verb, m.Pos = dm.Verb, dm.Pos
		if !b.checkShape(m) {
			m.Verb = ""
			continue
		}
		switch dm.Verb {
		case "get":
			b.get(r, d, m, dm, spaces)
		case "put":
			pending = append(pending, func() { b.put(r, m, dm, spaces) })
		case "evict":
			pending = append(pending, func() { b.evict(r, m, dm, spaces) })
		}
	}
	// Puts and evicts refer to the keyspaces of gets declared anywhere.
	for _, f := range pending {
		f()
	}
	for _, m := range r.Methods {
		for _, n := range generatedMethods(r, m) {
			if n == "InvalidateAll" {
				b.errorf(m.Pos, "generated method InvalidateAll for get %s clashes with the InvalidateAll of the whole repository; rename %s", m.Name, m.Name)
			}
			if byName[n] != nil {
				b.errorf(m.Pos, "generated method %s clashes with method %s of %s", n, n, r.Name)
			}
		}
	}
	r.UnionParams = b.repoUnion
	keyFuncs(r)
	if _, ok := byName["InvalidateAll"]; ok {
		b.errorf(dr.Pos, "generated method InvalidateAll clashes with method InvalidateAll of %s", r.Name)
	}
	return r
}

// keyFuncs gives every key of r its helper (KeyFunc): the gets' keys
// first, so each keyspace's first helper takes its get's forms.
func keyFuncs(r *Repo) {
	assign := func(t *Tmpl) {
		if t != nil && t.Space != nil {
			t.Func = t.Space.keyFunc(t)
		}
	}
	for _, ks := range r.Spaces {
		assign(ks.Get.Key)
	}
	for _, m := range r.Methods {
		assign(m.Key)
		for _, t := range m.Evict {
			assign(t)
		}
	}
}

// bindOnly binds the placeholders of a directive that has errors elsewhere,
// so a mistyped placeholder is reported in the same run as the bad option
// next to it. Nothing is registered.
func (b *builder) bindOnly(m *Method, dm *annotations.Method) {
	result := m.resultType()
	if dm.Verb == "put" && dm.Value.Set {
		if p := m.param(dm.Value.Name); p != nil {
			result = p.Type
		}
	}
	if dm.KeyArg.Key != "" && keyReadable(dm) {
		where := "a get key"
		var res types.Type
		if dm.Verb == "put" {
			where, res = "a put key", result
		}
		b.tmpl(dm.Key, m, res, nil, where)
	}
	for _, t := range dm.Tags {
		if dm.Verb == "get" {
			b.tmpl(t, m, result, nil, "")
		} else {
			b.tmpl(t, m, nil, nil, "an invalidated tag")
		}
	}
	for _, t := range dm.Keys {
		b.tmpl(t, m, nil, nil, "an invalidated key")
	}
}

// generatedMethods lists the extra methods generated for m.
func generatedMethods(r *Repo, m *Method) []string {
	var out []string
	if m.Verb == "get" && m.Space != nil && m.Space.Get == m {
		out = append(out, "Invalidate"+m.Name)
	}
	if m.Verb == "get" && m.Batch != nil {
		out = append(out, "Warm"+m.Name, "batch"+m.Name)
	}
	return out
}

func (b *builder) method(fn *types.Func) *Method {
	sig := fn.Type().(*types.Signature)
	m := &Method{Name: fn.Name(), Variadic: sig.Variadic(), Decl: b.p.Fset.Position(fn.Pos())}
	for i := 0; i < sig.Params().Len(); i++ {
		v := sig.Params().At(i)
		m.Params = append(m.Params, &Param{Orig: v.Name(), Pos: i + 1, Type: v.Type(), Variadic: sig.Variadic() && i == sig.Params().Len()-1})
	}
	if len(m.Params) > 0 && b.isContext(m.Params[0].Type) {
		m.Params[0].Context = true
	}
	for i := 0; i < sig.Results().Len(); i++ {
		m.Results = append(m.Results, sig.Results().At(i).Type())
	}
	return m
}

// checkShape checks the context parameter and the results of a method with
// a directive.
func (b *builder) checkShape(m *Method, quiet ...bool) bool {
	if len(quiet) > 0 {
		// Only asks: a directive with errors is not told about its shape too.
		saved := len(b.errs)
		defer func() { b.errs = b.errs[:saved] }()
	}
	ok := true
	if len(m.Params) == 0 || !b.isContext(m.Params[0].Type) {
		found := "no parameters"
		if len(m.Params) > 0 {
			found = b.typeString(m.Params[0].Type)
		}
		b.errorf(m.Pos, "%s: the first parameter of a cached method must be a context.Context, found %s", m.Name, found)
		ok = false
	} else {
		m.Params[0].Context = true
	}
	res := make([]string, len(m.Results))
	for i, t := range m.Results {
		res[i] = b.typeString(t)
	}
	found := "(" + strings.Join(res, ", ") + ")"
	lastErr := len(m.Results) > 0 && isError(m.Results[len(m.Results)-1])
	switch m.Verb {
	case "get":
		bad := len(m.Results) < 2 || !lastErr
		for _, t := range m.Results[:max(len(m.Results)-1, 0)] {
			bad = bad || isError(t)
		}
		if bad {
			b.errorf(m.Pos, "%s: //cache:get needs results (T, error) or (T1, T2, ..., error), found %s", m.Name, found)
			ok = false
		}
	case "put":
		if !lastErr || len(m.Results) > 2 || len(m.Results) == 2 && isError(m.Results[0]) {
			b.errorf(m.Pos, "%s: //cache:put needs results (T, error) or (error), found %s", m.Name, found)
			ok = false
		}
	case "evict":
		if !lastErr {
			b.errorf(m.Pos, "%s: //cache:evict needs error as the last result, found %s", m.Name, found)
			ok = false
		}
	}
	return ok
}

func (b *builder) get(r *Repo, d *ifaceDecl, m *Method, dm *annotations.Method, spaces map[string]*Keyspace) {
	dr := d.repo
	bm := m // the method as the key and tags see it: one element of a batch
	em, ok := b.batch(m, dm)
	if !ok {
		b.broken = append(b.broken, dm.Key)
		return
	}
	if em != nil {
		bm = em
	}
	key, ok := b.tmpl(dm.Key, bm, nil, nil, "a get key")
	if !ok {
		return
	}
	result := bm.Results[0]
	if len(m.Results) > 2 {
		// (T1, T2, error): one entry holds every result.
		var fields []*types.Var
		for i, t := range m.Results[:len(m.Results)-1] {
			fields = append(fields, types.NewField(token.NoPos, b.p.Types, "R"+strconv.Itoa(i), t, false))
		}
		m.Tuple = types.NewStruct(fields, nil)
		result = m.Tuple
	}
	ks := &Keyspace{Field: "ks" + m.Name, Norm: dm.Key.Norm(), Result: result, Get: m}
	ttl := dm.TTL
	if !ttl.Set {
		ttl = dr.TTL
	}
	if !ttl.Set && !d.repoBroken {
		b.errorf(m.Pos, "%s: no ttl: set ttl= on the method or on the //cache:repo of %s", m.Name, r.Name)
	}
	ks.TTL = ttl.D
	neg := dm.Negative
	if !neg.Set {
		neg = dr.Negative
	}
	ks.Negative = neg.D
	ks.Jitter = dm.Jitter
	if !ks.Jitter.Set {
		ks.Jitter = dr.Jitter
	}
	if !ks.Jitter.Set {
		ks.Jitter = annotations.Jitter{Percent: 10, IsPercent: true}
	}
	if !ks.Jitter.IsPercent && ks.Jitter.Spread >= ks.TTL && ttl.Set {
		b.errorf(ks.Jitter.Pos, "%s: jitter %v must be shorter than ttl %v", m.Name, ks.Jitter.Spread, ks.TTL)
	}
	local, inherited := dm.Local, false
	if !local.Set {
		local, inherited = dr.Local, true
	}
	ks.Local = local.D
	if local.D > ks.TTL && ttl.Set {
		// The L1 never outlives the Redis entry its value came from.
		if inherited {
			b.errorf(m.Pos, "%s: local=%s of the //cache:repo of %s is longer than its ttl %s: an entry is never served from memory longer than Redis keeps it; set local= on the method (at most %s, or 0)", m.Name, short(local.D), r.Name, short(ks.TTL), short(ks.TTL))
		} else {
			b.errorf(local.Pos, "%s: local=%s is longer than its ttl %s: an entry is never served from memory longer than Redis keeps it (want at most %s, or 0)", m.Name, short(local.D), short(ks.TTL), short(ks.TTL))
		}
	}
	refresh := dm.Refresh
	if !refresh.Set {
		refresh = dr.Refresh
	}
	ks.Refresh = refresh.P
	stale := dm.Stale
	if !stale.Set {
		stale = dr.Stale
	}
	ks.Stale = stale.D
	nf := dm.NotFound
	if !nf.Set {
		nf = dr.NotFound
	}
	if nf.Set {
		ks.NotFound = b.notFound(d, nf)
		if m.Batch != nil && ks.NotFound != nil && ks.NotFound.Var == nil {
			// An id the batch source leaves out has no error to look at.
			b.errorf(nf.Pos, "%s: notfound=%s: a batch read caches the ids its source leaves out as the notfound error, which must then be an error variable (ErrNotFound)", m.Name, nf)
		}
		if !neg.Set {
			b.errorf(nf.Pos, "%s: notfound=%s needs a negative TTL: set negative= on the method or the repo (negative=0 disables negative caching)", m.Name, nf)
		}
	}
	if rn := b.types.of(ks.Result); !rn.hasTypeParam() {
		s, bad := schema(rn)
		if bad != "" {
			b.errorf(m.Pos, "%s: cannot cache %s: %s", m.Name, b.typeString(ks.Result), bad)
		} else {
			for _, why := range roundTrip(rn, "result") {
				b.errorf(m.Pos, "%s: cannot cache %s: %s", m.Name, b.typeString(ks.Result), why)
			}
		}
		ks.Schema = s
		ks.Shape, _ = shape(rn)
	}
	key.Space = ks
	m.Key = key
	seen := map[*Param]bool{}
	for _, v := range key.Values() {
		if !seen[v.Root] {
			seen[v.Root] = true
		}
	}
	for _, p := range m.Params {
		if seen[p] {
			m.KeyParams = append(m.KeyParams, p)
		}
	}
	if m.Batch != nil { // batch() checked its parameters
		m.KeyParams = []*Param{m.Batch.Slice}
	} else {
		b.keyCoversParams(m, dm, seen)
	}
	for _, t := range dm.Tags {
		if tt, ok := b.tmpl(t, bm, result, nil, ""); ok {
			m.Tags = append(m.Tags, tt)
		}
	}
	ks.tagSig = tagSignature(dm)
	if other := spaces[ks.Norm]; other != nil {
		o := other.Get
		switch {
		case !types.Identical(other.Result, ks.Result):
			b.errorf(dm.KeyArg.ValuePos, "%s and %s share the key template %q but return %s and %s: give them different keys", o.Name, m.Name, ks.Norm, b.typeString(other.Result), b.typeString(ks.Result))
		case other.TTL != ks.TTL || other.Negative != ks.Negative || other.Jitter.Percent != ks.Jitter.Percent || other.Jitter.Spread != ks.Jitter.Spread || other.NotFound.text() != ks.NotFound.text():
			b.errorf(dm.KeyArg.ValuePos, "%s shares the key template %q with %s but not its ttl, negative, jitter or notfound", m.Name, ks.Norm, o.Name)
		case other.Local != ks.Local:
			// One template is one keyspace, hence one Spec.Local.
			b.errorf(dm.KeyArg.ValuePos, "%s shares the key template %q with %s but not its local (%s and %s): one key template has one lifetime in memory", m.Name, ks.Norm, o.Name, short(ks.Local), short(other.Local))
		case other.Refresh != ks.Refresh || other.Stale != ks.Stale:
			b.errorf(dm.KeyArg.ValuePos, "%s shares the key template %q with %s but not its refresh or stale (%s and %s): one key template has one freshness", m.Name, ks.Norm, o.Name, freshText(ks), freshText(other))
		case other.tagSig != ks.tagSig:
			b.errorf(dm.KeyArg.ValuePos, "%s shares the key template %q with %s but not its tags", m.Name, ks.Norm, o.Name)
		case (o.Batch == nil) != (m.Batch == nil) && (ks.NotFound == nil || ks.NotFound.Var == nil) && !nilable(ks.Result):
			// An id the batch source leaves out is cached as absent; the
			// single get could only read that back as a zero value.
			b.errorf(dm.KeyArg.ValuePos, "%s and %s share the key template %q, but %s is not nil-able and there is no notfound=: an id the batch read does not find could not be cached as the single read returns it; set notfound= on both", o.Name, m.Name, ks.Norm, b.typeString(ks.Result))
		}
		m.Space, key.Space = other, other
		return
	}
	spaces[ks.Norm] = ks
	r.Spaces = append(r.Spaces, ks)
	m.Space = ks
}

// keyCoversParams refuses a get parameter the key does not hold: calls
// that differ only in it would share one entry. ignore= names those that
// do not affect the result.
func (b *builder) keyCoversParams(m *Method, dm *annotations.Method, inKey map[*Param]bool) {
	ignored := map[*Param]bool{}
	for _, id := range dm.Ignore {
		p := m.param(id.Name)
		switch {
		case p == nil || p.Context:
			b.errorf(id.Pos, "ignore=%s names no parameter of %s (have %s)", id.Name, m.Name, m.paramNames())
		case inKey[p]:
			b.errorf(id.Pos, "ignore=%s: %s is part of the key %q", id.Name, id.Name, dm.Key.Text)
		default:
			ignored[p] = true
		}
	}
	for i, p := range m.Params {
		if p.Context || inKey[p] || ignored[p] {
			continue
		}
		what := "parameter " + p.Orig
		if p.Variadic {
			what = "variadic parameter " + p.Orig
		}
		if p.Orig == "" || p.Orig == "_" {
			b.errorf(m.Pos, "%s: parameter %d (%s) is not in the key %q and has no name: calls that differ in it would share one entry; refer to it by position, {%s} in the key or ignore=%s", m.Name, i+1, b.typeString(p.Type), dm.Key.Text, p.ref(), p.ref())
			continue
		}
		b.errorf(m.Pos, "%s: %s is not in the key %q: calls that differ only in %s would share one entry; put it in the key, or say it does not affect the result with ignore=%s", m.Name, what, dm.Key.Text, p.Orig, p.Orig)
	}
}

// short formats a duration as it would be written in a directive: 1m, not 1m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// tagSignature describes the tags of a get with key placeholders replaced by
// their position, so two gets sharing a key template can be compared.
func tagSignature(dm *annotations.Method) string {
	keyIdx := map[string]int{}
	for i, p := range dm.Key.Placeholders() {
		keyIdx[p.Name()] = i
	}
	var tags []string
	for _, t := range dm.Tags {
		var s strings.Builder
		for _, p := range t.Parts {
			switch {
			case !p.IsPlaceholder():
				s.WriteString(p.Lit)
			case p.Path[0] == "result":
				s.WriteString("{" + p.Name() + "}")
			default:
				if i, ok := keyIdx[p.Name()]; ok {
					s.WriteString("{#" + strconv.Itoa(i) + "}")
				} else {
					s.WriteString("{?" + p.Name() + "}")
				}
			}
		}
		tags = append(tags, s.String())
	}
	return strings.Join(tags, ",")
}

// notFound resolves notfound=: an error variable (ErrX, pkg.ErrX), an
// error type (*T, pkg.T), a predicate func(error) bool (pkg.IsX), or a
// predicate and a type. The package of a qualified name is the file's
// import of that name or, when the file does not import it, the one
// package of that name the package depends on.
func (b *builder) notFound(d *ifaceDecl, id annotations.Ident) *NotFound {
	nf := &NotFound{Text: id.String()}
	first, ok := b.notFoundObj(d, id)
	if !ok {
		return nil
	}
	what := "a predicate func(error) bool (IsNotFound)"
	if id.As == nil {
		what = "an error variable (ErrNotFound), an error type (*NotFoundError) or " + what
	}
	switch o := first.(type) {
	case *types.Var:
		if id.As != nil || id.Star {
			b.errorf(id.Pos, "notfound=%s: %s is a variable; want %s", id, id.Name, what)
			return nil
		}
		if !types.AssignableTo(o.Type(), errorType) {
			b.errorf(id.Pos, "notfound=%s has type %s, which is not an error", id, b.typeString(o.Type()))
			return nil
		}
		nf.Var = o
		// A sentinel of a struct type (kratos' errors.NotFound(...)) keeps
		// the source error's fields too.
		if b.errorFields(o.Type()) {
			nf.Type = o.Type()
		}
	case *types.TypeName:
		if id.As != nil {
			b.errorf(id.Pos, "notfound=%s: %s is a type; the first item of a list is a predicate", id, id.Name)
			return nil
		}
		if nf.Type = b.errorTypeOf(id, o); nf.Type == nil {
			return nil
		}
	case *types.Func:
		sig := o.Type().(*types.Signature)
		if id.Star || sig.Recv() != nil || sig.Params().Len() != 1 || !isError(sig.Params().At(0).Type()) || sig.Results().Len() != 1 ||
			!types.Identical(sig.Results().At(0).Type(), types.Typ[types.Bool]) || sig.TypeParams().Len() > 0 {
			b.errorf(id.Pos, "notfound=%s: %s is a func %s; a predicate is func(error) bool", id, id.Name, b.typeString(sig))
			return nil
		}
		nf.Func = o
		if id.As == nil {
			b.warns = append(b.warns, errorf(id.Pos, "notfound=%s: a cached not-found keeps the error's text only, and is cached only when %s accepts an error of that text (else every not-found goes to the source); to keep the error's type and fields, name the type too: notfound=\"%s,*<error type>\"", id, id.Name, id))
		}
		if id.As != nil {
			second, ok := b.notFoundObj(d, *id.As)
			if !ok {
				return nil
			}
			tn, isType := second.(*types.TypeName)
			if !isType {
				b.errorf(id.As.Pos, "notfound=%s: %s is not a type; the second item is the error type a cached not-found keeps", id, id.As.Name)
				return nil
			}
			if nf.Type = b.errorTypeOf(*id.As, tn); nf.Type == nil {
				return nil
			}
		}
	default:
		b.errorf(id.Pos, "notfound=%s names a %s; want %s", id, objKind(first), what)
		return nil
	}
	return nf
}

// notFoundObj looks up one name of notfound=.
func (b *builder) notFoundObj(d *ifaceDecl, id annotations.Ident) (types.Object, bool) {
	if id.Pkg == "" {
		obj := b.p.Types.Scope().Lookup(id.Name)
		if obj == nil {
			b.errorf(id.Pos, "notfound=%s: package %s declares no %s", id, b.p.Types.Name(), id.Name)
			return nil, false
		}
		return obj, true
	}
	pkg, err := b.pkgNamed(d, id.Pkg)
	if err != "" {
		b.errorf(id.Pos, "notfound=%s: %s", id, err)
		return nil, false
	}
	obj := pkg.Scope().Lookup(id.Name)
	if obj == nil || !obj.Exported() {
		b.errorf(id.Pos, "notfound=%s: package %s (%q) has no exported %s", id, pkg.Name(), pkg.Path(), id.Name)
		return nil, false
	}
	return obj, true
}

// pkgNamed finds the package a qualifier names: the file's import of that
// name, else the one package of that name among the package's imports and
// theirs (notfound=sql.ErrNoRows in a file that does not import
// database/sql).
func (b *builder) pkgNamed(d *ifaceDecl, name string) (*types.Package, string) {
	for _, imp := range d.file.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		for _, q := range b.p.Types.Imports() {
			if q.Path() != path {
				continue
			}
			n := q.Name()
			if imp.Name != nil {
				n = imp.Name.Name
			}
			if n == name {
				return q, ""
			}
		}
	}
	// Breadth first: the package's own imports before theirs.
	seen := map[*types.Package]bool{b.p.Types: true}
	level := []*types.Package{b.p.Types}
	for len(level) > 0 {
		var next, found []*types.Package
		for _, p := range level {
			for _, q := range p.Imports() {
				if seen[q] {
					continue
				}
				seen[q] = true
				next = append(next, q)
				if q.Name() == name {
					found = append(found, q)
				}
			}
		}
		switch len(found) {
		case 0:
		case 1:
			return found[0], ""
		default:
			var paths []string
			for _, q := range found {
				paths = append(paths, strconv.Quote(q.Path()))
			}
			sort.Strings(paths)
			return nil, "several packages named " + name + " are dependencies (" + strings.Join(paths, ", ") + "); import the one meant in the interface's file"
		}
		level = next
	}
	return nil, "no package named " + name + " is imported by this file, its package or their dependencies; import it (a blank import is enough)"
}

// errorTypeOf checks notfound=*T or T: the type must be an error whose
// exported fields can be stored.
func (b *builder) errorTypeOf(id annotations.Ident, tn *types.TypeName) types.Type {
	t := tn.Type()
	if _, isTP := t.(*types.TypeParam); isTP {
		b.errorf(id.Pos, "notfound=%s: %s is a type parameter", id, id.Name)
		return nil
	}
	if n, ok := t.(*types.Named); ok && n.TypeParams().Len() > 0 {
		b.errorf(id.Pos, "notfound=%s: %s is generic; name an instantiation's type through an alias", id, id.Name)
		return nil
	}
	if id.Star {
		t = types.NewPointer(t)
	}
	if !types.AssignableTo(t, errorType) {
		hint := ""
		if !id.Star && types.AssignableTo(types.NewPointer(t), errorType) {
			hint = " (*" + id.Name + " is: write notfound=*" + id.String() + ")"
		}
		b.errorf(id.Pos, "notfound=%s: %s does not implement error%s", id, b.typeString(t), hint)
		return nil
	}
	if _, isIface := t.Underlying().(*types.Interface); isIface {
		b.errorf(id.Pos, "notfound=%s: %s is an interface; errors.As needs a concrete type", id, b.typeString(t))
		return nil
	}
	for _, why := range b.errorFieldProblems(b.types.of(t)) {
		b.errorf(id.Pos, "notfound=%s: cannot store %s: %s", id, b.typeString(t), why)
	}
	return t
}

// errorFields reports whether a sentinel's type keeps fields worth storing:
// a (pointer to a) struct type of this package or an exported one, with
// exported fields that encode.
func (b *builder) errorFields(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	if p, isPtr := t.Underlying().(*types.Pointer); isPtr && !ok {
		n, ok = types.Unalias(p.Elem()).(*types.Named)
	} else if isPtr && ok {
		return false // a named pointer type
	}
	if !ok || n.TypeArgs().Len() > 0 || !n.Obj().Exported() && n.Obj().Pkg() != b.p.Types {
		return false
	}
	st, ok := n.Underlying().(*types.Struct)
	if !ok || len(b.errorFieldProblems(b.types.of(t))) > 0 {
		return false
	}
	return exportedFields(st) > 0
}

// exportedFields counts the exported fields of st and of the structs it
// embeds.
func exportedFields(st *types.Struct) int {
	n := 0
	for i := 0; i < st.NumFields(); i++ {
		f := st.Field(i)
		switch {
		case f.Exported() && !f.Embedded():
			n++
		case f.Embedded():
			if s, ok := f.Type().Underlying().(*types.Struct); ok {
				n += exportedFields(s)
			}
		}
	}
	return n
}

// errorFieldProblems is roundTrip for the stored part of an error value:
// its exported fields (unexported ones, a wrapped cause say, are not kept).
func (b *builder) errorFieldProblems(n *tnode) []string {
	if n.hasCodec() {
		return nil
	}
	u := n.under()
	if u.Kind == tPointer {
		u = u.Elem.under()
	}
	if u.Kind != tStruct {
		return nil // a named string or number: msgpack encodes it
	}
	var bad []string
	for _, fl := range u.Fields {
		f := fl.Obj.(*types.Var)
		if !f.Exported() && !f.Embedded() {
			continue
		}
		if f.Embedded() {
			bad = append(bad, b.errorFieldProblems(fl.Type)...)
			continue
		}
		bad = append(bad, roundTrip(fl.Type, "error."+f.Name())...)
	}
	return bad
}

func objKind(o types.Object) string {
	switch o.(type) {
	case *types.Const:
		return "constant"
	case *types.PkgName:
		return "package"
	}
	return "declaration"
}

func (b *builder) put(r *Repo, m *Method, dm *annotations.Method, spaces map[string]*Keyspace) {
	result := m.resultType()
	stored := result
	if dm.Value.Set {
		m.Store = m.param(dm.Value.Name)
		if m.Store == nil {
			b.errorf(dm.Value.Pos, "value=%s names no parameter of %s (have %s)", dm.Value.Name, m.Name, m.paramNames())
			return
		}
		stored = m.Store.Type
	} else if result == nil {
		b.errorf(m.Pos, "%s returns only an error: name the parameter to store with value=", m.Name)
		return
	}
	key, ok := b.tmpl(dm.Key, m, result, nil, "a put key")
	ks := spaces[dm.Key.Norm()]
	if ks == nil {
		if !b.unknown(dm.Key.Norm()) {
			b.errorf(dm.KeyArg.ValuePos, "key %q of %s matches no //cache:get key template of %s%s", dm.Key.Text, m.Name, r.Name, b.have(r))
		}
		ok = false
	} else if !types.Identical(ks.Result, stored) {
		b.errorf(dm.KeyArg.ValuePos, "%s stores %s under %q, but %s caches %s there", m.Name, b.typeString(stored), dm.Key.Text, ks.Get.Name, b.typeString(ks.Result))
		ok = false
	}
	b.invalidations(r, m, dm, spaces)
	if !ok {
		return
	}
	if !b.compatible(ks, key, dm.KeyArg.ValuePos) {
		return
	}
	key.Space = ks
	m.Key, m.Space = key, ks
	// The stored entry gets the tags of the get, re-expressed with this
	// put's values at the same key positions.
	getKey := ks.Get.Key
	for _, gt := range ks.Get.Tags {
		t := &Tmpl{Text: gt.Text}
		for _, s := range gt.Segs {
			if s.Val == nil {
				t.Segs = append(t.Segs, s)
				continue
			}
			var nv *Value
			if s.Val.Root == nil {
				// {result.X} of the get is the stored value here.
				part := annotations.Part{Path: append([]string{"result"}, s.Val.Fields...), Pos: dm.KeyArg.ValuePos}
				var rootParam *Param
				if m.Store != nil {
					rootParam = m.Store
				}
				nv, _ = b.value(part, m, stored, rootParam, "")
			} else {
				for i, kv := range getKey.Values() {
					if kv.Text == s.Val.Text {
						nv = key.Values()[i]
						break
					}
				}
				if nv == nil {
					b.errorf(dm.KeyArg.ValuePos, "%s cannot tag the stored entry like %s does: tag %q uses {%s}, which is not part of the key %q", m.Name, ks.Get.Name, gt.Text, s.Val.Text, ks.Get.Key.Text)
					return
				}
			}
			if nv == nil {
				return
			}
			t.Segs = append(t.Segs, Seg{Val: nv})
		}
		m.EntryTags = append(m.EntryTags, t)
	}
}

func (b *builder) evict(r *Repo, m *Method, dm *annotations.Method, spaces map[string]*Keyspace) {
	b.invalidations(r, m, dm, spaces)
}

// invalidations resolves the keys, tags and patterns a put or evict drops.
func (b *builder) invalidations(r *Repo, m *Method, dm *annotations.Method, spaces map[string]*Keyspace) {
	for _, kt := range dm.Keys {
		t, ok := b.tmpl(kt, m, nil, nil, "an invalidated key")
		if !ok {
			continue
		}
		ks := spaces[kt.Norm()]
		if ks == nil {
			if b.unknown(kt.Norm()) {
				continue
			}
			b.errorf(kt.Pos, "key %q of %s matches no //cache:get key template of %s%s", kt.Text, m.Name, r.Name, b.have(r))
			continue
		}
		if b.compatible(ks, t, kt.Pos) {
			t.Space = ks
			m.Evict = append(m.Evict, t)
		}
	}
	for _, tt := range dm.Tags {
		if t, ok := b.tmpl(tt, m, nil, nil, "an invalidated tag"); ok {
			m.Tags = append(m.Tags, t)
		}
	}
	seen := map[*Keyspace]bool{}
	for _, p := range dm.Patterns {
		n := 0
		for _, ks := range r.Spaces {
			if annotations.Covers(p.Text, ks.Get.keyTemplate()) {
				n++
				if !seen[ks] {
					seen[ks] = true
					m.Groups = append(m.Groups, ks)
				}
			}
		}
		for _, t := range b.broken {
			if annotations.Covers(p.Text, t) {
				n++
			}
		}
		if n == 0 {
			b.errorf(p.Pos, "pattern %q of %s matches no //cache:get key template of %s%s", p.Text, m.Name, r.Name, b.have(r))
		}
	}
}

// unknown reports whether a key template may be that of a get which is
// already reported as wrong: a put or evict naming it is not reported again.
func (b *builder) unknown(norm string) bool {
	for _, t := range b.broken {
		if t.Norm() == norm {
			return true
		}
	}
	return false
}

// compatible checks that the values of t write the same kind of bytes as the
// values of the keyspace's get key at the same positions.
func (b *builder) compatible(ks *Keyspace, t *Tmpl, p token.Position) bool {
	want := ks.Get.Key.Values()
	for i, v := range t.Values() {
		if i < len(want) && v.Kind.class() != want[i].Kind.class() {
			b.errorf(p, "{%s} is %s but {%s} of %s's key %q is %s", v.Text, v.Kind.class(), want[i].Text, ks.Get.Name, ks.Get.Key.Text, want[i].Kind.class())
			return false
		}
		hashStrings := v.Kind == KindHashString && want[i].Kind == KindHashString // alike for every string type
		if i < len(want) && v.Kind.class() == "a hash" && !hashStrings && !types.Identical(v.Type, want[i].Type) {
			// Another type encodes otherwise: the hash would name other entries.
			b.errorf(p, "{%s} hashes %s but {%s} of %s's key %q hashes %s: a hash names the same entry only for the same type", v.Text, b.typeString(v.Type), want[i].Text, ks.Get.Name, ks.Get.Key.Text, b.typeString(want[i].Type))
			return false
		}
	}
	return true
}

func (b *builder) have(r *Repo) string {
	var note string
	if n := b.d.unreadGets; len(n) > 0 {
		note = "; the //cache:get of " + strings.Join(n, ", ") + " has errors above"
	}
	if len(r.Spaces) == 0 {
		return " (it has none" + note + ")"
	}
	var s []string
	for _, ks := range r.Spaces {
		s = append(s, strconv.Quote(ks.Get.Key.Text))
	}
	return " (have " + strings.Join(s, ", ") + note + ")"
}

// keyTemplate re-parses the key of a get for pattern matching.
func (m *Method) keyTemplate() annotations.Template {
	var t annotations.Template
	for _, s := range m.Key.Segs {
		if s.Val != nil {
			t.Parts = append(t.Parts, annotations.Part{Path: strings.Split(s.Val.Text, ".")})
		} else {
			t.Parts = append(t.Parts, annotations.Part{Lit: s.Lit})
		}
	}
	return t
}

func (m *Method) param(name string) *Param {
	if n := annotations.Position(name); n > 0 {
		if n <= len(m.Params) {
			return m.Params[n-1]
		}
		return nil
	}
	for _, p := range m.Params {
		if p.Orig == name && name != "_" && name != "" {
			return p
		}
	}
	return nil
}

func (m *Method) paramNames() string {
	var s []string
	for _, p := range m.Params {
		if !p.Context {
			s = append(s, p.ref())
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// tmpl binds a template's placeholders to values. result is the type
// {result} stands for, or nil where the result is not available.
func (b *builder) tmpl(t annotations.Template, m *Method, result types.Type, resultParam *Param, where string) (*Tmpl, bool) {
	out := &Tmpl{Text: t.Text, Pos: t.Pos}
	ok := true
	for _, p := range t.Parts {
		if !p.IsPlaceholder() {
			out.Segs = append(out.Segs, Seg{Lit: p.Lit})
			continue
		}
		v, vok := b.value(p, m, result, resultParam, where)
		if !vok {
			ok = false
			continue
		}
		out.Segs = append(out.Segs, Seg{Val: v})
		if v.Kind == KindUnion {
			b.unionParam(v.Type.(*types.TypeParam))
		}
	}
	return out, ok
}

// unionParam records a type parameter a key uses as KindUnion.
func (b *builder) unionParam(tp *types.TypeParam) {
	for _, t := range b.repoUnion {
		if t == tp {
			return
		}
	}
	b.repoUnion = append(b.repoUnion, tp)
}
