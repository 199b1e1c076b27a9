package gen

import (
	"bytes"
	"fmt"
	"go/types"
	"strconv"
	"strings"
	"time"

	"github.com/dave/jennifer/jen"
)

const (
	rt     = "github.com/cachegen/cachegen/runtime"
	ctxPkg = "context"
)

// renderer turns one File of the model into Go source. Every name it
// writes was chosen by the name stage.
type renderer struct {
	f        *File
	local    map[string]string // fixed local -> name used (File.Locals)
	cloneVar map[string]string // the same for the deep-copy functions (File.CloneLocals)
	r        *Repo             // the repository being rendered

	tagIndexes map[*Method]*tagIndex // the contract's index of each write's tags
}

// render writes f as Go source, formatted through the cache in cacheDir
// ("" for none).
func render(f *File, cacheDir string) ([]byte, error) {
	g := &renderer{f: f, local: f.Locals, cloneVar: f.CloneLocals}
	jf := jen.NewFilePathName(f.Pkg.Path(), f.Pkg.Name())
	if f.Build != "" {
		jf.HeaderComment(Header + "\n\n" + f.Build)
	} else {
		jf.HeaderComment(Header)
	}
	for _, imp := range f.Imports {
		if imp.Alias {
			jf.ImportAlias(imp.Path, imp.Name)
		} else {
			jf.ImportName(imp.Path, imp.Name)
		}
	}
	for _, r := range f.Repos {
		g.repo(jf, r)
	}
	for _, fn := range f.Clones {
		g.cloneFunc(jf, fn)
	}
	if f.CloneCodec != "" {
		g.cloneCodec(jf)
	}
	// jennifer writes the source, formatSource formats it (go/format,
	// through the cache): the only formatting pass.
	jf.NoFormat = true
	var buf bytes.Buffer
	if err := jf.Render(&buf); err != nil {
		return nil, err
	}
	src, err := formatSource(cacheDir, buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting the generated source: %v", err)
	}
	return groupImports(src), nil
}

// groupImports puts the standard library's imports apart from the others,
// as goimports does, in the formatted source: jennifer writes one block
// sorted by path, and gofmt keeps a block sorted by path, so splitting it
// in two keeps the file formatted.
func groupImports(src []byte) []byte {
	start := bytes.Index(src, []byte("\nimport (\n"))
	if start < 0 {
		return src
	}
	start += len("\nimport (\n")
	end := bytes.Index(src[start:], []byte("\n)\n"))
	if end < 0 {
		return src
	}
	end += start
	var std, other [][]byte
	for _, line := range bytes.Split(src[start:end], []byte("\n")) {
		q := bytes.IndexByte(line, '"')
		if q < 0 {
			return src // a comment or something else: leave it alone
		}
		path := line[q+1:]
		if i := bytes.IndexByte(path, '/'); i >= 0 {
			path = path[:i]
		}
		if bytes.IndexByte(bytes.TrimSuffix(path, []byte{'"'}), '.') < 0 {
			std = append(std, line)
		} else {
			other = append(other, line)
		}
	}
	if len(std) == 0 || len(other) == 0 {
		return src
	}
	var out bytes.Buffer
	out.Write(src[:start])
	out.Write(bytes.Join(std, []byte("\n")))
	out.WriteString("\n\n")
	out.Write(bytes.Join(other, []byte("\n")))
	out.Write(src[end:])
	return out.Bytes()
}

// l returns the name of a generated local.
func (g *renderer) l(name string) string { return g.local[name] }

