package gen

import (
	"go/token"
	"go/types"
	"strconv"
	"strings"
	"time"

	"github.com/cachegen/cachegen/annotations"
)

// The model is what the generator knows about one output file, resolved
// against go/types and validated. It has no jennifer in it, so the rules
// live in build.go and the syntax in render.go.

// File is one generated file: the repositories declared in one source file.
type File struct {
	Source string // the Go file that declares the interfaces
	Output string // <source>_cache.go
	Pkg    *types.Package
	Build  string // the source's //go:build line, copied so both files build together
	Repos  []*Repo
	// Names maps import paths to the names the source file gives them;
	// the output uses the same names where it can, to read alike.
	Names map[string]string
	// Clones are the deep-copy functions of the file, one per distinct type,
	// in the order the keyspaces first need them.
	Clones []*CloneFunc
	// CloneCodec names the generic function that copies the values the
	// generator cannot copy field by field, through runtime.CloneCodec; ""
	// when no value needs it.
	CloneCodec string

	types *typeGraph // the package's type model, which the name stage reads for imports

	// Set by the name stage (name.go).
	Imports     []Import
	Locals      map[string]string // fixed local -> its name in this file (r, ctx, buf, …)
	CloneLocals map[string]string // the same for the deep-copy functions
}

// Copy says how a value of one type is deep-copied, for Spec.Clone. A nil
// *Copy means assignment copies it: the type holds no references.
type Copy struct {
	Func  *CloneFunc // a generated function
	Codec string     // else File.CloneCodec, a msgpack round trip; this says why
}

// CloneFunc is one generated deep-copy function, named
// clone<Type>_<first repository of the file> with no '_' in <Type>: the
// part after the first '_' tells the files of a package apart, so the
// functions of two generated files never clash whatever else each holds.
type CloneFunc struct {
	Name   string
	Type   types.Type  // not an alias; a pointer, slice, array, map or struct underneath
	Elem   *Copy       // pointer, slice and array elements, map values
	Key    *Copy       // map keys
	Fields []FieldCopy // struct: the fields assignment alone would share, in order
}

// FieldCopy is a struct field that needs more than assignment.
type FieldCopy struct {
	Name string
	Copy *Copy
}

// Repo is one //cache:repo interface.
type Repo struct {
	Name       string // interface name
	Named      *types.Named
	TypeParams []*types.TypeParam
	Prefix     string
	Version    int
	Spaces     []*Keyspace
	Methods    []*Method
	Pos        token.Position
	// Fields names the generated struct's fields (name stage): they share
	// a namespace with its methods, unexported ones included.
	Fields struct{ Next, Cache, Repo string }
	// TypeParamNames are the names of the type parameters in the generated
	// code (name stage).
	TypeParamNames map[*types.TypeParam]string
	// Appenders name the struct fields holding runtime.UnionAppender[K]()
	// for the type parameters keys use as KindUnion, in order (name stage).
	Appenders   map[*types.TypeParam]string
	UnionParams []*types.TypeParam // build: the type parameters keys use as KindUnion
}

// Struct is the name of the generated type: CachedUsers.
func (r *Repo) Struct() string { return "Cached" + r.Name }

// Keyspace is one distinct get key template of a repository.
type Keyspace struct {
	Field    string // struct field: ks<first get method>
	Norm     string // "user:{}"
	Result   types.Type
	Schema   string // hash of Result; "" when it depends on type parameters
	Shape    string // runtime.SchemaOf[Result]() as predicted; "" when it cannot be
	TTL      time.Duration
	Negative time.Duration
	Jitter   annotations.Jitter
	NotFound *NotFound     // what is cached as not found, or nil
	Local    time.Duration // how long a read may be served from the process's memory (L1); 0: not at all
	Refresh  float64       // refresh-ahead point, percent of the TTL (1 up to below 100); 0: none
	Stale    time.Duration // how long past its TTL a positive entry may be served while it is reloaded; 0: never
	Clone    *Copy         // how a value is deep-copied; nil: assignment copies it
	Get      *Method       // the first get that reads it
	Keys     []*KeyFunc    // the methods that spell its keys: its get's first
	tagSig   string        // canonical tags, to compare gets sharing the template
}

