// Package ext declares result parts in another package: exported fields are
// copied field by field, unexported ones through the codec.
package ext

import "github.com/vmihailenco/msgpack/v5"

// Doc has exported reference fields only.
type Doc struct {
	Title string
	Pages []Page
	Index map[string]int
}

// Page is an element of Doc.Pages.
type Page struct {
	N     int
	Lines []string
}

// Opaque keeps its parts in an unexported field, which the generated code
// cannot reach: it is copied by runtime.CloneCodec, and encodes the field
// itself so that a decode (and so the codec) keeps it.
type Opaque struct {
	Name  string
	parts []string
}

// NewOpaque returns an Opaque with these parts.
func NewOpaque(name string, parts ...string) Opaque { return Opaque{Name: name, parts: parts} }

// Parts returns the parts (shared, not copied).
func (o Opaque) Parts() []string { return o.parts }

// EncodeMsgpack writes the name and the parts.
func (o Opaque) EncodeMsgpack(e *msgpack.Encoder) error {
	if err := e.EncodeString(o.Name); err != nil {
		return err
	}
	return e.Encode(o.parts)
}

// DecodeMsgpack reads what EncodeMsgpack wrote.
func (o *Opaque) DecodeMsgpack(d *msgpack.Decoder) error {
	var err error
	if o.Name, err = d.DecodeString(); err != nil {
		return err
	}
	return d.Decode(&o.parts)
}

// Wrapper has an exported field of an unexported type: the generated file
// cannot name *inner, so that field goes through the codec.
type Wrapper struct {
	Note  string
	Inner *inner
}

type inner struct {
	Values []int
}

// NewWrapper returns a Wrapper holding values.
func NewWrapper(note string, values ...int) Wrapper {
	return Wrapper{Note: note, Inner: &inner{Values: values}}
}

// Values returns the wrapped values (shared, not copied).
func (w Wrapper) Values() []int {
	if w.Inner == nil {
		return nil
	}
	return w.Inner.Values
}

// Pair is generic in another package: instantiations are named by reflect
// with their type arguments' full package paths.
type Pair[K comparable, V any] struct {
	Key K
	Val V
}
