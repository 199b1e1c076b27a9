package runtime

import (
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
