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
	plan  typeutil.Map    // identical types -> *Copy (noCopy for assignment)
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
			ks.Clone = c.result(r, b.types.of(ks.Result))
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
func (c *cloner) result(r *Repo, n *tnode) *Copy {
	if n.hasTypeParam() {
		if !n.holdsRefs() {
			return nil
		}
		if n.unalias().Kind == tTypeParam {
			return c.viaCodec(c.b.typeString(n.T) + " is a type parameter of " + r.Name + ", whose values the generator cannot copy field by field")
		}
		return c.viaCodec(c.b.typeString(n.T) + " depends on type parameters of " + r.Name + ", whose values the generator cannot copy field by field")
	}
	return c.copyOf(n)
}

// copyOf plans how a value of n is deep-copied.
func (c *cloner) copyOf(n *tnode) *Copy {
	n = n.unalias()
	if v := c.plan.At(n.T); v != nil {
		if v == noCopy {
			return nil
		}
		return v.(*Copy)
	}
	if !n.holdsRefs() {
		c.plan.Set(n.T, noCopy)
		return nil
	}
	var cp *Copy
	u := n.under()
	switch u.Kind {
	case tInterface:
		cp = c.viaCodec(c.b.typeString(n.T) + " is an interface, whose dynamic types the generator cannot see")
	case tStruct:
		if f := hiddenRefs(u); f != nil {
			cp = c.viaCodec(c.b.typeString(n.T) + " has an unexported field holding references (" + f.Name() + "), which cannot be copied field by field")
		}
	}
	if cp == nil && !c.nameable(n) {
		cp = c.viaCodec(c.b.typeString(n.T) + " names an unexported type or field of another package")
	}
	if cp != nil {
		c.plan.Set(n.T, cp)
		return cp
	}
	fn := &CloneFunc{Type: n.T, Name: c.name(n)}
	cp = &Copy{Func: fn}
	c.plan.Set(n.T, cp) // before the parts: a recursive type calls fn
	c.funcs = append(c.funcs, fn)
	switch u.Kind {
	case tPointer, tSlice, tArray:
		fn.Elem = c.copyOf(u.Elem)
	case tMap:
		fn.Key = c.copyOf(u.Key)
		fn.Elem = c.copyOf(u.Elem)
	case tStruct:
		for _, f := range u.Fields {
			if fc := c.copyOf(f.Type); fc != nil {
				fn.Fields = append(fn.Fields, FieldCopy{Name: f.Obj.Name(), Copy: fc})
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

// hiddenRefs returns the first unexported field of a struct that holds
// references, if any: such a struct cannot be copied field by field (from
// another package it cannot be written at all, and msgpack, which the
// runtime decodes with, leaves unexported fields out, so the codec copies
// what a decode would give).
func hiddenRefs(st *tnode) types.Object {
	for _, f := range st.Fields {
		if !f.Obj.Exported() && f.Type.holdsRefs() {
			return f.Obj
		}
	}
	return nil
}

// nameable reports whether n can be written in the generated file: it
// names no unexported type or field of another package.
func (c *cloner) nameable(n *tnode) bool {
	seen := map[*tnode]bool{}
	visible := func(o types.Object) bool {
		return o.Exported() || o.Pkg() == nil || o.Pkg() == c.pkg
	}
	var ok func(n *tnode) bool
	ok = func(n *tnode) bool {
		if n == nil || seen[n] {
			return true
		}
		seen[n] = true
		switch n.Kind {
		case tAlias:
			return visible(n.Obj) && ok(n.Under)
		case tNamed:
			if !visible(n.Obj) {
				return false
			}
			for _, a := range n.Args {
				if !ok(a) {
					return false
				}
			}
			return true
		case tUnion, tTypeParam:
			return true
		}
		if !ok(n.Elem) || !ok(n.Key) {
			return false
		}
		for _, f := range n.Fields { // struct fields, interface methods
			if !visible(f.Obj) || !ok(f.Type) {
				return false
			}
		}
		for _, p := range n.Parts { // func parameters and results, embedded interfaces
			if !ok(p) {
				return false
			}
		}
		return true
	}
	return ok(n)
}

// name picks the function name for n: clone<Type>_<Repo>. <Type> has no
// '_', so the part after the first '_' is the repository, unique to this
// file in the package. A clash with a package-level name or another
// function of the file appends 2, 3, … to <Type>.
func (c *cloner) name(n *tnode) string { return c.pick(c.desc(n)) }

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

// desc describes n in an identifier without '_': PtrUser, SliceString,
// MapStringToInt, PageOfInt, ModelUser (another package's model.User).
func (c *cloner) desc(n *tnode) string {
	n = n.unalias()
	switch n.Kind {
	case tNamed:
		s := upperFirst(ident(n.Obj.Name()))
		if p := n.Obj.Pkg(); p != nil && p != c.pkg {
			s = upperFirst(ident(p.Name())) + s
		}
		if len(n.Args) > 0 {
			var as []string
			for _, a := range n.Args {
				as = append(as, c.desc(a))
			}
			s += "Of" + strings.Join(as, "And")
		}
		return s
	case tBasic:
		return upperFirst(ident(n.Basic.Name()))
	case tPointer:
		return "Ptr" + c.desc(n.Elem)
	case tSlice:
		if e := n.Elem.unalias(); e.Kind == tBasic && e.Basic.Kind() == types.Uint8 {
			return "Bytes"
		}
		return "Slice" + c.desc(n.Elem)
	case tArray:
		return "Array" + strconv.FormatInt(n.Len, 10) + c.desc(n.Elem)
	case tMap:
		return "Map" + c.desc(n.Key) + "To" + c.desc(n.Elem)
	case tChan:
		return "Chan" + c.desc(n.Elem)
	case tStruct:
		return "Struct"
	case tInterface:
		return "Any"
	case tFunc:
		return "Func"
	case tTypeParam:
		return upperFirst(ident(n.Obj.Name()))
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
