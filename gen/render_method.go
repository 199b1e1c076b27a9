package gen

import (
	"go/types"
	"strings"

	"github.com/dave/jennifer/jen"
)

// scope tracks what a method body has declared while its keys and tags are
// rendered: the name of the result, and the MarshalText outputs.
type scope struct {
	result string
	txt    map[string]string // value path -> txtN
	ns     *names            // the method's names: numbered locals are declared there
	b      bool              // the byte slice b is used: a second template needs another
}

func newScope(result string, ns *names) *scope {
	return &scope{result: result, txt: map[string]string{}, ns: ns}
}

func (g *renderer) rootName(v *Value, sc *scope) string {
	if v.Root == nil {
		return sc.result
	}
	return v.Root.Name
}

// expr renders the value's root followed by its first n fields.
func (g *renderer) expr(v *Value, n int, sc *scope) *jen.Statement {
	s := jen.Id(g.rootName(v, sc))
	for _, f := range v.Fields[:n] {
		s = s.Dot(f)
	}
	return s
}

func (g *renderer) pathKey(v *Value, n int, sc *scope) string {
	return strings.Join(append([]string{g.rootName(v, sc)}, v.Fields[:n]...), ".")
}

// appendVal renders runtime.AppendX(cur, value).
func (g *renderer) appendVal(cur *jen.Statement, v *Value, sc *scope) *jen.Statement {
	x := g.expr(v, len(v.Fields), sc)
	if v.Deref {
		x = jen.Op("*").Add(x)
	}
	if v.Conv != "" {
		x = jen.Id(v.Conv).Call(x)
	}
	switch v.Kind {
	case KindString:
		return jen.Qual(rt, "AppendString").Call(cur, x)
	case KindInt:
		return jen.Qual(rt, "AppendInt").Call(cur, x)
	case KindUint:
		return jen.Qual(rt, "AppendUint").Call(cur, x)
	case KindBool:
		return jen.Qual(rt, "AppendBool").Call(cur, x)
	case KindStringer:
		return jen.Qual(rt, "AppendString").Call(cur, x.Dot("String").Call())
	case KindUnion:
		return jen.Id(g.l("r")).Dot(g.r.Appenders[v.Type.(*types.TypeParam)]).Call(cur, x)
	case KindHash:
		return jen.Qual(rt, "AppendHash").Call(cur, x)
	case KindHashString:
		return jen.Qual(rt, "AppendHashString").Call(cur, x)
	}
	return jen.Qual(rt, "AppendBytes").Call(cur, jen.Id(sc.txt[g.pathKey(v, len(v.Fields), sc)]))
}

// build appends the template's literals and values to start. Templates
// with up to two values are one nested expression; longer ones append to a
// local b, one statement per part, appended to pre, so they stay readable.
func (g *renderer) build(start *jen.Statement, t *Tmpl, sc *scope, pre *[]jen.Code) *jen.Statement {
	if len(t.Values()) <= 2 {
		cur := start
		for _, s := range t.Segs {
			if s.Val == nil {
				cur = jen.Append(cur, jen.Lit(s.Lit).Op("..."))
				continue
			}
			cur = g.appendVal(cur, s.Val, sc)
		}
		return cur
	}
	// Each long template gets its own slice: templates built in guards of
	// their own may or may not share a block, so none is ever reassigned.
	b := g.l("b")
	if sc.b {
		b = sc.ns.numbered(b, 2)
	}
	sc.b = true
	*pre = append(*pre, jen.Id(b).Op(":=").Add(start))
	for _, s := range t.Segs {
		if s.Val == nil {
			*pre = append(*pre, jen.Id(b).Op("=").Append(jen.Id(b), jen.Lit(s.Lit).Op("...")))
			continue
		}
		*pre = append(*pre, jen.Id(b).Op("=").Add(g.appendVal(jen.Id(b), s.Val, sc)))
	}
	return jen.Id(b)
}

func (g *renderer) bufStart() *jen.Statement {
	return jen.Id(g.l("buf")).Index(jen.Empty(), jen.Lit(0))
}

// key renders r.ksX.Key(r.keyX(r.ksX.AppendPrefix(buf[:0]), values...)).
func (g *renderer) key(recv string, t *Tmpl, sc *scope) *jen.Statement {
	ks := jen.Id(recv).Dot(t.Space.Field)
	return ks.Clone().Dot("Key").Call(g.keyCall(jen.Id(recv), t, sc, ks.Clone().Dot("AppendPrefix").Call(g.bufStart())))
}

