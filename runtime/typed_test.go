package runtime

import (
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestPointerSpecCopiesEveryField: the protocol's Spec[*T] carries every
// field of the Spec[T] generated code wrote (a field added to Spec must be
// added to pointerSpec), and IsNil and Clone work through the pointer.
func TestPointerSpecCopiesEveryField(t *testing.T) {
	var s Spec[[]int]
	sv := reflect.ValueOf(&s).Elem()
	for i := range sv.NumField() {
		f := sv.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(sv.Type().Field(i).Name)
		case reflect.Int64:
			f.SetInt(int64(i+1) * int64(time.Second))
		case reflect.Float64:
			f.SetFloat(0.5)
		}
	}
	s.Jitter = Percent(10)
	s.NotFound = errors.New("gone")
	s.NotFoundAs = ErrorType[*notFoundError]()
	s.NotFoundIf = func(error) bool { return true }
	s.IsNil = func(v []int) bool { return v == nil }
	s.Clone = func(v []int) []int { return append([]int(nil), v...) }
	for i := range sv.NumField() {
		if sv.Field(i).IsZero() {
			t.Fatalf("the test sets no value for Spec.%s", sv.Type().Field(i).Name)
		}
	}
	p := pointerSpec(s)
	pv := reflect.ValueOf(p)
	for i := range sv.NumField() {
		name := sv.Type().Field(i).Name
		got, want := pv.FieldByName(name), sv.Field(i)
		switch name {
		case "IsNil", "Clone":
			if got.IsNil() {
				t.Errorf("Spec[*T].%s is nil", name)
			}
		case "NotFoundIf":
			if got.IsNil() {
				t.Errorf("Spec[*T].NotFoundIf is nil")
			}
		default:
			if !reflect.DeepEqual(got.Interface(), want.Interface()) {
				t.Errorf("Spec[*T].%s = %v, want %v", name, got.Interface(), want.Interface())
			}
		}
	}
	v := []int{1, 2}
	var nilSlice []int
	if !p.IsNil(nil) || !p.IsNil(&nilSlice) || p.IsNil(&v) {
		t.Error("Spec[*T].IsNil: nil pointer and nil slice are nil results, a slice is not")
	}
	c := p.Clone(&v)
	(*c)[0] = 9
	if v[0] != 1 || p.Clone(nil) != nil {
		t.Errorf("Spec[*T].Clone shares its result: %v", v)
	}
	if q := pointerSpec(Spec[int]{}); q.IsNil == nil || q.IsNil(new(int)) || !q.IsNil(nil) || q.Clone != nil {
		t.Error("Spec[*int]: IsNil is v == nil, no Clone")
	}
}

type pinRow struct {
	ID   int64
	Name string
	Tags []string
	At   time.Time
}

// TestWireUnchangedByTypedLayer pins the keys and payloads of non-pointer
// result types as the runtime wrote them before the protocol ran over *T
// (the values below were printed by that version): entries it wrote are
// read by this one, and the other way round.
func TestWireUnchangedByTypedLayer(t *testing.T) {
	c := newTestCache(t, redisClient(t), WithNamespace("pin"))
	r := c.Repo("pin", 1)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	row := pinRow{ID: 7, Name: "a", Tags: []string{"x"}, At: at}
	one := NewKeyspace(r, Spec[pinRow]{Template: "o:{}", Schema: "s1", TTL: time.Hour})
	list := NewKeyspace(r, Spec[[]pinRow]{Template: "l:{}", Schema: "s2", TTL: time.Hour, IsNil: func(v []pinRow) bool { return v == nil }})
	m := NewKeyspace(r, Spec[map[string]int]{Template: "m:{}", Schema: "s3", TTL: time.Hour})
	check := func(name, prefix, wantPrefix string, flags byte, payload []byte, err error, wantFlags byte, wantHex string) {
		t.Helper()
		if prefix != wantPrefix {
			t.Errorf("%s: key prefix %q, want %q", name, prefix, wantPrefix)
		}
		if err != nil || flags != wantFlags || hex.EncodeToString(payload) != wantHex {
			t.Errorf("%s: payload %d %x (%v), want %d %s", name, flags, payload, err, wantFlags, wantHex)
		}
	}
	f, p, err := one.encode(row)
	check("struct", string(one.AppendPrefix(nil)), "pin:e:{pin:1:JWJJu5JP:", f, p, err, 4,
		"080101580158a0380184a24944d30000000000000007a44e616d65a161a45461677391a178a24174d6ff69572795")
	if v, _, ok := one.decode(envelope{flags: f, payload: p}); !ok || v.At.String() != at.String() || v.Name != "a" {
		t.Errorf("struct: decoded %+v, %v", v, ok)
	}
	f, p, err = list.encode([]pinRow{row, {ID: 8, At: at.UTC()}})
	check("slice", string(list.AppendPrefix(nil)), "pin:e:{pin:1:4wQpe0qX:", f, p, err, 4,
		"130201580158a0380355544303555443000200019284a24944d30000000000000007a44e616d65a161a45461677391a178a24174d6ff6957279584a24944d30000000000000008a44e616d65a0a454616773c0a24174d6ff69572795")
	f, p, err = m.encode(map[string]int{"a": 1})
	check("map", string(m.AppendPrefix(nil)), "pin:e:{pin:1:V0BMwTMd:", f, p, err, 0, "81a16101")
}