// typ renders a type, qualifying names from other packages.
func (g *renderer) typ(t types.Type) *jen.Statement {
	switch t := t.(type) {
	case *types.Alias:
		return g.obj(t.Obj()).Add(g.typeArgs(t.TypeArgs()))
	case *types.Named:
		return g.obj(t.Obj()).Add(g.typeArgs(t.TypeArgs()))
	case *types.Basic:
		return jen.Id(t.Name())
	case *types.Pointer:
		return jen.Op("*").Add(g.typ(t.Elem()))
	case *types.Slice:
		return jen.Index().Add(g.typ(t.Elem()))
	case *types.Array:
		return jen.Index(jen.Lit(int(t.Len()))).Add(g.typ(t.Elem()))
	case *types.Map:
		return jen.Map(g.typ(t.Key())).Add(g.typ(t.Elem()))
	case *types.Chan:
		switch t.Dir() {
		case types.SendOnly:
			return jen.Chan().Op("<-").Add(g.typ(t.Elem()))
		case types.RecvOnly:
			return jen.Op("<-").Chan().Add(g.typ(t.Elem()))
		}
		return jen.Chan().Add(g.typ(t.Elem()))
	case *types.Signature:
		return jen.Func().Add(g.signature(t))
	case *types.Struct:
		var fields []jen.Code
		for i := 0; i < t.NumFields(); i++ {
			f := t.Field(i)
			var c *jen.Statement
			if f.Embedded() {
				c = g.typ(f.Type())
			} else {
				c = jen.Id(f.Name()).Add(g.typ(f.Type()))
			}
			if tag := t.Tag(i); tag != "" {
				if strings.Contains(tag, "`") {
					c.Op(strconv.Quote(tag))
				} else {
					c.Op("`" + tag + "`")
				}
			}
			fields = append(fields, c)
		}
		return jen.Struct(fields...)
	case *types.Interface:
		var items []jen.Code
		for i := 0; i < t.NumEmbeddeds(); i++ {
			items = append(items, g.typ(t.EmbeddedType(i)))
		}
		for i := 0; i < t.NumExplicitMethods(); i++ {
			m := t.ExplicitMethod(i)
			items = append(items, jen.Id(m.Name()).Add(g.signature(m.Type().(*types.Signature))))
		}
		return jen.Interface(items...)
	case *types.Union:
		var terms []jen.Code
		for i := 0; i < t.Len(); i++ {
			term := t.Term(i)
			if term.Tilde() {
				terms = append(terms, jen.Op("~").Add(g.typ(term.Type())))
			} else {
				terms = append(terms, g.typ(term.Type()))
			}
		}
		return jen.Union(terms...)
	case *types.TypeParam:
		return jen.Id(g.tpName(t))
	}
	panic(fmt.Sprintf("cachegen: cannot render type %T", t))
}

// tpName is the name of a type parameter in the generated code.
func (g *renderer) tpName(tp *types.TypeParam) string {
	if g.r != nil {
		if n, ok := g.r.TypeParamNames[tp]; ok {
			return n
		}
	}
	return tp.Obj().Name()
}

func (g *renderer) obj(o types.Object) *jen.Statement {
	if o.Pkg() == nil || o.Pkg() == g.f.Pkg {
		return jen.Id(o.Name())
	}
	return jen.Qual(o.Pkg().Path(), o.Name())
}

func (g *renderer) typeArgs(l *types.TypeList) *jen.Statement {
	if l == nil || l.Len() == 0 {
		return jen.Null()
	}
	var args []jen.Code
	for i := 0; i < l.Len(); i++ {
		args = append(args, g.typ(l.At(i)))
	}
	return jen.Types(args...)
}

func (g *renderer) signature(s *types.Signature) *jen.Statement {
	var params, results []jen.Code
	for i := 0; i < s.Params().Len(); i++ {
		t := s.Params().At(i).Type()
		if s.Variadic() && i == s.Params().Len()-1 {
			params = append(params, jen.Op("...").Add(g.typ(t.(*types.Slice).Elem())))
			continue
		}
		params = append(params, g.typ(t))
	}
	for i := 0; i < s.Results().Len(); i++ {
		results = append(results, g.typ(s.Results().At(i).Type()))
	}
	return jen.Params(params...).Add(resultList(results))
}

func resultList(results []jen.Code) *jen.Statement {
	switch len(results) {
	case 0:
		return jen.Null()
	case 1:
		return jen.Add(results[0])
	}
	return jen.Params(results...)
}

// typeParams renders [K ~string, V any] for declarations.
func (g *renderer) typeParams(r *Repo) *jen.Statement {
	if len(r.TypeParams) == 0 {
		return jen.Null()
	}
	var items []jen.Code
	for _, tp := range r.TypeParams {
		c := tp.Constraint()
		var ct *jen.Statement
		if ifc, ok := c.(*types.Interface); ok && ifc.IsImplicit() && ifc.NumEmbeddeds() == 1 {
			ct = g.typ(ifc.EmbeddedType(0))
		} else {
			ct = g.typ(c)
		}
		items = append(items, jen.Id(r.TypeParamNames[tp]).Add(ct))
	}
	return jen.Types(items...)
}

// typeArgNames renders [K, V] for uses.
func typeArgNames(r *Repo) *jen.Statement {
	if len(r.TypeParams) == 0 {
		return jen.Null()
	}
	var items []jen.Code
	for _, tp := range r.TypeParams {
		items = append(items, jen.Id(r.TypeParamNames[tp]))
	}
	return jen.Types(items...)
}

func (g *renderer) ifaceType(r *Repo) *jen.Statement {
	return g.obj(r.Named.Obj()).Add(typeArgNames(r))
}

func (g *renderer) structType(r *Repo) *jen.Statement {
	return jen.Id(r.Struct()).Add(typeArgNames(r))
}

