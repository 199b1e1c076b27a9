package local

// These tests run the generated deep copies (TestGolden runs go test on
// every golden case that has tests): a clone is deeply equal to its
// original, shares no memory with it, and mutating every reachable value of
// one leaves the other as it was.

import (
	"math/big"
	"reflect"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/cachegen/cachegen/testdata/golden/local/ext"
)

var when = time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)

func author(name string, emails ...string) *Author { return &Author{Name: name, Emails: emails} }

// full has every field set, with nil and empty slices and maps at
// several depths.
func full() *Article {
	upd := when.Add(time.Hour)
	amount, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	a := &Article{
		Base:      Base{ID: 1, Labels: []string{"a", "b"}},
		Meta:      &Meta{Source: "wire", Scores: map[string]int{"x": 1, "y": 2}},
		Title:     "title",
		Body:      []byte("body"),
		Tags:      []Tag{{Name: "t", Weight: 0.5, At: when}},
		Authors:   []*Author{author("ann", "ann@example.com"), nil, author("bob"), {Name: "eve", Emails: []string{}}},
		Attrs:     map[string][]string{"k": {"v1", "v2"}, "nil": nil, "empty": {}},
		ByPoint:   map[Point]*Author{{1, 2}: author("cy", "cy@example.com"), {3, 4}: nil},
		Grid:      [2][3]int{{1, 2, 3}, {4, 5, 6}},
		Links:     [2][]string{{"l1"}, nil},
		Matrix:    [][]float64{{1, 2}, {}, nil},
		Published: when,
		Updated:   &upd,
		Extra:     map[string]any{"s": "v", "list": []any{"x", true}, "m": map[string]any{"n": "deep"}},
		Doc:       ext.Doc{Title: "doc", Pages: []ext.Page{{N: 1, Lines: []string{"p"}}, {N: 2}}, Index: map[string]int{"i": 1}},
		Opaque:    ext.NewOpaque("o", "p1", "p2"),
		Wrapper:   ext.NewWrapper("w", 1, 2, 3),
		Amount:    amount,
	}
	a.Notes.Lines = []string{"n1"}
	a.Notes.Count = 1
	return a
}

// sparse is the other side: nil where full has values, empty where it has nil.
func sparse() *Article {
	return &Article{
		Base:    Base{Labels: []string{}},
		Body:    []byte{},
		Authors: []*Author{},
		Attrs:   map[string][]string{},
		Links:   [2][]string{nil, {}},
		Matrix:  [][]float64{},
		Doc:     ext.Doc{Pages: []ext.Page{}, Index: map[string]int{}},
		Opaque:  ext.NewOpaque("o", []string{}...),
	}
}

func tree() *Node {
	leaf := &Node{Value: 5, Index: map[string]*Node{}}
	return &Node{
		Value: 1,
		Next:  &Node{Value: 2, Next: &Node{Value: 3, Children: []Node{}}},
		Children: []Node{
			{Value: 4, Index: map[string]*Node{"leaf": leaf, "none": nil}},
			{Value: 6, Next: &Node{Value: 7}},
		},
		Index: map[string]*Node{"x": {Value: 8, Children: []Node{{Value: 9}}}},
	}
}

func TestClonesAreDeep(t *testing.T) {
	check(t, "Article", full, clonePtrArticle_Articles)
	check(t, "sparse Article", sparse, clonePtrArticle_Articles)
	check(t, "Article of Drafts", full, clonePtrArticle_Drafts)
	check(t, "Feed", func() []*Article { return []*Article{full(), nil, sparse()} }, cloneSlicePtrArticle_Articles)
	check(t, "Node", tree, clonePtrNode_Articles)
	check(t, "Raw", func() []byte { return []byte{1, 2, 3} }, cloneBytes_Articles)
	check(t, "Index", func() Index { return Index{"a": {1, 2}, "b": nil, "c": {}} }, cloneIndex_Articles)
	check(t, "Authors", func() Authors { return Authors{author("a", "x"), nil} }, cloneAuthors_Articles)
	check(t, "IDs", func() Page[int64] { return Page[int64]{Items: []int64{1, 2}, Next: "n"} }, clonePageOfInt64_Articles)
	check(t, "People", func() Page[*Author] { return Page[*Author]{Items: []*Author{author("p", "q")}} }, clonePageOfPtrAuthor_Articles)
	check(t, "Amount", func() *big.Int { return big.NewInt(-42) }, clonePtrBigInt_Articles)
	check(t, "Tags", func() []Tag { return []Tag{{Name: "t", At: when}} }, cloneSliceTag_Drafts)
	// The Clones of keyspaces whose results the generator copies through the codec.
	check(t, "Opaque", func() ext.Opaque { return ext.NewOpaque("o", "a", "b") }, cloneCodec_Articles[ext.Opaque])
	check(t, "Extra", func() any { return map[string]any{"a": []any{"b", map[string]any{"c": "d"}}} }, cloneCodec_Articles[any])
	// A value whose encoding methods have pointer receivers.
	check(t, "big.Int", func() big.Int { return *big.NewInt(7) }, cloneCodec_Articles[big.Int])
}

