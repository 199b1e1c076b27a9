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
