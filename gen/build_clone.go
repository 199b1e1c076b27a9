package gen

import (
	"go/types"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/tools/go/types/typeutil"
)

// cloner plans the deep copies of one output file: for each result type,
// how a value is copied (Spec.Clone), and one function per distinct type
// that needs one. Recursive types recurse through those functions.
type cloner struct {
	b     *builder
	pkg   *types.Package
	token string          // the first repository of the file, after the '_' of every name
	refs  typeutil.Map    // type -> bool: holds references
	plan  typeutil.Map    // type -> *Copy (noCopy for assignment)
	names map[string]bool // function names taken in this file
	funcs []*CloneFunc
	codec string // File.CloneCodec, once a value needs it
}

// noCopy marks a planned type that assignment copies.
var noCopy = &Copy{}

// planClones sets Keyspace.Clone for every keyspace of f and f.Clones.
func (b *builder) planClones(f *File) {
	if len(f.Repos) == 0 {
		return
	}
	c := &cloner{b: b, pkg: b.p.Types, token: f.Repos[0].Name, names: map[string]bool{}}
	for _, r := range f.Repos {
		for _, ks := range r.Spaces {
			ks.Clone = c.result(r, ks.Result)
		}
	}
	f.Clones, f.CloneCodec = c.funcs, c.codec
	if len(c.funcs) == 0 {
		return
	}
	// The functions call these builtins; a package-level declaration of one
	// would capture the calls.
	for _, n := range []string{"make", "len", "copy"} {
		if obj := b.p.Types.Scope().Lookup(n); obj != nil {
			b.errorf(b.p.Fset.Position(obj.Pos()), "package-level %s shadows the builtin %s, which the deep copies (Spec.Clone) generated in %s call: rename it", n, n, filepath.Base(f.Output))
		}
	}
}

// result plans the Clone of a keyspace's result type.
func (c *cloner) result(r *Repo, t types.Type) *Copy {
	if containsTypeParam(t) {
		if !c.holdsRefs(t) {
			return nil
		}
		if _, ok := types.Unalias(t).(*types.TypeParam); ok {
			return c.viaCodec(c.b.typeString(t) + " is a type parameter of " + r.Name + ", whose values the generator cannot copy field by field")
		}
		return c.viaCodec(c.b.typeString(t) + " depends on type parameters of " + r.Name + ", whose values the generator cannot copy field by field")
	}
	return c.copyOf(t)
}

// holdsRefs reports whether a value of t can share memory with its copy by
// assignment: it is or contains a pointer, slice, map or interface.
// time.Time is immutable and copied by assignment.
func (c *cloner) holdsRefs(t types.Type) bool {
	t = types.Unalias(t)
	if v := c.refs.At(t); v != nil {
		return v.(bool)
	}
	// In progress: a recursive type recurses through a pointer, slice or
	// map, which decides the answer without this one.
	c.refs.Set(t, false)
	r := false
	if tp, ok := t.(*types.TypeParam); ok {
		r = typeParamRefs(c, tp)
	} else if !isTime(t) {
		switch u := t.Underlying().(type) {
		case *types.Pointer, *types.Slice, *types.Map, *types.Interface:
			r = true
		case *types.Array:
			r = c.holdsRefs(u.Elem())
		case *types.Struct:
			for i := 0; i < u.NumFields() && !r; i++ {
				r = c.holdsRefs(u.Field(i).Type())
			}
		}
	}
	c.refs.Set(t, r)
	return r
}

// typeParamRefs reports whether some type of tp's type set may hold
// references: true unless the constraint lists terms and none does.
func typeParamRefs(c *cloner, tp *types.TypeParam) bool {
	ifc, ok := tp.Constraint().Underlying().(*types.Interface)
	if !ok {
		return true
	}
	terms := 0
	for i := 0; i < ifc.NumEmbeddeds(); i++ {
		switch e := ifc.EmbeddedType(i).(type) {
		case *types.Union:
			for j := 0; j < e.Len(); j++ {
				terms++
				if c.holdsRefs(e.Term(j).Type()) {
					return true
				}
			}
		default:
			if _, isIface := e.Underlying().(*types.Interface); isIface {
				continue
			}
			terms++
			if c.holdsRefs(e) {
				return true
			}
		}
	}
	return terms == 0
}

func isTime(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "time" && n.Obj().Name() == "Time"
}

// copyOf plans how a value of t is deep-copied.
func (c *cloner) copyOf(t types.Type) *Copy {
	t = types.Unalias(t)
	if v := c.plan.At(t); v != nil {
		if v == noCopy {
			return nil
		}
		return v.(*Copy)
	}
	if !c.holdsRefs(t) {
		c.plan.Set(t, noCopy)
		return nil
	}
	var cp *Copy
	switch u := t.Underlying().(type) {
	case *types.Interface:
		cp = c.viaCodec(c.b.typeString(t) + " is an interface, whose dynamic types the generator cannot see")
	case *types.Struct:
		if f := c.hiddenRefs(u); f != nil {
			cp = c.viaCodec(c.b.typeString(t) + " has an unexported field holding references (" + f.Name() + "), which cannot be copied field by field")
		}
	}
	if cp == nil && !c.nameable(t) {
		cp = c.viaCodec(c.b.typeString(t) + " names an unexported type or field of another package")
	}
	if cp != nil {
		c.plan.Set(t, cp)
		return cp
	}
	fn := &CloneFunc{Type: t, Name: c.name(t)}
	cp = &Copy{Func: fn}
	c.plan.Set(t, cp) // before the parts: a recursive type calls fn
	c.funcs = append(c.funcs, fn)
	switch u := t.Underlying().(type) {
	case *types.Pointer:
		fn.Elem = c.copyOf(u.Elem())
	case *types.Slice:
		fn.Elem = c.copyOf(u.Elem())
	case *types.Array:
		fn.Elem = c.copyOf(u.Elem())
	case *types.Map:
		fn.Key = c.copyOf(u.Key())
		fn.Elem = c.copyOf(u.Elem())
	case *types.Struct:
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			if fc := c.copyOf(f.Type()); fc != nil {
				fn.Fields = append(fn.Fields, FieldCopy{Name: f.Name(), Copy: fc})
			}
		}
	}
	return cp
}