// TestNilAndEmpty spells out what DeepEqual checks: nil stays nil, empty
// stays empty, at every depth.
func TestNilAndEmpty(t *testing.T) {
	c := clonePtrArticle_Articles(sparse())
	switch {
	case c.Labels == nil || len(c.Labels) != 0, c.Body == nil, c.Authors == nil, c.Attrs == nil,
		c.Matrix == nil, c.Links[1] == nil, c.Doc.Pages == nil, c.Doc.Index == nil, c.Opaque.Parts() == nil:
		t.Errorf("an empty slice or map became nil: %+v", c)
	case c.Meta != nil, c.Tags != nil, c.ByPoint != nil, c.Links[0] != nil, c.Updated != nil, c.Extra != nil, c.Amount != nil, c.Wrapper.Inner != nil:
		t.Errorf("a nil slice, map or pointer became non-nil: %+v", c)
	}
	f := clonePtrArticle_Articles(full())
	if f.Attrs["nil"] != nil || f.Attrs["empty"] == nil || f.Matrix[1] == nil || f.Matrix[2] != nil || f.Authors[1] != nil || f.ByPoint[Point{3, 4}] != nil {
		t.Errorf("nil and empty elements not kept: %+v", f)
	}
	if clonePtrArticle_Articles(nil) != nil || cloneBytes_Articles(nil) != nil || cloneIndex_Articles(nil) != nil || cloneCodec_Articles[any](nil) != nil {
		t.Error("a nil result was not cloned to nil")
	}
}

// check clones mk() and verifies the copy is deep, both ways.
func check[T any](t *testing.T, name string, mk func() T, clone func(T) T) {
	t.Run(name, func(t *testing.T) {
		orig, want := mk(), mk()
		c := clone(orig)
		if !reflect.DeepEqual(orig, c) {
			t.Fatalf("the clone is not deeply equal to the original:\n%#v\n%#v", orig, c)
		}
		disjoint(t, name, reflect.ValueOf(&orig).Elem(), reflect.ValueOf(&c).Elem())
		if n := mutate(reflect.ValueOf(&c).Elem()); n == 0 {
			t.Fatal("nothing to mutate")
		}
		if !reflect.DeepEqual(orig, want) {
			t.Fatalf("mutating the clone changed the original:\n%#v\n%#v", orig, want)
		}
		c = clone(orig)
		mutate(reflect.ValueOf(&orig).Elem())
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("mutating the original changed the clone:\n%#v\n%#v", c, want)
		}
	})
}

var timeType = reflect.TypeFor[time.Time]()

// disjoint fails when a and b share a pointer, a slice's array or a map.
// time.Time is immutable; its *Location may be shared.
func disjoint(t *testing.T, path string, a, b reflect.Value) {
	t.Helper()
	if a.Kind() != b.Kind() || a.Type() != b.Type() {
		t.Errorf("%s: %v and %v", path, a.Type(), b.Type())
		return
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() != b.IsNil() {
			t.Errorf("%s: nil pointer on one side only", path)
		}
		if a.IsNil() || b.IsNil() {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: pointer shared", path)
			return
		}
		disjoint(t, "*"+path, a.Elem(), b.Elem())
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return
		}
		disjoint(t, path, a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			t.Errorf("%s: nil slice on one side only", path)
		}
		if a.Cap() > 0 && b.Cap() > 0 && a.Pointer() == b.Pointer() {
			t.Errorf("%s: slice array shared", path)
			return
		}
		for i := 0; i < a.Len() && i < b.Len(); i++ {
			disjoint(t, path+"["+strconv.Itoa(i)+"]", a.Index(i), b.Index(i))
		}
	case reflect.Array:
		for i := 0; i < a.Len(); i++ {
			disjoint(t, path+"["+strconv.Itoa(i)+"]", a.Index(i), b.Index(i))
		}
	case reflect.Map:
		if a.IsNil() != b.IsNil() {
			t.Errorf("%s: nil map on one side only", path)
		}
		if a.IsNil() || b.IsNil() {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: map shared", path)
			return
		}
		for _, k := range a.MapKeys() {
			if bv := b.MapIndex(k); bv.IsValid() {
				disjoint(t, path+"[key]", a.MapIndex(k), bv)
			}
		}
	case reflect.Struct:
		if a.Type() == timeType {
			return
		}
		for i := 0; i < a.NumField(); i++ {
			disjoint(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
		}
	}
}

// mutate changes every value reachable from v (which is addressable),
// unexported fields included, and returns how many it changed.
func mutate(v reflect.Value) int {
	if !v.CanSet() && v.CanAddr() {
		v = reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		return mutate(v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return 0
		}
		e := reflect.New(v.Elem().Type()).Elem()
		e.Set(v.Elem())
		n := mutate(e) // in place when e refers to memory (a map, a pointer)
		v.Set(e)
		return n
	case reflect.Slice, reflect.Array:
		n := 0
		for i := 0; i < v.Len(); i++ {
			n += mutate(v.Index(i))
		}
		return n
	case reflect.Map:
		n := 0
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			n += mutate(e)
			v.SetMapIndex(k, e)
		}
		return n
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Minute)))
			return 1
		}
		n := 0
		for i := 0; i < v.NumField(); i++ {
			n += mutate(v.Field(i))
		}
		return n
	case reflect.String:
		v.SetString(v.String() + "!")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(v.Uint() + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 1)
	default:
		return 0
	}
	return 1
}