func multi(items ...jen.Code) *jen.Statement {
	return jen.Custom(jen.Options{Open: "{", Close: "}", Separator: ",", Multi: true}, items...)
}

func field(name string, value jen.Code) jen.Code {
	return jen.Id(name).Op(":").Add(value)
}

func (g *renderer) repo(jf *jen.File, r *Repo) {
	g.r = r
	recv, next, c, repo := g.l("r"), g.l("next"), g.l("c"), g.l("repo")
	fields := []jen.Code{
		jen.Id(r.Fields.Next).Add(g.ifaceType(r)),
		jen.Id(r.Fields.Cache).Op("*").Qual(rt, "Cache"),
		jen.Id(r.Fields.Repo).Op("*").Qual(rt, "Repo"),
	}
	for _, ks := range r.Spaces {
		fields = append(fields, jen.Id(ks.Field).Op("*").Qual(rt, "Keyspace").Types(g.typ(ks.Result)).Comment(strconv.Quote(ks.Get.Key.Text)))
	}
	for _, tp := range r.UnionParams {
		fields = append(fields, jen.Id(r.Appenders[tp]).Func().Params(jen.Index().Byte(), g.typ(tp)).Index().Byte().
			Comment("appends a "+g.tpName(tp)+" to a key, by the kind it is instantiated with"))
	}
	doc := "// " + r.Struct() + " implements " + r.Name + " with a cache in Redis, through a runtime.Cache."
	if hasCached(r) {
		reach := "tags also\n// reach the entries of every repository on the same runtime.Cache"
		if len(r.TypeParams) > 0 {
			reach = "each\n// instantiation has its own keys, InvalidateAll and tags"
		}
		doc += "\n//\n// Its cache contract (invalidations by the writes of this file; " + reach + "):\n//\n" + g.contract(r)
	}
	jf.Comment(doc)
	jf.Type().Id(r.Struct()).Add(g.typeParams(r)).Struct(fields...)
	if len(r.TypeParams) == 0 {
		jf.Var().Id("_").Add(g.ifaceType(r)).Op("=").Parens(jen.Op("*").Id(r.Struct())).Call(jen.Nil())
	}

	// Constructor.
	var values []jen.Code
	values = append(values, field(r.Fields.Next, jen.Id(next)), field(r.Fields.Cache, jen.Id(c)), field(r.Fields.Repo, jen.Id(repo)))
	for _, ks := range r.Spaces {
		values = append(values, field(ks.Field, jen.Qual(rt, "NewKeyspace").Call(jen.Id(repo), g.spec(ks))))
	}
	for _, tp := range r.UnionParams {
		values = append(values, field(r.Appenders[tp], jen.Qual(rt, "UnionAppender").Types(g.typ(tp)).Call()))
	}
	var body []jen.Code
	if len(r.TypeParams) > 0 {
		// Each instantiation is a repository of its own: its keys, its
		// InvalidateAll, its tags.
		args := []jen.Code{jen.Lit(r.Prefix), jen.Lit(r.Version)}
		for _, tp := range r.TypeParams {
			args = append(args, jen.Qual(rt, "TypeName").Types(jen.Id(r.TypeParamNames[tp])).Call())
		}
		body = append(body, jen.Id(repo).Op(":=").Id(c).Dot("RepoOf").Call(args...))
	} else {
		body = append(body, jen.Id(repo).Op(":=").Id(c).Dot("Repo").Call(jen.Lit(r.Prefix), jen.Lit(r.Version)))
	}
	if len(r.TypeParams) > 0 {
		body = append(body, jen.Var().Id("_").Add(g.ifaceType(r)).Op("=").Parens(jen.Op("*").Add(g.structType(r))).Call(jen.Nil()))
	}
	body = append(body, jen.Return(jen.Op("&").Add(g.structType(r)).Add(multi(values...))))
	jf.Commentf("New%s returns a %s that serves from c and reads through to next.", r.Struct(), r.Struct())
	jf.Func().Id("New"+r.Struct()).Add(g.typeParams(r)).
		Params(jen.Id(next).Add(g.ifaceType(r)), jen.Id(c).Op("*").Qual(rt, "Cache")).
		Op("*").Add(g.structType(r)).Block(body...)

	for _, m := range r.Methods {
		g.method(jf, r, recv, m)
	}
	for _, m := range r.Methods {
		if m.Verb == "get" && m.Batch != nil {
			g.batchMethods(jf, r, recv, m)
		}
	}
	for _, ks := range r.Spaces {
		if ks.Get.Batch == nil { // a batch read renders its own
			g.invalidateGet(jf, r, recv, ks.Get)
		}
	}
	jf.Commentf("InvalidateAll drops every entry of %s at once.", r.Struct())
	jf.Func().Params(jen.Id(recv).Op("*").Add(g.structType(r))).Id("InvalidateAll").
		Params(jen.Id(g.l("ctx")).Qual(ctxPkg, "Context")).Error().
		Block(jen.Return(jen.Id(recv).Dot(r.Fields.Repo).Dot("InvalidateAll").Call(jen.Id(g.l("ctx")))))
	for _, ks := range r.Spaces {
		for _, kf := range ks.Keys {
			g.keyFunc(jf, r, recv, kf)
		}
	}
}