// keyCall renders recv.keyX(start, values...): the key template t appended
// to start by its helper.
func (g *renderer) keyCall(recv *jen.Statement, t *Tmpl, sc *scope, start *jen.Statement) *jen.Statement {
	args := []jen.Code{start}
	for _, v := range t.Values() {
		args = append(args, g.keyArg(v, sc))
	}
	return recv.Dot(t.Func.Name).Call(args...)
}

// usesRecv reports whether a key helper reads its receiver: only the
// appenders of union type parameters live there.
func (kf *KeyFunc) usesRecv() bool {
	for _, f := range kf.Forms {
		if f.Kind == KindUnion {
			return true
		}
	}
	return false
}

// keyArg renders a value in the form its key helper takes it (formOf).
func (g *renderer) keyArg(v *Value, sc *scope) *jen.Statement {
	switch v.Kind {
	case KindText:
		return jen.Id(sc.txt[g.pathKey(v, len(v.Fields), sc)])
	case KindStringer:
		return g.expr(v, len(v.Fields), sc).Dot("String").Call()
	}
	x := g.expr(v, len(v.Fields), sc)
	if v.Deref {
		x = jen.Op("*").Add(x)
	}
	if v.Conv != "" {
		x = jen.Id(v.Conv).Call(x)
	}
	return x
}

// keyFunc renders a key helper: the keyspace's literals and the values, in
// their forms, appended to b. Up to two values are one expression, longer
// templates one statement per part.
func (g *renderer) keyFunc(jf *jen.File, r *Repo, recv string, kf *KeyFunc) {
	b := kf.Params[0]
	params := []jen.Code{jen.Id(b).Index().Byte()}
	for i, f := range kf.Forms {
		var t *jen.Statement
		switch f.Kind {
		case KindString:
			t = jen.String()
		case KindInt:
			t = jen.Int64()
		case KindUint:
			t = jen.Uint64()
		case KindBool:
			t = jen.Bool()
		case KindText:
			t = jen.Index().Byte()
		case KindUnion, KindHash:
			t = g.typ(f.T)
		case KindHashString:
			t = jen.String()
		}
		params = append(params, jen.Id(kf.Params[i+1]).Add(t))
	}
	appendPart := func(cur *jen.Statement, f Form, name string) *jen.Statement {
		x := jen.Id(name)
		switch f.Kind {
		case KindInt:
			return jen.Qual(rt, "AppendInt").Call(cur, x)
		case KindUint:
			return jen.Qual(rt, "AppendUint").Call(cur, x)
		case KindBool:
			return jen.Qual(rt, "AppendBool").Call(cur, x)
		case KindText:
			return jen.Qual(rt, "AppendBytes").Call(cur, x)
		case KindUnion:
			return jen.Id(recv).Dot(r.Appenders[f.T.(*types.TypeParam)]).Call(cur, x)
		case KindHash:
			return jen.Qual(rt, "AppendHash").Call(cur, x)
		case KindHashString:
			return jen.Qual(rt, "AppendHashString").Call(cur, x)
		}
		return jen.Qual(rt, "AppendString").Call(cur, x)
	}
	var body []jen.Code
	short := len(kf.Forms) <= 2
	cur := jen.Id(b)
	i := 0
	for _, s := range kf.Tmpl.Segs {
		var next *jen.Statement
		if s.Val == nil {
			if short {
				next = jen.Append(cur, jen.Lit(s.Lit).Op("..."))
			} else {
				next = jen.Append(jen.Id(b), jen.Lit(s.Lit).Op("..."))
			}
		} else {
			if short {
				next = appendPart(cur, kf.Forms[i], kf.Params[i+1])
			} else {
				next = appendPart(jen.Id(b), kf.Forms[i], kf.Params[i+1])
			}
			i++
		}
		if short {
			cur = next
		} else {
			body = append(body, jen.Id(b).Op("=").Add(next))
		}
	}
	if short {
		body = append(body, jen.Return(cur))
	} else {
		body = append(body, jen.Return(jen.Id(b)))
	}
	var users []string
	for _, m := range r.Methods {
		uses := m.Key != nil && m.Key.Func == kf
		for _, t := range m.Evict {
			uses = uses || t.Func == kf
		}
		if uses {
			users = append(users, m.Name)
		}
	}
	if ks := kf.Space; ks.Get.Key.Func == kf && ks.Get.Batch == nil {
		users = append(users, "Invalidate"+ks.Get.Name)
	}
	jf.Commentf("%s appends a key of %q after the keyspace's prefix, for %s.", kf.Name, kf.Space.Norm, andList(users))
	rcv := jen.Op("*").Add(g.structType(r))
	if kf.usesRecv() {
		rcv = jen.Id(recv).Add(rcv)
	}
	jf.Func().Params(rcv).Id(kf.Name).Params(params...).Index().Byte().Block(body...)
}

