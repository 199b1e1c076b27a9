package runtime

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

type hashFilter struct {
	Status []string
	Labels map[string]string
	Owner  *int64
	Text   string
}

// Equal values hash alike (map order does not matter); nil and empty, and
// every field, tell values apart; strings hash as AppendHash does, and the
// hash never needs escaping.
func TestAppendHash(t *testing.T) {
	one := int64(1)
	m1 := map[string]string{}
	m2 := map[string]string{}
	for i := range 50 {
		k := strings.Repeat("k", i)
		m1[k] = k
	}
	for i := 49; i >= 0; i-- {
		k := strings.Repeat("k", i)
		m2[k] = k
	}
	if a, b := string(AppendHash(nil, hashFilter{Labels: m1})), string(AppendHash(nil, hashFilter{Labels: m2})); a != b {
		t.Fatalf("equal maps hash differently: %s %s", a, b)
	}
	distinct := []hashFilter{
		{}, {Status: []string{}}, {Status: []string{""}}, {Status: []string{"a"}}, {Status: []string{"a", "b"}}, {Status: []string{"ab"}},
		{Labels: map[string]string{}}, {Labels: map[string]string{"a": ""}}, {Owner: &one}, {Owner: new(int64)}, {Text: "x"},
	}
	seen := map[string]int{}
	for i, f := range distinct {
		h := string(AppendHash(nil, f))
		if len(h) != HashLen {
			t.Fatalf("hash %q has length %d, want %d", h, len(h), HashLen)
		}
		if string(AppendString(nil, h)) != h {
			t.Fatalf("hash %q needs escaping", h)
		}
		if j, dup := seen[h]; dup {
			t.Fatalf("%+v and %+v hash alike", distinct[j], f)
		}
		seen[h] = i
	}
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536, 700 << 10} {
		s := strings.Repeat("é", n/2) + strings.Repeat("x", n%2)
		if a, b := string(AppendHashString(nil, s)), string(AppendHash(nil, s)); a != b {
			t.Fatalf("len %d: AppendHashString %s, AppendHash %s", len(s), a, b)
		}
	}
	if a, b := AppendHash(nil, []byte(nil)), AppendHash(nil, []byte{}); string(a) == string(b) {
		t.Fatal("nil and empty []byte hash alike")
	}
}

type typeNameBox[T any] struct{ V T }

// TypeName spells types by package path, type arguments included.
func TestTypeName(t *testing.T) {
	for got, want := range map[string]string{
		TypeName[int64]():                    "int64",
		TypeName[hashFilter]():               "github.com/cachegen/cachegen/runtime.hashFilter",
		TypeName[*[]map[string]hashFilter](): "*[]map[string]github.com/cachegen/cachegen/runtime.hashFilter",
		TypeName[typeNameBox[hashFilter]]():  "github.com/cachegen/cachegen/runtime.typeNameBox[github.com/cachegen/cachegen/runtime.hashFilter]",
		TypeName[[2]typeNameBox[*int]]():     "[2]github.com/cachegen/cachegen/runtime.typeNameBox[*int]",
	} {
		if got != want {
			t.Errorf("TypeName = %q, want %q", got, want)
		}
	}
}

// TestAppendHashMapOrder: equal values hash alike whatever order their maps
// were filled in — every map type, nested too (msgpack's SetSortMapKeys sorts
// only map[string]string, map[string]bool and map[string]any; found by the
// review of issue 14: an evict spelled another key than the fill, and an
// entry outlived its write).
func TestAppendHashMapOrder(t *testing.T) {
	type filter struct {
		Tags  map[string]int
		Teams map[int64]bool
		Deep  map[string][]int
		Ptr   *map[uint8]string
	}
	mk := func(order []int) filter {
		f := filter{Tags: map[string]int{}, Teams: map[int64]bool{}, Deep: map[string][]int{}}
		m := map[uint8]string{}
		for _, i := range order {
			f.Tags["t"+strconv.Itoa(i)] = i
			f.Teams[int64(i)] = i%2 == 0
			f.Deep["d"+strconv.Itoa(i)] = []int{i, i}
			m[uint8(i)] = strconv.Itoa(i)
		}
		f.Ptr = &m
		return f
	}
	want := string(AppendHash(nil, mk([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})))
	for range 50 {
		order := rand.Perm(10)
		if got := string(AppendHash(nil, mk(order))); got != want {
			t.Fatalf("order %v hashes %s, want %s", order, got, want)
		}
	}
	distinct := map[string]bool{}
	for _, v := range []filter{{}, {Tags: map[string]int{}}, {Tags: map[string]int{"": 0}}, {Deep: map[string][]int{"a": nil}}, {Deep: map[string][]int{"a": {}}}} {
		distinct[string(AppendHash(nil, v))] = true
	}
	if len(distinct) != 5 {
		t.Fatalf("nil, empty and zero-valued maps hash alike: %d distinct of 5", len(distinct))
	}
	type slug string
	if string(AppendHash(nil, "abc")) != string(AppendHashString(nil, "abc")) || string(AppendHash(nil, slug("abc"))) != string(AppendHashString(nil, "abc")) {
		t.Fatal("a string hashes differently through AppendHash and AppendHashString")
	}
}
