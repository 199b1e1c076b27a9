package gen

import (
	"go/types"

	"github.com/dave/jennifer/jen"
)

// cloneFunc renders one deep-copy function. Slices and maps keep nil as
// nil and empty as empty (non-nil), as a decode does.
func (g *renderer) cloneFunc(jf *jen.File, fn *CloneFunc) {
	l := g.cloneVar
	v, out, i, k, e, c := l["v"], l["out"], l["i"], l["k"], l["e"], l["c"]
	ifNil := jen.If(jen.Id(v).Op("==").Nil()).Block(jen.Return(jen.Nil()))
	var body []jen.Code
	switch fn.Type.Underlying().(type) {
	case *types.Pointer:
		body = append(body, ifNil)
		body = append(body, g.codecNote(fn.Elem)...)
		body = append(body,
			jen.Id(c).Op(":=").Add(g.copyExpr(fn.Elem, jen.Op("*").Id(v))),
			jen.Return(jen.Op("&").Id(c)))
	case *types.Slice:
		body = append(body, ifNil, jen.Id(out).Op(":=").Make(g.typ(fn.Type), jen.Len(jen.Id(v))))
		if fn.Elem == nil {
			body = append(body, jen.Copy(jen.Id(out), jen.Id(v)))
		} else {
			body = append(body, g.codecNote(fn.Elem)...)
			body = append(body, jen.For(jen.List(jen.Id(i), jen.Id(e)).Op(":=").Range().Id(v)).Block(
				jen.Id(out).Index(jen.Id(i)).Op("=").Add(g.copyExpr(fn.Elem, jen.Id(e)))))
		}
		body = append(body, jen.Return(jen.Id(out)))
	case *types.Array:
		body = append(body, jen.Id(out).Op(":=").Id(v))
		body = append(body, g.codecNote(fn.Elem)...)
		body = append(body,
			jen.For(jen.Id(i).Op(":=").Range().Id(v)).Block(
				jen.Id(out).Index(jen.Id(i)).Op("=").Add(g.copyExpr(fn.Elem, jen.Id(v).Index(jen.Id(i))))),
			jen.Return(jen.Id(out)))
	case *types.Map:
		body = append(body, ifNil, jen.Id(out).Op(":=").Make(g.typ(fn.Type), jen.Len(jen.Id(v))))
		body = append(body, g.codecNote(fn.Key)...)
		body = append(body, g.codecNote(fn.Elem)...)
		body = append(body,
			jen.For(jen.List(jen.Id(k), jen.Id(e)).Op(":=").Range().Id(v)).Block(
				jen.Id(out).Index(g.copyExpr(fn.Key, jen.Id(k))).Op("=").Add(g.copyExpr(fn.Elem, jen.Id(e)))),
			jen.Return(jen.Id(out)))
	case *types.Struct:
		body = append(body, jen.Id(out).Op(":=").Id(v))
		for _, f := range fn.Fields {
			body = append(body, g.codecNote(f.Copy)...)
			body = append(body, jen.Id(out).Dot(f.Name).Op("=").Add(g.copyExpr(f.Copy, jen.Id(v).Dot(f.Name))))
		}
		body = append(body, jen.Return(jen.Id(out)))
	}
	switch fn.Type.Underlying().(type) {
	case *types.Slice, *types.Map:
		jf.Commentf("%s returns a deep copy of v: nil stays nil, empty stays empty.", fn.Name)
	default:
		jf.Commentf("%s returns a deep copy of v.", fn.Name)
	}
	jf.Func().Id(fn.Name).Params(jen.Id(v).Add(g.typ(fn.Type))).Add(g.typ(fn.Type)).Block(body...)
}

// copyExpr renders a deep copy of x.
func (g *renderer) copyExpr(cp *Copy, x *jen.Statement) *jen.Statement {
	switch {
	case cp == nil:
		return x
	case cp.Func != nil:
		return jen.Id(cp.Func.Name).Call(x)
	}
	return jen.Id(g.f.CloneCodec).Call(x)
}

// cloneCodec renders File.CloneCodec. It round-trips a pointer to the value:
// msgpack applies encoding methods with pointer receivers (big.Int's
// MarshalText, say) only to addressable values, and runtime.CloneCodec
// returns a value it could not encode as is, shared.
func (g *renderer) cloneCodec(jf *jen.File) {
	l := g.cloneVar
	v, c, zero := l["v"], l["c"], l["zero"]
	jf.Commentf("%s copies v with runtime.CloneCodec, a msgpack round trip, for the values the generator cannot copy field by field. It encodes a pointer to v, so that encoding methods with pointer receivers apply.", g.f.CloneCodec)
	jf.Func().Id(g.f.CloneCodec).Types(jen.Id("T").Any()).Params(jen.Id(v).Id("T")).Id("T").Block(
		jen.If(jen.Id(c).Op(":=").Qual(rt, "CloneCodec").Call(jen.Op("&").Id(v)), jen.Id(c).Op("!=").Nil()).Block(
			jen.Return(jen.Op("*").Id(c))),
		jen.Comment("msgpack nil: what a decode of it gives."),
		jen.Var().Id(zero).Id("T"),
		jen.Return(jen.Id(zero)),
	)
}

// codecNote explains a copy through the codec in a comment.
func (g *renderer) codecNote(cp *Copy) []jen.Code {
	if cp == nil || cp.Func != nil {
		return nil
	}
	return []jen.Code{codecComment(cp)}
}

func codecComment(cp *Copy) *jen.Statement {
	return jen.Comment(cp.Codec + ": copied through the codec (a msgpack round trip).")
}

// typeString writes t as the generated file would, for comments.
func (g *renderer) typeString(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string {
		if p == g.f.Pkg {
			return ""
		}
		return p.Name()
	})
}
