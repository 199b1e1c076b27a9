package gen

import (
	"crypto/sha256"
	"encoding/hex"
	"go/types"
	"strconv"
	"strings"
)

// schema hashes the shape of a cached type: every field name, type and
// struct tag, recursively, and which encoding methods a type has. The
// runtime mixes it into the keyspace, so a changed type never decodes bytes
// written by the old one. bad is non-empty when the type cannot be cached.
func schema(t types.Type) (hash, bad string) {
	w := &schemaWriter{seen: map[string]bool{}}
	w.b.WriteString("cachegen schema 1\n")
	w.typ(t)
	sum := sha256.Sum256([]byte(w.b.String()))
	return hex.EncodeToString(sum[:8]), w.bad
}

type schemaWriter struct {
	b    strings.Builder
	seen map[string]bool // named types already described (cycles)
	bad  string
}

// encoders are the methods that change how msgpack encodes a type.
var encoders = []string{"EncodeMsgpack", "DecodeMsgpack", "MarshalMsgpack", "UnmarshalMsgpack", "MarshalBinary", "UnmarshalBinary", "MarshalText", "UnmarshalText"}

func (w *schemaWriter) typ(t types.Type) {
	switch t := t.(type) {
	case *types.Alias:
		w.typ(types.Unalias(t))
	case *types.Basic:
		if t.Kind() == types.Invalid {
			w.bad = "its type has errors"
		}
		w.b.WriteString(t.Name())
	case *types.Named:
		name := types.TypeString(t, func(p *types.Package) string { return p.Path() })
		w.b.WriteString("named " + strconv.Quote(name))
		if w.seen[name] || t.Obj().Pkg() == nil {
			return
		}
		w.seen[name] = true
		ms := types.NewMethodSet(types.NewPointer(t))
		for _, m := range encoders {
			if ms.Lookup(t.Obj().Pkg(), m) != nil {
				w.b.WriteString(" method " + m)
			}
		}
		w.b.WriteString(" = ")
		w.typ(t.Underlying())
	case *types.Pointer:
		w.b.WriteString("*")
		w.typ(t.Elem())
	case *types.Slice:
		w.b.WriteString("[]")
		w.typ(t.Elem())
	case *types.Array:
		w.b.WriteString("[" + strconv.FormatInt(t.Len(), 10) + "]")
		w.typ(t.Elem())
	case *types.Map:
		w.b.WriteString("map[")
		w.typ(t.Key())
		w.b.WriteString("]")
		w.typ(t.Elem())
	case *types.Struct:
		w.b.WriteString("struct{")
		for i := 0; i < t.NumFields(); i++ {
			f := t.Field(i)
			w.b.WriteString(strconv.Quote(f.Name()))
			if f.Embedded() {
				w.b.WriteString(" embedded")
			}
			w.b.WriteString(" ")
			w.typ(f.Type())
			w.b.WriteString(" " + strconv.Quote(t.Tag(i)) + ";")
		}
		w.b.WriteString("}")
	case *types.Interface:
		w.b.WriteString("interface")
	case *types.Chan, *types.Signature:
		w.b.WriteString(t.String())
	case *types.TypeParam:
		w.b.WriteString("typeparam " + t.Obj().Name())
	default:
		w.b.WriteString(t.String())
	}
}
