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
	jf.Commentf("%s returns a deep copy of a %s (Spec.Clone).", fn.Name, g.typeString(fn.Type))
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
	return jen.Qual(rt, "CloneCodec").Call(x)
}

// codecNote explains a copy through the codec in a comment.
func (g *renderer) codecNote(cp *Copy) []jen.Code {
	if cp == nil || cp.Func != nil {
		return nil
	}
	return []jen.Code{codecComment(cp)}
}

func codecComment(cp *Copy) *jen.Statement {
	return jen.Comment(cp.Codec + ": copied with runtime.CloneCodec (a msgpack round trip).")
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
