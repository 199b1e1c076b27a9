package gen

import (
	"crypto/sha256"
	"encoding/hex"
	"go/types"
	"reflect"
	"strconv"
	"strings"

	"golang.org/x/tools/go/types/typeutil"
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

// Codec methods: a type whose method set (or its pointer's) has one pair
// is encoded and decoded by its own methods, which msgpack calls; the
// generator then looks no deeper into it.
var codecPairs = [][2]string{
	{"EncodeMsgpack", "DecodeMsgpack"},     // msgpack.CustomEncoder/CustomDecoder
	{"MarshalMsgpack", "UnmarshalMsgpack"}, // msgpack.Marshaler/Unmarshaler
	{"MarshalBinary", "UnmarshalBinary"},   // encoding.BinaryMarshaler/Unmarshaler
	{"MarshalText", "UnmarshalText"},       // encoding.TextMarshaler/Unmarshaler
}

// codecs memoizes hasCodec: method sets are costly and result types of a
// package share their named types.
type codecs struct{ m typeutil.Map }

func (c *codecs) has(t types.Type) bool {
	if v := c.m.At(t); v != nil {
		return v.(bool)
	}
	ok := hasCodec(t)
	c.m.Set(t, ok)
	return ok
}

// hasCodec reports whether t brings its own encoder and decoder.
func hasCodec(t types.Type) bool {
	ms := types.NewMethodSet(types.NewPointer(t))
	if _, isPtr := t.Underlying().(*types.Pointer); isPtr {
		ms = types.NewMethodSet(t)
	}
	for _, p := range codecPairs {
		if ms.Lookup(nil, p[0]) != nil && ms.Lookup(nil, p[1]) != nil {
			return true
		}
	}
	return false
}

// roundTrip lists the parts of t that a msgpack round trip would not give
// back, each with the path of fields that reaches it from root ("result",
// "result.Meta.Body"): non-empty interfaces (a decode cannot know the
// concrete type), channels, functions, complex numbers, unsafe pointers,
// and unexported struct fields (dropped silently) unless tagged
// `msgpack:"-"`. Types with their own codec methods are taken as they are;
// empty interfaces decode to msgpack's generic values (map[string]any,
// []any, …). Type parameters are only known at run time and pass.
func roundTrip(t types.Type, root string, c *codecs) []string {
	var bad []string
	seen := map[*types.Named]bool{}
	var walk func(t types.Type, path string)
	walk = func(t types.Type, path string) {
		if n, ok := types.Unalias(t).(*types.Named); ok {
			if seen[n] {
				return
			}
			seen[n] = true
			defer delete(seen, n)
			if c.has(n) {
				return
			}
		}
		switch u := types.Unalias(t).Underlying().(type) {
		case *types.Basic:
			switch {
			case u.Info()&types.IsComplex != 0:
				bad = append(bad, path+" is "+u.Name()+", which msgpack cannot encode")
			case u.Kind() == types.UnsafePointer:
				bad = append(bad, path+" is an unsafe.Pointer, which msgpack cannot encode")
			}
		case *types.Pointer:
			walk(u.Elem(), path)
		case *types.Slice:
			walk(u.Elem(), path+"[i]")
		case *types.Array:
			walk(u.Elem(), path+"[i]")
		case *types.Map:
			if holdsTime(u.Key()) {
				bad = append(bad, path+" is keyed by a type holding a time.Time: a decoded key is the same instant in another location, which is another map key; key it by t.Unix() or a string")
			}
			walk(u.Key(), path+" (key)")
			walk(u.Elem(), path+"[k]")
		case *types.Chan:
			bad = append(bad, path+" is a channel, which msgpack cannot encode")
		case *types.Signature:
			bad = append(bad, path+" is a func, which msgpack cannot encode")
		case *types.Interface:
			if _, isTP := types.Unalias(t).(*types.TypeParam); isTP {
				return
			}
			if !u.Empty() {
				bad = append(bad, path+" is the interface "+types.TypeString(t, (*types.Package).Name)+", which a decode cannot fill (it does not know the concrete type): cache a concrete type, or wrap it in a type with EncodeMsgpack/DecodeMsgpack")
			}
		case *types.Struct:
			for i := 0; i < u.NumFields(); i++ {
				f := u.Field(i)
				tag := reflect.StructTag(u.Tag(i)).Get("msgpack")
				if name, _, _ := strings.Cut(tag, ","); name == "-" {
					continue
				}
				p := path + "." + f.Name()
				if _, isPtr := f.Type().Underlying().(*types.Pointer); isPtr && f.Embedded() && !f.Exported() {
					bad = append(bad, p+" is an embedded pointer to an unexported type, which a decode cannot allocate: embed the value, or give the type EncodeMsgpack/DecodeMsgpack")
					continue
				}
				if _, isPtr := f.Type().Underlying().(*types.Pointer); isPtr && f.Embedded() && !c.has(f.Type()) {
					bad = append(bad, p+" is an embedded pointer: msgpack inlines its fields, so a nil one comes back allocated: embed the value or make it a named field")
					continue
				}
				if _, opts, _ := strings.Cut(tag, ","); hasOpt(opts, "omitempty") {
					switch f.Type().Underlying().(type) {
					case *types.Slice, *types.Map:
						bad = append(bad, p+" is tagged omitempty, so an empty one is not stored and comes back nil: drop omitempty, or tag it `msgpack:\"-\"`")
						continue
					}
				}
				if !f.Exported() && !f.Embedded() {
					bad = append(bad, p+" is unexported, so a round trip leaves it empty: tag it `msgpack:\"-\"` if that is meant, export it, or give the type EncodeMsgpack/DecodeMsgpack")
					continue
				}
				walk(f.Type(), p)
			}
		}
	}
	walk(t, root)
	return bad
}

// shape predicts runtime.SchemaOf[T]() for t: the same description of the
// type reflect gives the runtime (named types as path.Name=, kinds, fields
// and tags, repeats as @n), hashed the same way. The runtime compares the
// two once per keyspace, so a result type changed without regenerating is
// caught at construction. ok is false where reflect would name a type in a
// way the generator does not reproduce (instantiated generic types, types
// local to a function); the check is then skipped.
func shape(t types.Type) (hash string, ok bool) {
	var b strings.Builder
	ok = true
	seen := map[string]int{}
	var walk func(t types.Type)
	walk = func(t types.Type) {
		t = types.Unalias(t)
		var kindOf types.Type = t
		if n, isNamed := t.(*types.Named); isNamed {
			if n.TypeArgs().Len() > 0 || n.Obj().Pkg() != nil && n.Obj().Parent() != n.Obj().Pkg().Scope() {
				ok = false
				return
			}
			path := ""
			if p := n.Obj().Pkg(); p != nil {
				path = p.Path()
				if p.Name() == "main" {
					path = "main"
				}
			}
			id := path + "." + n.Obj().Name()
			if i, dup := seen[id]; dup {
				b.WriteString("@" + strconv.Itoa(i))
				return
			}
			seen[id] = len(seen)
			b.WriteString(id + "=")
			kindOf = n.Underlying()
		} else if bt, isBasic := t.(*types.Basic); isBasic {
			// Predeclared types are named for reflect: ".int=int".
			name := reflectKind(bt)
			id := "." + name
			if bt.Kind() == types.UnsafePointer {
				id = "unsafe.Pointer"
			}
			if i, dup := seen[id]; dup {
				b.WriteString("@" + strconv.Itoa(i))
				return
			}
			seen[id] = len(seen)
			b.WriteString(id + "=" + name)
			return
		}
		switch u := kindOf.(type) {
		case *types.Basic:
			b.WriteString(reflectKind(u))
		case *types.Pointer:
			b.WriteString("ptr(")
			walk(u.Elem())
			b.WriteByte(')')
		case *types.Slice:
			b.WriteString("slice(")
			walk(u.Elem())
			b.WriteByte(')')
		case *types.Array:
			b.WriteString("array[" + strconv.FormatInt(u.Len(), 10) + "](")
			walk(u.Elem())
			b.WriteByte(')')
		case *types.Map:
			b.WriteString("map(")
			walk(u.Key())
			b.WriteByte(',')
			walk(u.Elem())
			b.WriteByte(')')
		case *types.Struct:
			b.WriteString("struct{")
			for i := 0; i < u.NumFields(); i++ {
				f := u.Field(i)
				b.WriteString(f.Name() + " ")
				walk(f.Type())
				b.WriteString(" " + strconv.Quote(u.Tag(i)) + ";")
			}
			b.WriteByte('}')
		case *types.Interface:
			b.WriteString("interface")
		case *types.Chan:
			b.WriteString("chan")
		case *types.Signature:
			b.WriteString("func")
		default:
			ok = false
		}
	}
	walk(t)
	if !ok {
		return "", false
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8]), true
}

// reflectKind is reflect.Kind.String() of a basic type.
func reflectKind(bt *types.Basic) string {
	switch bt.Kind() {
	case types.UnsafePointer:
		return "unsafe.Pointer"
	case types.Byte:
		return "uint8"
	case types.Rune:
		return "int32"
	}
	return bt.Name()
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// holdsTime reports whether a value of t can hold a time.Time in its
// encoded fields.
func holdsTime(t types.Type) bool {
	seen := map[types.Type]bool{}
	var walk func(t types.Type) bool
	walk = func(t types.Type) bool {
		t = types.Unalias(t)
		if isTime(t) {
			return true
		}
		if seen[t] {
			return false
		}
		seen[t] = true
		switch u := t.Underlying().(type) {
		case *types.Pointer:
			return walk(u.Elem())
		case *types.Array:
			return walk(u.Elem())
		case *types.Struct:
			for i := 0; i < u.NumFields(); i++ {
				if walk(u.Field(i).Type()) {
					return true
				}
			}
		}
		return false
	}
	return walk(t)
}
