package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strconv"
	"strings"
)

// SchemaOf returns a hash of T's shape (kinds, names, fields, struct tags,
// recursively). The generator computes this at generation time for concrete
// types; generated code calls SchemaOf only for results that depend on the
// interface's type parameters, once, in the constructor.
func SchemaOf[T any]() string {
	var b strings.Builder
	describe(&b, reflect.TypeFor[T](), map[reflect.Type]int{})
	h := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(h[:8])
}

func describe(b *strings.Builder, t reflect.Type, seen map[reflect.Type]int) {
	if n, ok := seen[t]; ok {
		b.WriteString("@" + strconv.Itoa(n))
		return
	}
	if t.Name() != "" {
		seen[t] = len(seen)
		b.WriteString(t.PkgPath() + "." + t.Name() + "=")
	}
	b.WriteString(t.Kind().String())
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice:
		b.WriteByte('(')
		describe(b, t.Elem(), seen)
		b.WriteByte(')')
	case reflect.Array:
		b.WriteString("[" + strconv.Itoa(t.Len()) + "](")
		describe(b, t.Elem(), seen)
		b.WriteByte(')')
	case reflect.Map:
		b.WriteByte('(')
		describe(b, t.Key(), seen)
		b.WriteByte(',')
		describe(b, t.Elem(), seen)
		b.WriteByte(')')
	case reflect.Struct:
		b.WriteByte('{')
		for i := range t.NumField() {
			f := t.Field(i)
			b.WriteString(f.Name + " ")
			describe(b, f.Type, seen)
			b.WriteString(" " + strconv.Quote(string(f.Tag)) + ";")
		}
		b.WriteByte('}')
	}
}