// andList joins names as "a", "a and b", "a, b and c".
func andList(names []string) string {
	switch len(names) {
	case 0:
		return "none"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// tag renders a tag string: a literal, or string(...appended values...).
func (g *renderer) tag(t *Tmpl, sc *scope, pre *[]jen.Code) *jen.Statement {
	if t.Static() {
		return jen.Lit(t.Text)
	}
	return jen.String().Call(g.build(g.bufStart(), t, sc, pre))
}

// tagList renders the tags of one []string literal. Two or more tags built
// from values each get a local first: Go leaves the order of string(...)
// conversions and the appends around them unspecified within one
// expression, so tags sharing buf would overwrite each other.
func (g *renderer) tagList(ts []*Tmpl, sc *scope, pre *[]jen.Code) []jen.Code {
	dynamic := 0
	for _, t := range ts {
		if !t.Static() {
			dynamic++
		}
	}
	var list []jen.Code
	for _, t := range ts {
		e := g.tag(t, sc, pre)
		if dynamic > 1 && !t.Static() {
			name := sc.ns.numbered(g.l("tags"), 0)
			*pre = append(*pre, jen.Id(name).Op(":=").Add(e))
			e = jen.Id(name)
		}
		list = append(list, e)
	}
	return list
}

type check struct {
	v *Value
	n int
}

type text struct {
	v        *Value
	txt, err string
}

// prepare lists the nil checks and MarshalText calls the values need, in
// order and without repeats, and names the texts.
func (g *renderer) prepare(vals []*Value, sc *scope) ([]check, []text) {
	var checks []check
	var texts []text
	seen := map[string]bool{}
	for _, v := range vals {
		for _, n := range v.NilChecks {
			k := g.pathKey(v, n, sc)
			if !seen[k] {
				seen[k] = true
				checks = append(checks, check{v, n})
			}
		}
	}
	for _, v := range vals {
		if v.Kind != KindText {
			continue
		}
		k := g.pathKey(v, len(v.Fields), sc)
		if _, ok := sc.txt[k]; ok {
			continue
		}
		txt, err := sc.ns.pair("txt", "err", 0)
		sc.txt[k] = txt
		texts = append(texts, text{v, txt, err})
	}
	return checks, texts
}

// bailGuards renders the checks as early exits: bail("") for a nil hop,
// bail(errN) for a MarshalText error.
func (g *renderer) bailGuards(vals []*Value, sc *scope, bail func(errName string) []jen.Code) []jen.Code {
	checks, texts := g.prepare(vals, sc)
	var out []jen.Code
	if len(checks) > 0 {
		cond := jen.Null()
		for i, c := range checks {
			if i > 0 {
				cond.Op("||")
			}
			cond.Add(g.expr(c.v, c.n, sc).Op("==").Nil())
		}
		out = append(out, jen.If(cond).Block(bail("")...))
	}
	for _, t := range texts {
		out = append(out,
			jen.List(jen.Id(t.txt), jen.Id(t.err)).Op(":=").Add(g.expr(t.v, len(t.v.Fields), sc)).Dot("MarshalText").Call(),
			jen.If(jen.Id(t.err).Op("!=").Nil()).Block(bail(t.err)...))
	}
	return out
}

// guardKey describes the nil checks the values need, in order, or "" when
// they need none or a MarshalText (whose failure must skip only its own
// statement): values with the same key can share one guard.
func (g *renderer) guardKey(vals []*Value, sc *scope) string {
	var keys []string
	seen := map[string]bool{}
	for _, v := range vals {
		if v.Kind == KindText {
			return ""
		}
		for _, n := range v.NilChecks {
			k := g.pathKey(v, n, sc)
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	return strings.Join(keys, " && ")
}

// skipGuards wraps body so it runs only when every value can be computed.
func (g *renderer) skipGuards(vals []*Value, sc *scope, body func() []jen.Code) []jen.Code {
	// Texts marshalled here live in the if statements below only.
	outer := sc.txt
	sc.txt = map[string]string{}
	for k, v := range outer {
		sc.txt[k] = v
	}
	defer func() { sc.txt = outer }()
	checks, texts := g.prepare(vals, sc)
	stmts := body()
	for i := len(texts) - 1; i >= 0; i-- {
		t := texts[i]
		stmts = []jen.Code{jen.If(
			jen.List(jen.Id(t.txt), jen.Id(t.err)).Op(":=").Add(g.expr(t.v, len(t.v.Fields), sc)).Dot("MarshalText").Call(),
			jen.Id(t.err).Op("==").Nil(),
		).Block(stmts...)}
	}
	if len(checks) > 0 {
		cond := jen.Null()
		for i, c := range checks {
			if i > 0 {
				cond.Op("&&")
			}
			cond.Add(g.expr(c.v, c.n, sc).Op("!=").Nil())
		}
		stmts = []jen.Code{jen.If(cond).Block(stmts...)}
	}
	return stmts
}

func (g *renderer) params(m *Method) []jen.Code {
	var out []jen.Code
	for _, p := range m.Params {
		out = append(out, g.param(p))
	}
	return out
}

func (g *renderer) param(p *Param) jen.Code {
	if p.Variadic {
		return jen.Id(p.Name).Op("...").Add(g.typ(p.Type.(*types.Slice).Elem()))
	}
	return jen.Id(p.Name).Add(g.typ(p.Type))
}

func (g *renderer) results(m *Method) jen.Code {
	var out []jen.Code
	for _, t := range m.Results {
		out = append(out, g.typ(t))
	}
	return resultList(out)
}

// callNext renders r.next.M(args...).
func (g *renderer) callNext(recv string, m *Method) *jen.Statement {
	var args []jen.Code
	for _, p := range m.Params {
		a := jen.Id(p.Name)
		if p.Variadic {
			a.Op("...")
		}
		args = append(args, a)
	}
	return jen.Id(recv).Dot(g.r.Fields.Next).Dot(m.Name).Call(args...)
}

func (g *renderer) method(jf *jen.File, r *Repo, recv string, m *Method) {
	var body []jen.Code
	switch m.Verb {
	case "get":
		if m.Batch != nil {
			jf.Commentf("%s serves %q from the cache for every id in one round trip, and loads the ids it misses from next in one call; ids next does not return are cached as not found and left out of the map.", m.Name, m.Key.Text)
			body = g.batchGet(recv, m)
			break
		}
		jf.Commentf("%s serves %q from the cache, loading from next on a miss.", m.Name, m.Key.Text)
		body = g.get(recv, m)
	case "put":
		jf.Commentf("%s writes through next, then caches the stored value at %q.", m.Name, m.Key.Text)
		body = g.put(recv, m)
	case "evict":
		jf.Commentf("%s calls next, then invalidates even when next fails (a failed write may still have changed the source).", m.Name)
		body = g.evict(recv, m)
	default:
		jf.Commentf("%s calls next directly.", m.Name)
		call := g.callNext(recv, m)
		if len(m.Results) > 0 {
			body = []jen.Code{jen.Return(call)}
		} else {
			body = []jen.Code{call}
		}
	}
	jf.Func().Params(jen.Id(recv).Op("*").Add(g.structType(r))).Id(m.Name).
		Params(g.params(m)...).Add(g.results(m)).Block(body...)
}

func (g *renderer) get(recv string, m *Method) []jen.Code {
	ks := m.Space
	ctx, buf := g.l("ctx"), g.l("buf")
	sc := newScope("", m.names)
	var paramTags, resultTags []*Tmpl
	vals := m.Key.Values()
	for _, t := range m.Tags {
		if t.usesResult() {
			resultTags = append(resultTags, t)
		} else {
			paramTags = append(paramTags, t)
			vals = append(vals, t.Values()...)
		}
	}
	passThrough := func(string) []jen.Code {
		return []jen.Code{
			jen.Id(recv).Dot(ks.Field).Dot("Bypass").Call(),
			jen.Return(g.callNext(recv, m)),
		}
	}
	body := g.bailGuards(vals, sc, passThrough)
	rd := g.l("rd")
	body = append(body, jen.Var().Id(buf).Index(jen.Lit(128)).Byte())
	// The key stays in buf: an L1 hit reads it there (LookupBytes makes the
	// key string only when Redis is asked).
	space := jen.Id(recv).Dot(ks.Field)
	keyBytes := g.keyCall(jen.Id(recv), m.Key, sc, space.Clone().Dot("AppendPrefix").Call(g.bufStart()))
	body = append(body,
		jen.Id(rd).Op(":=").Qual(rt, "LookupBytes").Call(jen.Id(ctx), space.Clone(), keyBytes),
		// A hit with work for later (a due reload, a WithVerify sample) goes
		// on to Load, which returns it at once and does that work in the
		// background: the Loader is built only then, so a plain hit
		// allocates nothing for it.
		jen.If(jen.Id(rd).Dot("Hit").Op("&&").Op("!").Id(rd).Dot("Background")).Block(jen.Return(g.spread(m, jen.Id(rd).Dot("Value"), jen.Id(rd).Dot("Err"))...)),
	)
	T := ks.Result
	load := []jen.Code{jen.Return(g.callNext(recv, m))}
	if m.Tuple != nil {
		// v0, v1, err := r.next.M(...); return tuple{R0: v0, R1: v1}, err
		var names, vals []jen.Code
		for i := 0; i < m.Tuple.NumFields(); i++ {
			n := m.names.numbered(g.l("v"), i)
			names = append(names, jen.Id(n))
			vals = append(vals, field(m.Tuple.Field(i).Name(), jen.Id(n)))
		}
		load = []jen.Code{
			jen.List(append(names, jen.Id(g.l("err")))...).Op(":=").Add(g.callNext(recv, m)),
			jen.Return(g.typ(T).Values(vals...), jen.Id(g.l("err"))),
		}
	}
	loader := []jen.Code{
		field("Load", jen.Func().Params(jen.Id(ctx).Qual(ctxPkg, "Context")).Params(g.typ(T), jen.Error()).
			Block(load...)),
	}
	if len(paramTags) > 0 {
		tags := g.tagList(paramTags, sc, &body)
		loader = append(loader, field("Tags", jen.Index().String().Values(tags...)))
	}
	if len(resultTags) > 0 {
		loader = append(loader, field("ResultTags", g.resultTagsFunc(T, resultTags, m.names)))
	}
	call := jen.Qual(rt, "Load").Call(
		jen.Id(ctx), jen.Id(rd),
		jen.Qual(rt, "Loader").Types(g.typ(T)).Add(multi(loader...)),
	)
	if m.Tuple == nil {
		return append(body, jen.Return(call))
	}
	v, err := g.l("res"), g.l("err")
	return append(body,
		jen.List(jen.Id(v), jen.Id(err)).Op(":=").Add(call),
		jen.Return(g.spread(m, jen.Id(v), jen.Id(err))...))
}

// spread renders the results of a get from its entry value and error: the
// value itself, or each field of a tuple.
func (g *renderer) spread(m *Method, v, err *jen.Statement) []jen.Code {
	if m.Tuple == nil {
		return []jen.Code{v, err}
	}
	var out []jen.Code
	for i := 0; i < m.Tuple.NumFields(); i++ {
		out = append(out, v.Clone().Dot(m.Tuple.Field(i).Name()))
	}
	return append(out, err)
}

// resultTagsFunc renders the ResultTags function of a loader: the tags taken
// from a positive result of type T (false: a nil hop, the result is not
// stored). Its numbered locals come from the method's scope ns.
func (g *renderer) resultTagsFunc(T types.Type, resultTags []*Tmpl, ns *names) *jen.Statement {
	v := g.l("v")
	rsc := newScope(v, ns)
	var rvals []*Value
	for _, t := range resultTags {
		rvals = append(rvals, t.Values()...)
	}
	fn := g.bailGuards(rvals, rsc, func(string) []jen.Code { return []jen.Code{jen.Return(jen.Nil(), jen.False())} })
	fn = append(fn, jen.Var().Id(g.l("buf")).Index(jen.Lit(64)).Byte())
	tags := g.tagList(resultTags, rsc, &fn)
	fn = append(fn, jen.Return(jen.Index().String().Values(tags...), jen.True()))
	return jen.Func().Params(jen.Id(v).Add(g.typ(T))).Params(jen.Index().String(), jen.Bool()).Block(fn...)
}

// invalidation declares inv with the static tags and groups, and returns the
// statements that add the keys and tags computed from parameters.
func (g *renderer) invalidation(recv string, m *Method, sc *scope) (decl jen.Code, items []jen.Code) {
	inv := g.l("inv")
	var static, groups []jen.Code
	for _, t := range m.Tags {
		if t.Static() {
			static = append(static, jen.Lit(t.Text))
		}
	}
	for _, ks := range m.Groups {
		groups = append(groups, jen.Id(recv).Dot(ks.Field).Dot("Group").Call())
	}
	var fields []jen.Code
	if len(static) > 0 {
		fields = append(fields, field("Tags", jen.Index().String().Values(static...)))
	}
	if len(groups) > 0 {
		fields = append(fields, field("Groups", jen.Index().Qual(rt, "Group").Values(groups...)))
	}
	if len(fields) > 0 {
		decl = jen.Id(inv).Op(":=").Qual(rt, "Invalidation").Values(fields...)
	} else {
		decl = jen.Var().Id(inv).Qual(rt, "Invalidation")
	}
	// Each key and tag is added only when its values can be computed;
	// consecutive ones behind the same nil checks share one if.
	type item struct {
		vals []*Value
		body func() []jen.Code
	}
	var list []item
	for _, t := range m.Evict {
		list = append(list, item{t.Values(), func() []jen.Code {
			return []jen.Code{jen.Id(inv).Dot("Keys").Op("=").Append(jen.Id(inv).Dot("Keys"), g.key(recv, t, sc))}
		}})
	}
	for _, t := range m.Tags {
		if t.Static() {
			continue
		}
		list = append(list, item{t.Values(), func() []jen.Code {
			var pre []jen.Code
			tag := g.tag(t, sc, &pre)
			return append(pre, jen.Id(inv).Dot("Tags").Op("=").Append(jen.Id(inv).Dot("Tags"), tag))
		}})
	}
	for i := 0; i < len(list); {
		j, key := i+1, g.guardKey(list[i].vals, sc)
		for key != "" && j < len(list) && g.guardKey(list[j].vals, sc) == key {
			j++
		}
		group := list[i:j]
		var vals []*Value
		for _, it := range group {
			vals = append(vals, it.vals...)
		}
		items = append(items, g.skipGuards(vals, sc, func() []jen.Code {
			var out []jen.Code
			for _, it := range group {
				out = append(out, it.body()...)
			}
			return out
		})...)
		i = j
	}
	return decl, items
}

func (g *renderer) invalidate(recv string) jen.Code {
	via := g.r.Fields.Cache
	if len(g.r.TypeParams) > 0 {
		via = g.r.Fields.Repo // the instantiation's own tags
	}
	return jen.Id("_").Op("=").Id(recv).Dot(via).Dot("Invalidate").Call(jen.Id(g.l("ctx")), jen.Id(g.l("inv")))
}

func (g *renderer) put(recv string, m *Method) []jen.Code {
	ctx, res, err, buf, inv := g.l("ctx"), g.l("res"), g.l("err"), g.l("buf"), g.l("inv")
	hasResult := len(m.Results) == 2
	sc := newScope(res, m.names)
	var body []jen.Code
	var ret func(e jen.Code) jen.Code
	if hasResult {
		body = append(body, jen.List(jen.Id(res), jen.Id(err)).Op(":=").Add(g.callNext(recv, m)))
		ret = func(e jen.Code) jen.Code { return jen.Return(jen.Id(res), e) }
	} else {
		body = append(body, jen.Id(err).Op(":=").Add(g.callNext(recv, m)))
		ret = func(e jen.Code) jen.Code { return jen.Return(e) }
	}
	body = append(body, jen.Var().Id(buf).Index(jen.Lit(128)).Byte())
	decl, items := g.invalidation(recv, m, sc)
	body = append(body, decl)
	body = append(body, items...)
	// On error the write may or may not have happened: drop the key too,
	// when the parameters alone name it.
	failed := []jen.Code{}
	if !m.Key.usesResult() {
		failed = append(failed, g.skipGuards(m.Key.Values(), sc, func() []jen.Code {
			return []jen.Code{jen.Id(inv).Dot("Keys").Op("=").Append(jen.Id(inv).Dot("Keys"), g.key(recv, m.Key, sc))}
		})...)
	}
	failed = append(failed, g.invalidate(recv), ret(jen.Id(err)))
	body = append(body, jen.If(jen.Id(err).Op("!=").Nil()).Block(failed...))

	vals := m.Key.Values()
	for _, t := range m.EntryTags {
		vals = append(vals, t.Values()...)
	}
	body = append(body, g.bailGuards(vals, sc, func(string) []jen.Code {
		return []jen.Code{jen.Id(recv).Dot(m.Space.Field).Dot("Bypass").Call(), g.invalidate(recv), ret(jen.Nil())}
	})...)
	key := g.l("key")
	body = append(body, jen.Id(key).Op(":=").Add(g.key(recv, m.Key, sc)))
	tags := jen.Nil()
	if len(m.EntryTags) > 0 {
		list := g.tagList(m.EntryTags, sc, &body)
		body = append(body, jen.Id(g.l("tags")).Op(":=").Index().String().Values(list...))
		tags = jen.Id(g.l("tags"))
	}
	stored := jen.Id(res)
	if m.Store != nil {
		stored = jen.Id(m.Store.Name)
	}
	body = append(body,
		jen.Qual(rt, "Put").Call(jen.Id(ctx), jen.Id(recv).Dot(m.Space.Field), jen.Id(key), stored, tags, jen.Id(inv)),
		ret(jen.Nil()))
	return body
}

func (g *renderer) evict(recv string, m *Method) []jen.Code {
	err := g.l("err")
	var names []jen.Code
	for i := 0; i < len(m.Results)-1; i++ {
		if len(m.Results) == 2 {
			names = append(names, jen.Id(g.l("res")))
		} else {
			names = append(names, jen.Id(m.names.numbered("res", i)))
		}
	}
	names = append(names, jen.Id(err))
	sc := newScope("", m.names)
	body := []jen.Code{jen.List(names...).Op(":=").Add(g.callNext(recv, m))}
	if len(m.Evict) > 0 || hasDynamic(m.Tags) {
		body = append(body, jen.Var().Id(g.l("buf")).Index(jen.Lit(128)).Byte())
	}
	decl, items := g.invalidation(recv, m, sc)
	body = append(body, decl)
	body = append(body, items...)
	body = append(body, g.invalidate(recv), jen.Return(names...))
	return body
}

func hasDynamic(ts []*Tmpl) bool {
	for _, t := range ts {
		if !t.Static() {
			return true
		}
	}
	return false
}

// invalidateGet renders Invalidate<Get>(ctx, key params): event-driven
// invalidation of one entry from outside.
func (g *renderer) invalidateGet(jf *jen.File, r *Repo, recv string, m *Method) {
	ctx := g.l("ctx")
	params := []jen.Code{jen.Id(ctx).Qual(ctxPkg, "Context")}
	for _, p := range m.KeyParams {
		params = append(params, g.param(p))
	}
	sc := newScope("", newNames(m.names))
	body := g.bailGuards(m.Key.Values(), sc, func(errName string) []jen.Code {
		if errName == "" {
			return []jen.Code{jen.Return(jen.Nil())}
		}
		return []jen.Code{jen.Return(jen.Id(errName))}
	})
	body = append(body, jen.Var().Id(g.l("buf")).Index(jen.Lit(128)).Byte())
	k := g.key(recv, m.Key, sc)
	body = append(body,
		jen.Return(jen.Id(recv).Dot(g.r.Fields.Cache).Dot("Invalidate").Call(jen.Id(ctx),
			jen.Qual(rt, "Invalidation").Values(field("Keys", jen.Index().Qual(rt, "Key").Values(k))))))
	jf.Commentf("Invalidate%s drops the entry %s caches for these arguments, for writes that bypass %s.", m.Name, m.Name, r.Struct())
	jf.Func().Params(jen.Id(recv).Op("*").Add(g.structType(r))).Id("Invalidate" + m.Name).
		Params(params...).Error().Block(body...)
}