// KeyFunc is a generated method that appends a key of a keyspace after the
// keyspace's prefix: every get, put, evict, Invalidate<Get> and batch read
// of the keyspace spells its key by calling it, with its own values. A
// keyspace has one, in the forms its get's values take; another only for a
// put or evict that binds a placeholder in another form (an unsigned
// integer where the get has a signed one, a MarshalText text where it has
// a string), so no value is ever converted into a form that writes other
// bytes.
type KeyFunc struct {
	Space *Keyspace
	Tmpl  *Tmpl  // the first template it spells: its literals, and its values for the parameter names
	Forms []Form // one per placeholder, in order
	// Set by the name stage: the method's name, in the struct's namespace,
	// and its parameters' (the buffer first).
	Name   string
	Params []string
}

// Form is how a key helper takes one value: Kind is KindString (strings,
// and String() results), KindInt (int64), KindUint (uint64), KindBool,
// KindText (MarshalText's bytes), KindUnion (the type parameter T, through
// its appender), KindHash (a value of type T, hashed) or KindHashString (a
// string, hashed).
type Form struct {
	Kind Kind
	T    types.Type // KindUnion, KindHash
}

// formOf is the form in which v is passed to a key helper.
func formOf(v *Value) Form {
	switch v.Kind {
	case KindStringer:
		return Form{Kind: KindString}
	case KindUnion, KindHash:
		return Form{Kind: v.Kind, T: v.Type}
	}
	return Form{Kind: v.Kind}
}

func (f Form) same(o Form) bool {
	return f.Kind == o.Kind && (f.T == nil) == (o.T == nil) && (f.T == nil || types.Identical(f.T, o.T))
}

// keyFunc returns the helper that spells t, a key of ks, adding it to ks
// when no helper takes t's values in their forms.
func (ks *Keyspace) keyFunc(t *Tmpl) *KeyFunc {
	var forms []Form
	for _, v := range t.Values() {
		forms = append(forms, formOf(v))
	}
next:
	for _, kf := range ks.Keys {
		for i, f := range kf.Forms {
			if !f.same(forms[i]) {
				continue next
			}
		}
		return kf
	}
	kf := &KeyFunc{Space: ks, Tmpl: t, Forms: forms}
	ks.Keys = append(ks.Keys, kf)
	return kf
}

// NotFound is a keyspace's notfound=: which errors are cached negatively,
// and what a hit on one returns (docs/runtime.md, "Payloads").
type NotFound struct {
	Text string       // as written, to compare gets sharing a template
	Var  types.Object // a sentinel error variable: errors.Is
	Type types.Type   // an error type whose exported fields are stored: errors.As
	Func types.Object // a predicate func(error) bool, in place of the others
}

// text is how notfound= was written, "" for none.
func (nf *NotFound) text() string {
	if nf == nil {
		return ""
	}
	return nf.Text
}

// Method is one method of the interface, with what its directive asks for.
type Method struct {
	Name     string
	Verb     string         // "get", "put", "evict", or "" to pass straight through
	Pos      token.Position // of the directive
	Decl     token.Position // of the method in the interface
	Params   []*Param
	Results  []types.Type
	Variadic bool

	Space     *Keyspace   // get: read; put: written
	Key       *Tmpl       // get, put
	Tags      []*Tmpl     // get: attached to the entry; put, evict: invalidated
	Store     *Param      // put: value= parameter; nil stores the result
	EntryTags []*Tmpl     // put: the tags of the stored entry
	Evict     []*Tmpl     // put evict=, evict keys=
	Groups    []*Keyspace // put, evict: pattern groups
	KeyParams []*Param    // get: the parameters its key uses
	Batch     *BatchRead  // get: a batch read (its key names a slice parameter)
	// Tuple is the entry of a get with more than one result besides the
	// error, (T1, T2, error): struct{ R0 T1; R1 T2 }, cached as one value.
	Tuple *types.Struct

	names *names // the method's scope (name stage): its parameters and the locals its body declares
}