// hasCached reports whether a repository has a method with a directive.
func hasCached(r *Repo) bool {
	for _, m := range r.Methods {
		if m.Verb != "" {
			return true
		}
	}
	return false
}

// spec renders the runtime.Spec of a keyspace.
func (g *renderer) spec(ks *Keyspace) *jen.Statement {
	items := []jen.Code{field("Template", jen.Lit(ks.Norm))}
	if ks.Schema != "" {
		items = append(items, field("Schema", jen.Lit(ks.Schema)))
		if ks.Shape != "" {
			items = append(items, field("Shape", jen.Lit(ks.Shape)))
		}
	} else {
		items = append(items, field("Schema", jen.Qual(rt, "SchemaOf").Types(g.typ(ks.Result)).Call()))
	}
	if ks.Get != nil { // names the keyspace in statistics and exporters
		items = append(items, field("Method", jen.Lit(ks.Get.Name)))
	}
	items = append(items, field("TTL", duration(ks.TTL)))
	if ks.Negative > 0 {
		items = append(items, field("Negative", duration(ks.Negative)))
	}
	switch {
	case ks.Jitter.IsPercent && ks.Jitter.Percent > 0:
		items = append(items, field("Jitter", jen.Qual(rt, "Percent").Call(jen.Op(strconv.FormatFloat(ks.Jitter.Percent, 'g', -1, 64)))))
	case !ks.Jitter.IsPercent && ks.Jitter.Spread > 0:
		items = append(items, field("Jitter", jen.Qual(rt, "Spread").Call(duration(ks.Jitter.Spread))))
	}
	if nf := ks.NotFound; nf != nil {
		if nf.Var != nil {
			items = append(items, field("NotFound", g.obj(nf.Var)))
		}
		if nf.Type != nil {
			items = append(items, field("NotFoundAs", jen.Qual(rt, "ErrorType").Types(g.typ(nf.Type)).Call()))
		}
		if nf.Func != nil {
			items = append(items, field("NotFoundIf", g.obj(nf.Func)))
		}
	}
	if nilable(ks.Result) {
		v := g.l("v")
		items = append(items, field("IsNil", jen.Func().Params(jen.Id(v).Add(g.typ(ks.Result))).Bool().
			Block(jen.Return(jen.Id(v).Op("==").Nil()))))
	}
	if ks.Local > 0 {
		items = append(items, field("Local", duration(ks.Local)))
	}
	if ks.Refresh > 0 {
		items = append(items, field("Refresh", jen.Op(strconv.FormatFloat(ks.Refresh/100, 'g', -1, 64))))
	}
	if ks.Stale > 0 {
		items = append(items, field("Stale", duration(ks.Stale)))
	}
	switch {
	case ks.Clone == nil:
	case ks.Clone.Func != nil:
		items = append(items, field("Clone", jen.Id(ks.Clone.Func.Name)))
	default:
		items = append(items, codecComment(ks.Clone).Line().Add(field("Clone", jen.Id(g.f.CloneCodec).Types(g.typ(ks.Result)))))
	}
	return jen.Qual(rt, "Spec").Types(g.typ(ks.Result)).Add(multi(items...))
}

func nilable(t types.Type) bool {
	if _, ok := types.Unalias(t).(*types.TypeParam); ok {
		return false
	}
	switch t.Underlying().(type) {
	case *types.Pointer, *types.Slice, *types.Map, *types.Interface, *types.Chan, *types.Signature:
		return true
	}
	return false
}

// duration renders d as a readable constant expression: 90 * time.Minute.
func duration(d time.Duration) *jen.Statement {
	units := []struct {
		d    time.Duration
		name string
	}{{time.Hour, "Hour"}, {time.Minute, "Minute"}, {time.Second, "Second"}, {time.Millisecond, "Millisecond"}, {time.Microsecond, "Microsecond"}, {time.Nanosecond, "Nanosecond"}}
	for _, u := range units {
		if d%u.d == 0 {
			if d == u.d {
				return jen.Qual("time", u.name)
			}
			return jen.Lit(int(d/u.d)).Op("*").Qual("time", u.name)
		}
	}
	return jen.Lit(int(d))
}
