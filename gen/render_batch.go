package gen

import (
	"github.com/dave/jennifer/jen"
)

// batchType renders runtime.Batch[K, V] of a batch read.
func (g *renderer) batchType(m *Method) *jen.Statement {
	return jen.Qual(rt, "Batch").Types(g.typ(m.Batch.Elem.Type), g.typ(m.Batch.Value))
}

// batchGet renders the body of a batch read: the runtime does it all.
func (g *renderer) batchGet(recv string, m *Method) []jen.Code {
	return []jen.Code{jen.Return(jen.Qual(rt, "GetMany").Call(
		jen.Id(g.l("ctx")), jen.Id(recv).Dot(m.Space.Field), jen.Id(m.Batch.Slice.Name),
		jen.Id(recv).Dot("batch"+m.Name).Call()))}
}

// batchMethods renders Warm<M>, batch<M> (how the runtime spells, loads and
// tags one id) and, when m is the keyspace's first get, Invalidate<M>.
func (g *renderer) batchMethods(jf *jen.File, r *Repo, recv string, m *Method) {
	bt := m.Batch
	ctx, ids, opts := g.l("ctx"), bt.Slice.Name, bt.Opts
	space := jen.Id(recv).Dot(m.Space.Field)

	jf.Commentf("Warm%s loads ids into the cache ahead of reads, in chunks through the same leases as %s (instances warming at once load each id once), and returns when they are stored.", m.Name, m.Name)
	jf.Func().Params(jen.Id(recv).Op("*").Add(g.structType(r))).Id("Warm"+m.Name).
		Params(jen.Id(ctx).Qual(ctxPkg, "Context"), jen.Id(ids).Add(g.typ(bt.Slice.Type)), jen.Id(opts).Op("...").Qual(rt, "WarmOption")).Error().
		Block(jen.Return(jen.Qual(rt, "Warm").Call(jen.Id(ctx), space.Clone(), jen.Id(ids), jen.Id(recv).Dot("batch"+m.Name).Call(), jen.Id(opts).Op("..."))))

	// Key: the template after the keyspace prefix; nil when the id has none.
	id, b := bt.Elem.Name, g.l("b")
	sc := newScope("", m.names)
	nilRet := func(string) []jen.Code { return []jen.Code{jen.Return(jen.Nil())} }
	keyBody := g.bailGuards(m.Key.Values(), sc, nilRet)
	// A helper that reads no receiver is called on a nil one: capturing r
	// would allocate this closure on every batch read.
	kr := jen.Id(recv)
	if !m.Key.Func.usesRecv() {
		kr = jen.Parens(jen.Op("*").Add(g.structType(r))).Call(jen.Nil())
	}
	keyBody = append(keyBody, jen.Return(g.keyCall(kr, m.Key, sc, jen.Id(b))))
	items := []jen.Code{
		field("Key", jen.Func().Params(jen.Id(b).Index().Byte(), jen.Id(id).Add(g.typ(bt.Elem.Type))).Index().Byte().Block(keyBody...)),
	}
	next := jen.Id(ids)
	if bt.Slice.Variadic {
		next = jen.Id(ids).Op("...")
	}
	items = append(items, field("Load", jen.Func().
		Params(jen.Id(ctx).Qual(ctxPkg, "Context"), jen.Id(ids).Index().Add(g.typ(bt.Elem.Type))).
		Params(g.typ(bt.Map), jen.Error()).
		Block(jen.Return(jen.Id(recv).Dot(g.r.Fields.Next).Dot(m.Name).Call(jen.Id(ctx), next)))))
	var paramTags, resultTags []*Tmpl
	for _, t := range m.Tags {
		if t.usesResult() {
			resultTags = append(resultTags, t)
		} else {
			paramTags = append(paramTags, t)
		}
	}
	if len(paramTags) > 0 {
		tsc := newScope("", m.names)
		var vals []*Value
		for _, t := range paramTags {
			vals = append(vals, t.Values()...)
		}
		body := g.bailGuards(vals, tsc, nilRet)
		if hasDynamic(paramTags) {
			body = append(body, jen.Var().Id(g.l("buf")).Index(jen.Lit(64)).Byte())
		}
		tags := g.tagList(paramTags, tsc, &body)
		body = append(body, jen.Return(jen.Index().String().Values(tags...)))
		items = append(items, field("Tags", jen.Func().Params(jen.Id(id).Add(g.typ(bt.Elem.Type))).Index().String().Block(body...)))
	}
	if len(resultTags) > 0 {
		items = append(items, field("ResultTags", g.resultTagsFunc(bt.Value, resultTags, m.names)))
	}
	jf.Commentf("batch%s tells the runtime how %s spells, loads and tags one id.", m.Name, m.Name)
	jf.Func().Params(jen.Id(recv).Op("*").Add(g.structType(r))).Id("batch" + m.Name).Params().Add(g.batchType(m)).
		Block(jen.Return(g.batchType(m).Add(multi(items...))))

	if m.Space.Get == m {
		jf.Commentf("Invalidate%s drops the entries %s caches for these ids, for writes that bypass %s.", m.Name, m.Name, r.Struct())
		jf.Func().Params(jen.Id(recv).Op("*").Add(g.structType(r))).Id("Invalidate"+m.Name).
			Params(jen.Id(ctx).Qual(ctxPkg, "Context"), jen.Id(ids).Add(g.typ(bt.Slice.Type))).Error().
			Block(jen.Return(jen.Qual(rt, "InvalidateMany").Call(jen.Id(ctx), space.Clone(), jen.Id(ids), jen.Id(recv).Dot("batch"+m.Name).Call())))
	}
}
