package gen

import (
	"go/types"

	"github.com/cachegen/cachegen/annotations"
)

// value resolves one placeholder: its root (a parameter or the result), the
// field selections after it, where nil pointers must be checked, and how the
// final value is appended to a key.
func (b *builder) value(p annotations.Part, m *Method, result types.Type, resultParam *Param, where string) (*Value, bool) {
	v := &Value{Text: p.Name()}
	var t types.Type
	if p.Path[0] == "result" && m.param("result") == nil {
		if result == nil {
			if where == "" {
				where = "here"
			} else {
				where = "in " + where
			}
			b.errorf(p.Pos, "placeholder {%s}: the result is not available %s (only in get tags and put keys)", v.Text, where)
			return nil, false
		}
		t, v.Root = result, resultParam
	} else {
		v.Root = m.param(p.Path[0])
		if v.Root != nil && v.Root.Context && annotations.Position(p.Path[0]) > 0 {
			b.errorf(p.Pos, "placeholder {%s} is the context.Context; positions count it, so the first parameter after it is {$2}", v.Text)
			return nil, false
		}
		if v.Root == nil || v.Root.Context {
			b.errorf(p.Pos, "placeholder {%s} names no parameter of %s (have %s)", v.Text, m.Name, m.paramNames())
			return nil, false
		}
		t = v.Root.Type
	}
	for _, name := range p.Path[1:] {
		if _, isPtr := t.Underlying().(*types.Pointer); isPtr {
			v.NilChecks = append(v.NilChecks, len(v.Fields))
		}
		if _, isTP := types.Unalias(t).(*types.TypeParam); isTP {
			b.errorf(p.Pos, "placeholder {%s}: %s is a type parameter, whose fields cannot be selected", v.Text, v.path(len(v.Fields)))
			return nil, false
		}
		obj, index, _ := types.LookupFieldOrMethod(t, true, b.p.Types, name)
		field, isField := obj.(*types.Var)
		if obj == nil {
			b.errorf(p.Pos, "placeholder {%s}: %s (%s) has no field %s", v.Text, v.path(len(v.Fields)), b.typeString(t), name)
			return nil, false
		}
		if !isField || !field.IsField() {
			b.errorf(p.Pos, "placeholder {%s}: %s is a method; placeholders select fields", v.Text, name)
			return nil, false
		}
		// Walk the index path explicitly, so a promoted field reached
		// through an embedded pointer gets its nil check too.
		for i, idx := range index {
			if i > 0 {
				if _, isPtr := t.Underlying().(*types.Pointer); isPtr {
					v.NilChecks = append(v.NilChecks, len(v.Fields))
				}
			}
			st := structOf(t)
			f := st.Field(idx)
			v.Fields = append(v.Fields, f.Name())
			t = f.Type()
		}
	}
	v.Type = t
	if p.Hash {
		return b.hashed(v, p)
	}
	kind, conv, deref, needsNil, ok := keyKind(t)
	if !ok {
		b.errorf(p.Pos, "placeholder {%s} has type %s, which cannot be part of a key or tag (want a string, bool, integer, fmt.Stringer or encoding.TextMarshaler)", v.Text, b.typeString(t))
		return nil, false
	}
	v.Kind, v.Conv, v.Deref = kind, conv, deref
	if needsNil {
		v.NilChecks = append(v.NilChecks, len(v.Fields))
	}
	return v, true
}

func structOf(t types.Type) *types.Struct {
	if p, ok := t.Underlying().(*types.Pointer); ok {
		t = p.Elem()
	}
	st, _ := t.Underlying().(*types.Struct)
	return st
}

var (
	textMarshaler = iface("MarshalText", types.NewSlice(types.Typ[types.Byte]), errorType)
	stringer      = iface("String", types.Typ[types.String])
)

// iface builds interface{ name() (results...) }.
func iface(name string, results ...types.Type) *types.Interface {
	var vars []*types.Var
	for _, r := range results {
		vars = append(vars, types.NewParam(0, nil, "", r))
	}
	sig := types.NewSignatureType(nil, nil, nil, nil, types.NewTuple(vars...), false)
	return types.NewInterfaceType([]*types.Func{types.NewFunc(0, nil, name, sig)}, nil).Complete()
}

// keyKind decides how a value of type t is appended to a key. Basic kinds
// come first (they are injective and need no call), then MarshalText (a
// canonical text form), then String.
func keyKind(t types.Type) (kind Kind, conv string, deref, needsNil, ok bool) {
	if tp, isTP := types.Unalias(t).(*types.TypeParam); isTP {
		if k, c, ok := typeSetKind(tp); ok {
			return k, c, false, false, true
		}
		return methodKind(t)
	}
	if k, c, ok := basicKind(t); ok {
		return k, c, false, false, true
	}
	if p, isPtr := t.Underlying().(*types.Pointer); isPtr {
		if k, c, ok := basicKind(p.Elem()); ok {
			return k, c, true, true, true
		}
	}
	return methodKind(t)
}

