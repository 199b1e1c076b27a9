package gen

import (
	"crypto/sha256"
	"encoding/hex"
	"go/types"
	"reflect"
	"strconv"
	"strings"
)

// schema hashes the shape of a cached type: every field name, type and
// struct tag, recursively, and which encoding methods a type has. The
// runtime mixes it into the keyspace, so a changed type never decodes bytes
// written by the old one. bad is non-empty when the type cannot be cached.
func schema(n *tnode) (hash, bad string) {
	w := &schemaWriter{seen: map[string]bool{}}
	w.b.WriteString("cachegen schema 1\n")
	w.typ(n)
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

func (w *schemaWriter) typ(n *tnode) {
	n = n.unalias()
	switch n.Kind {
	case tBasic:
		if n.Basic.Kind() == types.Invalid {
			w.bad = "its type has errors"
		}
		w.b.WriteString(n.Basic.Name())
	case tNamed:
		name := types.TypeString(n.T, func(p *types.Package) string { return p.Path() })
		w.b.WriteString("named " + strconv.Quote(name))
		if w.seen[name] || n.Obj.Pkg() == nil {
			return
		}
		w.seen[name] = true
		for _, m := range n.encoders {
			w.b.WriteString(" method " + m)
		}
		w.b.WriteString(" = ")
		w.typ(n.Under)
	case tPointer:
		w.b.WriteString("*")
		w.typ(n.Elem)
	case tSlice:
		w.b.WriteString("[]")
		w.typ(n.Elem)
	case tArray:
		w.b.WriteString("[" + strconv.FormatInt(n.Len, 10) + "]")
		w.typ(n.Elem)
	case tMap:
		w.b.WriteString("map[")
		w.typ(n.Key)
		w.b.WriteString("]")
		w.typ(n.Elem)
	case tStruct:
		w.b.WriteString("struct{")
		for _, f := range n.Fields {
			w.b.WriteString(strconv.Quote(f.Obj.Name()))
			if f.Obj.(*types.Var).Embedded() {
				w.b.WriteString(" embedded")
			}
			w.b.WriteString(" ")
			w.typ(f.Type)
			w.b.WriteString(" " + strconv.Quote(f.Tag) + ";")
		}
		w.b.WriteString("}")
	case tInterface:
		w.b.WriteString("interface")
	case tTypeParam:
		w.b.WriteString("typeparam " + n.Obj.Name())
	default: // channels, functions
		w.b.WriteString(n.T.String())
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

// roundTrip lists the parts of t that a msgpack round trip would not give
// back, each with the path of fields that reaches it from root ("result",
// "result.Meta.Body"): non-empty interfaces (a decode cannot know the
// concrete type), channels, functions, complex numbers, unsafe pointers,
// and unexported struct fields (dropped silently) unless tagged
// `msgpack:"-"`. Types with their own codec methods are taken as they are;
// empty interfaces decode to msgpack's generic values (map[string]any,
// []any, …). Type parameters are only known at run time and pass.
func roundTrip(n *tnode, root string) []string {
	var bad []string
	seen := map[*tnode]bool{}
	var walk func(n *tnode, path string)
	walk = func(n *tnode, path string) {
		n = n.unalias()
		if n.Kind == tNamed {
			if seen[n] {
				return
			}
			seen[n] = true
			defer delete(seen, n)
			if n.codec {
				return
			}
		}
		if n.Kind == tTypeParam {
			return
		}
		switch u := n.under(); u.Kind {
		case tBasic:
			switch {
			case u.Basic.Info()&types.IsComplex != 0:
				bad = append(bad, path+" is "+u.Basic.Name()+", which msgpack cannot encode")
			case u.Basic.Kind() == types.UnsafePointer:
				bad = append(bad, path+" is an unsafe.Pointer, which msgpack cannot encode")
			}
		case tPointer:
			walk(u.Elem, path)
		case tSlice, tArray:
			walk(u.Elem, path+"[i]")
		case tMap:
			if u.Key.holdsTime() {
				bad = append(bad, path+" is keyed by a type holding a time.Time: a decoded key is the same instant in another location, which is another map key; key it by t.Unix() or a string")
			}
			walk(u.Key, path+" (key)")
			walk(u.Elem, path+"[k]")
		case tChan:
			bad = append(bad, path+" is a channel, which msgpack cannot encode")
		case tFunc:
			bad = append(bad, path+" is a func, which msgpack cannot encode")
		case tInterface:
			if !u.empty {
				bad = append(bad, path+" is the interface "+types.TypeString(n.T, (*types.Package).Name)+", which a decode cannot fill (it does not know the concrete type): cache a concrete type, or wrap it in a type with EncodeMsgpack/DecodeMsgpack")
			}
		case tStruct:
			for _, fl := range u.Fields {
				f := fl.Obj.(*types.Var)
				tag := reflect.StructTag(fl.Tag).Get("msgpack")
				if name, _, _ := strings.Cut(tag, ","); name == "-" {
					continue
				}
				p := path + "." + f.Name()
				if fl.Type.under().Kind == tPointer && f.Embedded() && !f.Exported() {
					bad = append(bad, p+" is an embedded pointer to an unexported type, which a decode cannot allocate: embed the value, or give the type EncodeMsgpack/DecodeMsgpack")
					continue
				}
				if fl.Type.under().Kind == tPointer && f.Embedded() && !fl.Type.hasCodec() {
					bad = append(bad, p+" is an embedded pointer: msgpack inlines its fields, so a nil one comes back allocated: embed the value or make it a named field")
					continue
				}
				if _, opts, _ := strings.Cut(tag, ","); hasOpt(opts, "omitempty") {
					switch fl.Type.under().Kind {
					case tSlice, tMap:
						bad = append(bad, p+" is tagged omitempty, so an empty one is not stored and comes back nil: drop omitempty, or tag it `msgpack:\"-\"`")
						continue
					}
				}
				if !f.Exported() && !f.Embedded() {
					bad = append(bad, p+" is unexported, so a round trip leaves it empty: tag it `msgpack:\"-\"` if that is meant, export it, or give the type EncodeMsgpack/DecodeMsgpack")
					continue
				}
				walk(fl.Type, p)
			}
		}
	}
	walk(n, root)
	return bad
}

// shape predicts runtime.SchemaOf[T]() for t: the same description of the
// type reflect gives the runtime (named types as path.Name=, kinds, fields
// and tags, repeats as @n), hashed the same way. The runtime compares the
// two once per keyspace, so a result type changed without regenerating is
// caught at construction. Instantiated generic types are named as reflect
// names them (Page[int], Pair[string,*example.com/m.User]: see typeArg).
// ok is false where reflect would name a type in a way the generator does
// not reproduce (types local to a function, and type arguments typeArg
// cannot spell); the check is then skipped.
func shape(n *tnode) (hash string, ok bool) {
	var b strings.Builder
	ok = true
	seen := map[string]int{}
	var walk func(n *tnode)
	walk = func(n *tnode) {
		n = n.unalias()
		kindOf := n
		switch n.Kind {
		case tNamed:
			id, named := reflectName(n)
			if !named {
				ok = false
				return
			}
			if i, dup := seen[id]; dup {
				b.WriteString("@" + strconv.Itoa(i))
				return
			}
			seen[id] = len(seen)
			b.WriteString(id + "=")
			kindOf = n.Under.unalias()
		case tBasic:
			// Predeclared types are named for reflect: ".int=int".
			name := reflectKind(n.Basic)
			id := "." + name
			if n.Basic.Kind() == types.UnsafePointer {
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
		switch u := kindOf; u.Kind {
		case tBasic:
			b.WriteString(reflectKind(u.Basic))
		case tPointer:
			b.WriteString("ptr(")
			walk(u.Elem)
			b.WriteByte(')')
		case tSlice:
			b.WriteString("slice(")
			walk(u.Elem)
			b.WriteByte(')')
		case tArray:
			b.WriteString("array[" + strconv.FormatInt(u.Len, 10) + "](")
			walk(u.Elem)
			b.WriteByte(')')
		case tMap:
			b.WriteString("map(")
			walk(u.Key)
			b.WriteByte(',')
			walk(u.Elem)
			b.WriteByte(')')
		case tStruct:
			b.WriteString("struct{")
			for _, f := range u.Fields {
				b.WriteString(f.Obj.Name() + " ")
				walk(f.Type)
				b.WriteString(" " + strconv.Quote(f.Tag) + ";")
			}
			b.WriteByte('}')
		case tInterface:
			b.WriteString("interface")
		case tChan:
			b.WriteString("chan")
		case tFunc:
			b.WriteString("func")
		default:
			ok = false
		}
	}
	walk(n)
	if !ok {
		return "", false
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8]), true
}

// reflectName is reflect's PkgPath()+"."+Name() of a named type; false for
// a type local to a function or with a type argument typeArg cannot spell.
func reflectName(n *tnode) (string, bool) {
	if n.local {
		return "", false
	}
	path := ""
	if p := n.Obj.Pkg(); p != nil {
		path = p.Path()
		if p.Name() == "main" {
			path = "main"
		}
	}
	name := n.Obj.Name()
	if len(n.Args) > 0 {
		args := make([]string, len(n.Args))
		for i, a := range n.Args {
			s, ok := typeArg(a)
			if !ok {
				return "", false
			}
			args[i] = s
		}
		name += "[" + strings.Join(args, ",") + "]"
	}
	return path + "." + name, true
}

// typeArg spells a type argument as the compiler writes it into the name
// of an instantiation, which is what reflect reports: named types by full
// package path ("main" for the main package), aliases resolved, byte and
// rune as uint8 and int32, any as "interface {}", no space after commas.
// Struct, function, channel and non-empty interface literals are written
// with spacing rules of the compiler's own that are not reproduced here:
// false (the shape is then not predicted, as before generic types were).
func typeArg(n *tnode) (string, bool) {
	n = n.unalias()
	switch n.Kind {
	case tBasic:
		if n.Basic.Info()&types.IsUntyped != 0 || n.Basic.Kind() == types.Invalid {
			return "", false
		}
		return reflectKind(n.Basic), true
	case tNamed:
		if n.Obj.Pkg() == nil {
			return n.Obj.Name(), true // error
		}
		return reflectName(n)
	case tPointer:
		s, ok := typeArg(n.Elem)
		return "*" + s, ok
	case tSlice:
		s, ok := typeArg(n.Elem)
		return "[]" + s, ok
	case tArray:
		s, ok := typeArg(n.Elem)
		return "[" + strconv.FormatInt(n.Len, 10) + "]" + s, ok
	case tMap:
		k, ok1 := typeArg(n.Key)
		v, ok2 := typeArg(n.Elem)
		return "map[" + k + "]" + v, ok1 && ok2
	case tInterface:
		if len(n.Fields) == 0 && len(n.Parts) == 0 {
			return "interface {}", true
		}
	}
	return "", false
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