// BatchRead is a get over a slice of ids: its Key and Tags are bound to
// Elem, one element of Slice, and its keyspace holds Value entries.
type BatchRead struct {
	Slice *Param
	Elem  *Param // named by the renderer's names, like a parameter
	Opts  string // Warm<Method>'s options parameter
	Map   types.Type
	Value types.Type
}

// resultType is the non-error result of a (T, error) method, or nil.
func (m *Method) resultType() types.Type {
	if len(m.Results) < 2 {
		return nil
	}
	return m.Results[0]
}

// Param is a method parameter. Name is what the generated code calls it;
// Orig is what the interface calls it (placeholders use Orig).
type Param struct {
	Name     string
	Orig     string
	Pos      int // 1-based position in the signature (the context is 1): {$2}
	Type     types.Type
	Variadic bool
	Context  bool // the leading context.Context
}

// ref is how placeholders and messages refer to p: its name, or $N when
// it has none.
func (p *Param) ref() string {
	if p.Orig == "" || p.Orig == "_" {
		return "$" + strconv.Itoa(p.Pos)
	}
	return p.Orig
}

// Tmpl is a key or tag template bound to values. Space and Func are set
// for keys.
type Tmpl struct {
	Space *Keyspace
	Func  *KeyFunc // the helper that spells it
	Text  string
	Pos   token.Position
	Segs  []Seg
}

// Seg is a literal or a value of a template.
type Seg struct {
	Lit string
	Val *Value
}

// Static reports whether the template has no values.
func (t *Tmpl) Static() bool {
	for _, s := range t.Segs {
		if s.Val != nil {
			return false
		}
	}
	return true
}

// Values returns the values of the template in order.
func (t *Tmpl) Values() []*Value {
	var out []*Value
	for _, s := range t.Segs {
		if s.Val != nil {
			out = append(out, s.Val)
		}
	}
	return out
}

// usesResult reports whether any value is rooted at the result.
func (t *Tmpl) usesResult() bool {
	for _, v := range t.Values() {
		if v.Root == nil {
			return true
		}
	}
	return false
}

// Kind is how a value is appended to a key.
type Kind int

const (
	KindString     Kind = iota // runtime.AppendString
	KindInt                    // runtime.AppendInt(int64(x))
	KindUint                   // runtime.AppendUint(uint64(x))
	KindBool                   // runtime.AppendBool
	KindText                   // MarshalText, then runtime.AppendBytes
	KindStringer               // runtime.AppendString(x.String())
	KindUnion                  // a type parameter mixing strings, integers, bools: r.append<K>(b, x), from runtime.UnionAppender
	KindHash                   // {x#}: runtime.AppendHash(b, x)
	KindHashString             // {x#} of a string kind: runtime.AppendHashString(b, string(x))
)

// class groups kinds that write the same bytes for the same logical value,
// so put and evict keys can use a different but compatible type than get.
func (k Kind) class() string {
	switch k {
	case KindInt, KindUint:
		return "an integer"
	case KindBool:
		return "a bool"
	case KindUnion:
		return "a string, integer or bool by instantiation"
	case KindHash, KindHashString:
		return "a hash"
	}
	return "a string"
}

// Value is a placeholder resolved to an expression: Root.Fields[0].Fields[1]...
type Value struct {
	Text      string // as written, without braces
	Root      *Param // nil: the method result (or the stored value)
	Fields    []string
	NilChecks []int // prefixes (in fields) that must not be nil before the value is read
	Kind      Kind
	Conv      string // conversion to apply first ("int64"), or ""
	Deref     bool   // the value is a pointer to a basic type
	Type      types.Type
}

func (v *Value) path(n int) string {
	root := "result"
	if v.Root != nil {
		root = v.Root.ref()
	}
	return strings.Join(append([]string{root}, v.Fields[:n]...), ".")
}
