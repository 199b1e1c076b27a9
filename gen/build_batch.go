package gen

import (
	"go/types"

	"github.com/cachegen/cachegen/annotations"
)

// A get whose key names a slice parameter is a batch read: GetMany(ctx, ids
// []K) (map[K]V, error) reads and fills the entries of the template one id
// at a time (docs/annotations.md, "Batch reads").

// isBatchSlice reports a parameter type that makes a batch: a slice that is
// not itself a key value ([]byte, a named slice with MarshalText or String).
func isBatchSlice(t types.Type) (elem types.Type, ok bool) {
	if _, _, _, _, keyable := keyKind(t); keyable {
		return nil, false
	}
	s, isSlice := t.Underlying().(*types.Slice)
	if !isSlice {
		return nil, false
	}
	return s.Elem(), true
}

// batch recognises a batch read and checks its shape. It returns the method
// as its key and tags see it — the slice parameter replaced by one element —
// or nil when m is not a batch read; ok is false after an error.
func (b *builder) batch(m *Method, dm *annotations.Method) (em *Method, ok bool) {
	var slice *Param
	var at annotations.Part
	for _, ph := range dm.Key.Placeholders() {
		p := m.param(ph.Path[0])
		if p == nil || p.Context || ph.Hash { // {ids#} is one hash of the whole slice
			continue
		}
		if _, isSlice := isBatchSlice(p.Type); !isSlice {
			continue
		}
		if slice != nil && slice != p {
			b.errorf(ph.Pos, "%s: a batch key names one slice parameter, found %s and %s", m.Name, slice.ref(), p.ref())
			return nil, false
		}
		slice, at = p, ph
	}
	if slice == nil {
		return nil, true
	}
	elem, _ := isBatchSlice(slice.Type)
	ok = true
	if len(m.Results) > 2 {
		b.errorf(m.Pos, "%s: a batch read returns (map[%s]V, error), found %d results: one entry per id holds one value", m.Name, b.typeString(elem), len(m.Results))
		return nil, false
	}
	if _, isPtr := elem.Underlying().(*types.Pointer); isPtr {
		b.errorf(at.Pos, "%s: the ids of a batch read are values, not pointers (%s): the result map would be keyed by addresses", m.Name, b.typeString(slice.Type))
		ok = false
	}
	if n := len(dm.Key.Placeholders()); n != 1 {
		b.errorf(dm.KeyArg.ValuePos, "%s: the batch key %q may name only its slice parameter {%s}: every other placeholder would be one value for all ids", m.Name, dm.Key.Text, slice.ref())
		ok = false
	}
	if len(at.Path) > 1 {
		b.errorf(at.Pos, "%s: placeholder {%s}: a batch key names the slice parameter itself, {%s}", m.Name, at.Name(), slice.ref())
		ok = false
	}
	named := map[string]bool{}
	for _, ph := range dm.Key.Placeholders() {
		named[ph.Path[0]] = true
	}
	for _, p := range m.Params {
		if !p.Context && p != slice && !named[p.ref()] { // a named one has its error above
			b.errorf(m.Pos, "%s: a batch read takes (ctx, %s) only: parameter %s is in no key, so ids would share entries across its values", m.Name, slice.ref(), p.ref())
			ok = false
		}
	}
	mt, isMap := m.Results[0].Underlying().(*types.Map)
	if !isMap || !types.Identical(mt.Key(), elem) {
		b.errorf(m.Pos, "%s: a batch read over %s %s returns (map[%s]V, error), found %s", m.Name, slice.ref(), b.typeString(slice.Type), b.typeString(elem), b.typeString(m.Results[0]))
		ok = false
	}
	if _, isTP := types.Unalias(elem).(*types.TypeParam); isTP {
		if !isMap || !types.Identical(mt.Key(), elem) {
			ok = false
		}
	}
	if !ok {
		return nil, false
	}
	one := &Param{Orig: slice.Orig, Pos: slice.Pos, Type: elem}
	em = &Method{Name: m.Name, Verb: m.Verb, Pos: m.Pos, Results: []types.Type{mt.Elem(), m.Results[1]}}
	for _, p := range m.Params {
		if p == slice {
			em.Params = append(em.Params, one)
		} else {
			em.Params = append(em.Params, p)
		}
	}
	m.Batch = &BatchRead{Slice: slice, Elem: one, Map: m.Results[0], Value: mt.Elem()}
	return em, true
}