func methodKind(t types.Type) (kind Kind, conv string, deref, needsNil, ok bool) {
	_, isPtr := t.Underlying().(*types.Pointer)
	_, isIface := t.Underlying().(*types.Interface)
	nilable := isPtr || isIface
	for _, c := range []struct {
		iface *types.Interface
		kind  Kind
	}{{textMarshaler, KindText}, {stringer, KindStringer}} {
		if types.Implements(t, c.iface) {
			return c.kind, "", false, nilable, true
		}
		// Placeholders are variables, hence addressable: pointer methods work.
		if !nilable && types.Implements(types.NewPointer(t), c.iface) {
			return c.kind, "", false, false, true
		}
	}
	return 0, "", false, false, false
}

func basicKind(t types.Type) (Kind, string, bool) {
	bt, ok := t.Underlying().(*types.Basic)
	if !ok {
		return 0, "", false
	}
	exact := func(k types.BasicKind, name string) string {
		if types.Identical(t, types.Typ[k]) {
			return ""
		}
		return name
	}
	info := bt.Info()
	switch {
	case info&types.IsString != 0:
		return KindString, exact(types.String, "string"), true
	case info&types.IsBoolean != 0:
		return KindBool, exact(types.Bool, "bool"), true
	case info&types.IsInteger != 0 && info&types.IsUnsigned != 0:
		return KindUint, exact(types.Uint64, "uint64"), true
	case info&types.IsInteger != 0:
		return KindInt, exact(types.Int64, "int64"), true
	}
	return 0, "", false
}

// typeSetKind accepts a type parameter whose type set holds only strings,
// only integers or only bools, so a conversion is valid for every member.
func typeSetKind(tp *types.TypeParam) (Kind, string, bool) {
	ifc, ok := tp.Constraint().Underlying().(*types.Interface)
	if !ok {
		return 0, "", false
	}
	var terms []types.Type
	for i := 0; i < ifc.NumEmbeddeds(); i++ {
		switch e := ifc.EmbeddedType(i).(type) {
		case *types.Union:
			for j := 0; j < e.Len(); j++ {
				terms = append(terms, e.Term(j).Type())
			}
		default:
			if _, isIface := e.Underlying().(*types.Interface); !isIface {
				terms = append(terms, e)
			}
		}
	}
	if len(terms) == 0 {
		return 0, "", false
	}
	var kinds []Kind
	for _, t := range terms {
		k, _, ok := basicKind(t)
		if !ok {
			return 0, "", false
		}
		kinds = append(kinds, k)
	}
	k := kinds[0]
	for _, o := range kinds[1:] {
		switch {
		case o == k:
		case o.class() == "an integer" && k.class() == "an integer":
			k = KindInt
		default:
			// Strings and integers (or bools) mixed: no one conversion
			// is valid for every member; the instantiation decides.
			return KindUnion, "", true
		}
	}
	switch k {
	case KindString:
		return k, "string", true
	case KindBool:
		return k, "bool", true
	case KindUint:
		return k, "uint64", true
	}
	return KindInt, "int64", true
}

// hashed resolves a {value#} placeholder: the value is written as a hash of
// its canonical encoding (runtime.AppendHash), so it may be any type whose
// encoding tells its values apart: no interfaces (an encoding does not say
// the dynamic type), nothing msgpack cannot encode, no unexported fields
// (not encoded: two values differing only there would share an entry).
func (b *builder) hashed(v *Value, p annotations.Part) (*Value, bool) {
	t := v.Type
	if _, isTP := types.Unalias(t).(*types.TypeParam); isTP {
		b.errorf(p.Pos, "placeholder {%s}: %s is a type parameter, whose encoding the generator cannot check; hash a concrete type", v.Text, v.path(len(v.Fields)))
		return nil, false
	}
	n := b.types.of(t)
	var bad []string
	bad = append(bad, roundTrip(n, v.path(len(v.Fields)))...)
	bad = append(bad, interfacesIn(n, v.path(len(v.Fields)))...)
	if len(bad) > 0 {
		for _, why := range bad {
			b.errorf(p.Pos, "placeholder {%s} cannot be hashed: %s", v.Text, why)
		}
		return nil, false
	}
	v.Kind = KindHash
	if bt, ok := t.Underlying().(*types.Basic); ok && bt.Info()&types.IsString != 0 {
		v.Kind = KindHashString
		if !types.Identical(t, types.Typ[types.String]) {
			v.Conv = "string"
		}
	}
	return v, true
}

// interfacesIn lists the empty interfaces in n (roundTrip reports the
// others): a hash of one would not say which type its value had.
func interfacesIn(n *tnode, root string) []string {
	var bad []string
	seen := map[*tnode]bool{}
	var walk func(n *tnode, path string)
	walk = func(n *tnode, path string) {
		n = n.unalias()
		if n.Kind == tNamed {
			if seen[n] || n.codec {
				return
			}
			seen[n] = true
		}
		switch u := n.under(); u.Kind {
		case tInterface:
			if u.empty {
				bad = append(bad, path+" is an interface: its encoding does not say which type its value has (int8(1) and int64(1) would hash alike)")
			}
		case tPointer:
			walk(u.Elem, path)
		case tSlice, tArray:
			walk(u.Elem, path+"[i]")
		case tMap:
			walk(u.Key, path+" (key)")
			walk(u.Elem, path+"[k]")
		case tStruct:
			for _, f := range u.Fields {
				if v := f.Obj.(*types.Var); v.Exported() || v.Embedded() {
					walk(f.Type, path+"."+v.Name())
				}
			}
		}
	}
	walk(n, root)
	return bad
}