// viaCodec plans a copy through the codec function, naming it on first use.
func (c *cloner) viaCodec(why string) *Copy {
	if c.codec == "" {
		c.codec = c.pick("Codec")
	}
	return &Copy{Codec: why}
}

// hiddenRefs returns the first unexported field of st that holds
// references, if any: such a struct cannot be copied field by field (from
// another package it cannot be written at all, and msgpack, which the
// runtime decodes with, leaves unexported fields out, so the codec copies
// what a decode would give).
func (c *cloner) hiddenRefs(st *types.Struct) *types.Var {
	for i := 0; i < st.NumFields(); i++ {
		if f := st.Field(i); !f.Exported() && c.holdsRefs(f.Type()) {
			return f
		}
	}
	return nil
}

// nameable reports whether t can be written in the generated file: it
// names no unexported type or field of another package.
func (c *cloner) nameable(t types.Type) bool {
	seen := map[types.Type]bool{}
	var ok func(t types.Type) bool
	visible := func(o types.Object) bool {
		return o.Exported() || o.Pkg() == nil || o.Pkg() == c.pkg
	}
	ok = func(t types.Type) bool {
		if seen[t] {
			return true
		}
		seen[t] = true
		switch t := t.(type) {
		case *types.Alias:
			return visible(t.Obj()) && ok(types.Unalias(t))
		case *types.Named:
			if !visible(t.Obj()) {
				return false
			}
			for i := 0; i < t.TypeArgs().Len(); i++ {
				if !ok(t.TypeArgs().At(i)) {
					return false
				}
			}
			return true
		case *types.Pointer:
			return ok(t.Elem())
		case *types.Slice:
			return ok(t.Elem())
		case *types.Array:
			return ok(t.Elem())
		case *types.Chan:
			return ok(t.Elem())
		case *types.Map:
			return ok(t.Key()) && ok(t.Elem())
		case *types.Struct:
			for i := 0; i < t.NumFields(); i++ {
				if f := t.Field(i); !visible(f) || !ok(f.Type()) {
					return false
				}
			}
		case *types.Signature:
			for _, tup := range []*types.Tuple{t.Params(), t.Results()} {
				for i := 0; i < tup.Len(); i++ {
					if !ok(tup.At(i).Type()) {
						return false
					}
				}
			}
		case *types.Interface:
			for i := 0; i < t.NumExplicitMethods(); i++ {
				if m := t.ExplicitMethod(i); !visible(m) || !ok(m.Type()) {
					return false
				}
			}
			for i := 0; i < t.NumEmbeddeds(); i++ {
				if !ok(t.EmbeddedType(i)) {
					return false
				}
			}
		}
		return true
	}
	return ok(t)
}

// name picks the function name for t: clone<Type>_<Repo>. <Type> has no
// '_', so the part after the first '_' is the repository, unique to this
// file in the package. A clash with a package-level name or another
// function of the file appends 2, 3, … to <Type>.
func (c *cloner) name(t types.Type) string { return c.pick(c.desc(t)) }

// pick returns the first free clone<desc>[N]_<Repo>.
func (c *cloner) pick(desc string) string {
	base := "clone" + desc
	for i := 1; ; i++ {
		n := base
		if i > 1 {
			n += strconv.Itoa(i)
		}
		n += "_" + c.token
		if !c.names[n] && c.pkg.Scope().Lookup(n) == nil && types.Universe.Lookup(n) == nil {
			c.names[n] = true
			return n
		}
	}
}

// desc describes t in an identifier without '_': PtrUser, SliceString,
// MapStringToInt, PageOfInt, ModelUser (another package's model.User).
func (c *cloner) desc(t types.Type) string {
	switch t := types.Unalias(t).(type) {
	case *types.Named:
		s := upperFirst(ident(t.Obj().Name()))
		if p := t.Obj().Pkg(); p != nil && p != c.pkg {
			s = upperFirst(ident(p.Name())) + s
		}
		if args := t.TypeArgs(); args.Len() > 0 {
			var as []string
			for i := 0; i < args.Len(); i++ {
				as = append(as, c.desc(args.At(i)))
			}
			s += "Of" + strings.Join(as, "And")
		}
		return s
	case *types.Basic:
		return upperFirst(ident(t.Name()))
	case *types.Pointer:
		return "Ptr" + c.desc(t.Elem())
	case *types.Slice:
		if b, ok := types.Unalias(t.Elem()).(*types.Basic); ok && b.Kind() == types.Uint8 {
			return "Bytes"
		}
		return "Slice" + c.desc(t.Elem())
	case *types.Array:
		return "Array" + strconv.FormatInt(t.Len(), 10) + c.desc(t.Elem())
	case *types.Map:
		return "Map" + c.desc(t.Key()) + "To" + c.desc(t.Elem())
	case *types.Chan:
		return "Chan" + c.desc(t.Elem())
	case *types.Struct:
		return "Struct"
	case *types.Interface:
		return "Any"
	case *types.Signature:
		return "Func"
	case *types.TypeParam:
		return upperFirst(ident(t.Obj().Name()))
	}
	return "T"
}

// ident drops the '_' of a name; it is never empty.
func ident(s string) string {
	s = strings.ReplaceAll(s, "_", "")
	if s == "" {
		return "X"
	}
	return s
}

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
