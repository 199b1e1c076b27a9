package gen

import "go/types"

// The type model: the one walk over go/types. Every type the build stage
// judges (round trips, schema hashes and shapes, deep copies, type
// parameters) and the name stage imports is turned into a tnode once per
// package, with the facts several of them need (method sets, references)
// computed once on the node. The checks, hashes and copy plans
// (build_schema.go, build_clone.go) then read nodes, never go/types.

// tkind is the kind of a tnode.
type tkind uint8

const (
	tBasic tkind = iota
	tAlias
	tNamed
	tTypeParam
	tPointer
	tSlice
	tArray
	tMap
	tChan
	tFunc
	tStruct
	tInterface
	tUnion
	tOther // a type go/types may add later: judged conservatively
)

// tnode is one type.
type tnode struct {
	T    types.Type
	Kind tkind

	Basic *types.Basic    // basic
	Obj   *types.TypeName // alias, named, type parameter
	Args  []*tnode        // alias, named: the type arguments
	// Under is the aliased type of an alias, the underlying type of a
	// named type and the constraint of a type parameter.
	Under  *tnode
	Elem   *tnode   // pointer, slice, array, chan; map: the value
	Key    *tnode   // map
	Len    int64    // array
	Fields []tfield // struct: its fields; interface: its explicit methods
	// Parts are a function's parameters then results, an interface's
	// embedded types, and a union's terms.
	Parts []*tnode

	// Named only, from the method set of *T, looked up once.
	encoders []string // the encodings methods present (schema)
	codec    bool     // a full pair: msgpack encodes T by its own methods
	local    bool     // declared inside a function

	empty bool // interface: its type set is every type (any)

	refs  fact // a value can share memory with its copy by assignment
	hasTP fact // mentions a type parameter
	time  fact // holds a time.Time in its encoded fields
}

// tfield is a struct field (Obj a *types.Var, Tag its tag) or an interface
// method (Obj a *types.Func, T its signature).
type tfield struct {
	Obj  types.Object
	Tag  string
	Type *tnode
}

// fact is a memoized yes/no: unknown, then no while being computed (a
// recursive type decides without itself), then known.
type fact uint8

const (
	factUnknown fact = iota
	factNo
	factYes
)

// typeGraph builds and holds the nodes of one package. It is not safe for
// concurrent use; the stages that use it run one package at a time.
//
// Nodes are keyed by the types.Type itself, not by identity of types:
// identical types may be spelled differently (byte and uint8, an alias and
// what it stands for), and the schema hash and the imports depend on the
// spelling. Whoever needs identical types together (the deep copies: one
// function per type) groups nodes by Identical.
type typeGraph struct {
	nodes map[types.Type]*tnode
}

func newTypeGraph() *typeGraph {
	return &typeGraph{nodes: map[types.Type]*tnode{}}
}

// of returns the node of t, building it (and what it is made of) on first
// use. Nodes are registered before their parts, so recursive types end.
func (g *typeGraph) of(t types.Type) *tnode {
	if t == nil {
		return nil
	}
	if n := g.nodes[t]; n != nil {
		return n
	}
	n := &tnode{T: t}
	g.nodes[t] = n
	switch t := t.(type) {
	case *types.Alias:
		n.Kind, n.Obj = tAlias, t.Obj()
		n.Args = g.list(t.TypeArgs())
		n.Under = g.of(types.Unalias(t))
	case *types.Basic:
		n.Kind, n.Basic = tBasic, t
	case *types.Named:
		n.Kind, n.Obj = tNamed, t.Obj()
		n.Args = g.list(t.TypeArgs())
		n.Under = g.of(t.Underlying())
		if pkg := t.Obj().Pkg(); pkg != nil {
			n.local = t.Obj().Parent() != pkg.Scope()
			ms := types.NewMethodSet(types.NewPointer(t))
			if _, isPtr := t.Underlying().(*types.Pointer); isPtr {
				ms = types.NewMethodSet(t)
			}
			for _, m := range encoders {
				if ms.Lookup(pkg, m) != nil {
					n.encoders = append(n.encoders, m)
				}
			}
			for _, p := range codecPairs {
				if ms.Lookup(pkg, p[0]) != nil && ms.Lookup(pkg, p[1]) != nil {
					n.codec = true
				}
			}
		}
	case *types.TypeParam:
		n.Kind, n.Obj = tTypeParam, t.Obj()
		n.Under = g.of(t.Constraint())
	case *types.Pointer:
		n.Kind, n.Elem = tPointer, g.of(t.Elem())
	case *types.Slice:
		n.Kind, n.Elem = tSlice, g.of(t.Elem())
	case *types.Array:
		n.Kind, n.Elem, n.Len = tArray, g.of(t.Elem()), t.Len()
	case *types.Map:
		n.Kind, n.Key, n.Elem = tMap, g.of(t.Key()), g.of(t.Elem())
	case *types.Chan:
		n.Kind, n.Elem = tChan, g.of(t.Elem())
	case *types.Signature:
		n.Kind = tFunc
		for _, tup := range []*types.Tuple{t.Params(), t.Results()} {
			for i := 0; i < tup.Len(); i++ {
				n.Parts = append(n.Parts, g.of(tup.At(i).Type()))
			}
		}
	case *types.Struct:
		n.Kind = tStruct
		for i := 0; i < t.NumFields(); i++ {
			f := t.Field(i)
			n.Fields = append(n.Fields, tfield{Obj: f, Tag: t.Tag(i), Type: g.of(f.Type())})
		}
	case *types.Interface:
		n.Kind, n.empty = tInterface, t.Empty()
		for i := 0; i < t.NumExplicitMethods(); i++ {
			m := t.ExplicitMethod(i)
			n.Fields = append(n.Fields, tfield{Obj: m, Type: g.of(m.Type())})
		}
		for i := 0; i < t.NumEmbeddeds(); i++ {
			n.Parts = append(n.Parts, g.of(t.EmbeddedType(i)))
		}
	case *types.Union:
		n.Kind = tUnion
		for i := 0; i < t.Len(); i++ {
			n.Parts = append(n.Parts, g.of(t.Term(i).Type()))
		}
	default:
		n.Kind = tOther
	}
	return n
}

func (g *typeGraph) list(l *types.TypeList) []*tnode {
	var out []*tnode
	for i := 0; i < l.Len(); i++ {
		out = append(out, g.of(l.At(i)))
	}
	return out
}

// unalias follows aliases to the type they stand for.
func (n *tnode) unalias() *tnode {
	for n.Kind == tAlias {
		n = n.Under
	}
	return n
}

// under is the underlying type: itself, but for aliases, named types and
// type parameters (whose underlying type is their constraint's).
func (n *tnode) under() *tnode {
	n = n.unalias()
	for n.Kind == tNamed || n.Kind == tTypeParam {
		n = n.Under.unalias()
	}
	return n
}

func (n *tnode) isTime() bool {
	n = n.unalias()
	return n.Kind == tNamed && n.Obj.Pkg() != nil && n.Obj.Pkg().Path() == "time" && n.Obj.Name() == "Time"
}

// terms lists the types of a type parameter's type set, as its constraint
// spells them (unions and single types embedded in it); none when it has
// only methods.
func (n *tnode) terms() []*tnode {
	c := n.Under.under()
	if c.Kind != tInterface {
		return nil
	}
	var out []*tnode
	for _, e := range c.Parts {
		switch {
		case e.Kind == tUnion:
			out = append(out, e.Parts...)
		case e.under().Kind != tInterface:
			out = append(out, e)
		}
	}
	return out
}

// holdsRefs reports whether a value of the type can share memory with its
// copy by assignment: it is or contains a pointer, slice, map or interface.
// time.Time is immutable and copied by assignment; a type parameter holds
// references unless its constraint lists terms and none does.
func (n *tnode) holdsRefs() bool {
	n = n.unalias()
	if n.refs != factUnknown {
		return n.refs == factYes
	}
	n.refs = factNo // in progress: a recursive type recurses through a reference
	r := false
	switch {
	case n.Kind == tTypeParam:
		terms := n.terms()
		r = len(terms) == 0
		for _, t := range terms {
			r = r || t.holdsRefs()
		}
	case n.isTime():
	default:
		switch u := n.under(); u.Kind {
		case tPointer, tSlice, tMap, tInterface:
			r = true
		case tArray:
			r = u.Elem.holdsRefs()
		case tStruct:
			for _, f := range u.Fields {
				r = r || f.Type.holdsRefs()
			}
		}
	}
	if r {
		n.refs = factYes
	}
	return r
}

// hasTypeParam reports whether the type mentions a type parameter, in which
// case its schema is only known at run time.
func (n *tnode) hasTypeParam() bool {
	if n.hasTP != factUnknown {
		return n.hasTP == factYes
	}
	n.hasTP = factNo
	r := false
	switch n.Kind {
	case tTypeParam:
		r = true
	case tAlias:
		r = n.Under.hasTypeParam()
	case tNamed: // its underlying type is instantiated: only the arguments matter
		for _, a := range n.Args {
			r = r || a.hasTypeParam()
		}
	case tPointer, tSlice, tArray, tChan:
		r = n.Elem.hasTypeParam()
	case tMap:
		r = n.Key.hasTypeParam() || n.Elem.hasTypeParam()
	case tStruct:
		for _, f := range n.Fields {
			r = r || f.Type.hasTypeParam()
		}
	case tFunc:
		for _, p := range n.Parts {
			r = r || p.hasTypeParam()
		}
	}
	if r {
		n.hasTP = factYes
	}
	return r
}

// packages calls add with the package of every alias and named type the
// type is written with, type arguments included.
func (n *tnode) packages(add func(*types.Package)) {
	seen := map[*tnode]bool{}
	var walk func(n *tnode)
	walk = func(n *tnode) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		switch n.Kind {
		case tAlias, tNamed:
			add(n.Obj.Pkg())
			for _, a := range n.Args {
				walk(a)
			}
			return // written by name: what it stands for is not spelled
		}
		walk(n.Elem)
		walk(n.Key)
		for _, f := range n.Fields {
			walk(f.Type)
		}
		for _, p := range n.Parts {
			walk(p)
		}
	}
	walk(n)
}

// hasCodec reports whether the type brings its own encoder and decoder:
// a named type, or a pointer to one, whose method set (with the pointer's
// methods) has an encoding pair.
func (n *tnode) hasCodec() bool {
	n = n.unalias()
	if n.Kind == tPointer {
		n = n.Elem.unalias()
	}
	return n.Kind == tNamed && n.codec
}

// holdsTime reports whether a value of the type can hold a time.Time in
// its encoded fields (itself, through pointers, arrays and structs).
func (n *tnode) holdsTime() bool {
	n = n.unalias()
	if n.isTime() {
		return true
	}
	if n.time != factUnknown {
		return n.time == factYes
	}
	n.time = factNo
	r := false
	switch u := n.under(); u.Kind {
	case tPointer, tArray:
		r = u.Elem.holdsTime()
	case tStruct:
		for _, f := range u.Fields {
			r = r || f.Type.holdsTime()
		}
	}
	if r {
		n.time = factYes
	}
	return r
}
