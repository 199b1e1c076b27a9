package runtime

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Times keep their location across a round trip (docs/runtime.md,
// "Payloads"): msgpack's timestamp holds the instant only, so the zones of a
// value's times travel in a table in front of the msgpack bytes, in the order
// a walk of the value meets them.

// timeWalk visits every time.Time of a value in a fixed order. set is true
// when the visitor changes the times (a decode); map values are then written
// back, which a walk that only reads (an encode) must not do.
type timeWalk func(v reflect.Value, set bool, visit func(*time.Time))

var (
	timeType = reflect.TypeFor[time.Time]()
	walks    sync.Map // reflect.Type -> *walkEntry
)

type walkEntry struct{ w timeWalk } // w nil: the type holds no time

// timeWalkOf returns the walk of t, or nil when no value of t holds a time.
func timeWalkOf(t reflect.Type) timeWalk {
	if e, ok := walks.Load(t); ok {
		return e.(*walkEntry).w
	}
	b := &walkBuilder{building: map[reflect.Type]*timeWalk{}}
	w := b.build(t)
	e, _ := walks.LoadOrStore(t, &walkEntry{w})
	return e.(*walkEntry).w
}

type walkBuilder struct {
	building map[reflect.Type]*timeWalk // recursive types: filled once built
}

var (
	customEncoder = reflect.TypeFor[msgpack.CustomEncoder]()
	marshaler     = reflect.TypeFor[msgpack.Marshaler]()
	binMarshaler  = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// ownCodec reports whether msgpack encodes t through t's own methods: its
// times, if any, are its business.
func ownCodec(t reflect.Type) bool {
	for _, i := range []reflect.Type{customEncoder, marshaler, binMarshaler, textMarshaler} {
		if t.Implements(i) || t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}

func (b *walkBuilder) build(t reflect.Type) timeWalk {
	if t == timeType {
		return func(v reflect.Value, _ bool, visit func(*time.Time)) {
			visit(v.Addr().Interface().(*time.Time))
		}
	}
	if p, ok := b.building[t]; ok {
		// A recursive type: the walk is the one being built.
		return func(v reflect.Value, set bool, visit func(*time.Time)) {
			if *p != nil {
				(*p)(v, set, visit)
			}
		}
	}
	if t.Kind() != reflect.Pointer && ownCodec(t) {
		return nil
	}
	slot := new(timeWalk)
	b.building[t] = slot
	defer delete(b.building, t)
	var w timeWalk
	switch t.Kind() {
	case reflect.Pointer:
		if elem := b.build(t.Elem()); elem != nil {
			w = func(v reflect.Value, set bool, visit func(*time.Time)) {
				if !v.IsNil() {
					elem(v.Elem(), set, visit)
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if elem := b.build(t.Elem()); elem != nil {
			w = func(v reflect.Value, set bool, visit func(*time.Time)) {
				for i := range v.Len() {
					elem(v.Index(i), set, visit)
				}
			}
		}
	case reflect.Map:
		if elem := b.build(t.Elem()); elem != nil {
			w = func(v reflect.Value, set bool, visit func(*time.Time)) {
				for _, k := range sortedKeys(v) {
					// Map values are not addressable: walk a copy, and put
					// it back when the walk changes it.
					c := reflect.New(t.Elem()).Elem()
					c.Set(v.MapIndex(k))
					elem(c, set, visit)
					if set {
						v.SetMapIndex(k, c)
					}
				}
			}
		}
	case reflect.Struct:
		type field struct {
			i int
			w timeWalk
		}
		var fields []field
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			if name, _, _ := strings.Cut(f.Tag.Get("msgpack"), ","); name == "-" {
				continue
			}
			if fw := b.build(f.Type); fw != nil {
				fields = append(fields, field{i, fw})
			}
		}
		if len(fields) > 0 {
			w = func(v reflect.Value, set bool, visit func(*time.Time)) {
				for _, f := range fields {
					f.w(v.Field(f.i), set, visit)
				}
			}
		}
	}
	*slot = w
	return w
}

// sortedKeys orders the keys of a map so that an encode and a decode of the
// same map walk its values in the same order: by value for the basic kinds,
// else by their msgpack encoding.
func sortedKeys(m reflect.Value) []reflect.Value {
	keys := m.MapKeys()
	if len(keys) < 2 {
		return keys
	}
	var less func(a, b reflect.Value) bool
	switch m.Type().Key().Kind() {
	case reflect.String:
		less = func(a, b reflect.Value) bool { return a.String() < b.String() }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		less = func(a, b reflect.Value) bool { return a.Int() < b.Int() }
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		less = func(a, b reflect.Value) bool { return a.Uint() < b.Uint() }
	case reflect.Bool:
		less = func(a, b reflect.Value) bool { return !a.Bool() && b.Bool() }
	default:
		enc := make([][]byte, len(keys))
		for i, k := range keys {
			enc[i], _ = msgpack.Marshal(k.Interface())
		}
		idx := make([]int, len(keys))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return bytes.Compare(enc[idx[a]], enc[idx[b]]) < 0 })
		out := make([]reflect.Value, len(keys))
		for i, j := range idx {
			out[i] = keys[j]
		}
		return out
	}
	sort.SliceStable(keys, func(a, b int) bool { return less(keys[a], keys[b]) })
	return keys
}

// zone is where one time was: its location's name, and the abbreviation and
// offset that location gave its instant.
type zone struct {
	name, abbr string
	offset     int
}

func zoneOf(t time.Time) zone {
	abbr, off := t.Zone()
	return zone{t.Location().String(), abbr, off}
}

var utcZone = zone{"UTC", "UTC", 0}

// allLocal reports whether every time w finds in v is in time.Local, or is
// the zero time (which msgpack decodes into UTC, as it was), and at least
// one is in time.Local: msgpack's decode gives such a value back as it was.
func allLocal(w timeWalk, v reflect.Value) bool {
	local, other := false, false
	w(v, false, func(t *time.Time) {
		switch {
		case t.Location() == time.Local && !t.IsZero():
			local = true
		case t.IsZero() && t.Location() == time.UTC:
		default:
			other = true
		}
	})
	return local && !other
}

// appendZones appends the zone table of the times w finds in v, or returns
// b unchanged (ok false) when every time is in UTC.
func appendZones(b []byte, w timeWalk, v reflect.Value) ([]byte, bool) {
	var zones []zone
	var idx []int
	w(v, false, func(t *time.Time) {
		z := zoneOf(*t)
		i := 0
		for i < len(zones) && zones[i] != z {
			i++
		}
		if i == len(zones) {
			zones = append(zones, z)
		}
		idx = append(idx, i)
	})
	if len(zones) == 0 || len(zones) == 1 && zones[0] == utcZone {
		return b, false
	}
	var t []byte
	t = binary.AppendUvarint(t, uint64(len(zones)))
	for _, z := range zones {
		t = binary.AppendUvarint(t, uint64(len(z.name)))
		t = append(t, z.name...)
		t = binary.AppendUvarint(t, uint64(len(z.abbr)))
		t = append(t, z.abbr...)
		t = binary.AppendVarint(t, int64(z.offset))
	}
	t = binary.AppendUvarint(t, uint64(len(idx)))
	if len(zones) > 1 {
		for _, i := range idx {
			t = binary.AppendUvarint(t, uint64(i))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(t)))
	return append(b, t...), true
}

// splitZones cuts the zone table off a payload: the table and the msgpack
// bytes after it.
func splitZones(p []byte) (table, rest []byte, ok bool) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return nil, nil, false
	}
	return p[k : k+int(n)], p[k+int(n):], true
}

// applyZones puts every time w finds in v into its zone from table (nil:
// every time in UTC); false when the table does not fit the value.
func applyZones(table []byte, w timeWalk, v reflect.Value) bool {
	if table == nil {
		w(v, true, func(t *time.Time) { *t = t.UTC() })
		return true
	}
	r := zoneReader{b: table}
	nz := r.uvarint()
	if nz == 0 || nz > uint64(len(table)) {
		return false
	}
	zones := make([]zone, nz)
	locs := make([]*time.Location, nz)
	for i := range zones {
		zones[i].name = r.str()
		zones[i].abbr = r.str()
		zones[i].offset = int(r.varint())
	}
	n := r.uvarint()
	if r.bad || n > uint64(len(table))*8+1 {
		return false
	}
	seen, ok := uint64(0), true
	w(v, true, func(t *time.Time) {
		if seen >= n {
			ok = false
			return
		}
		seen++
		i := uint64(0)
		if nz > 1 {
			i = r.uvarint()
			if r.bad || i >= nz {
				ok = false
				return
			}
		}
		*t = inZone(*t, zones[i], &locs[i])
	})
	return ok && seen == n && !r.bad && r.off == len(table)
}

// inZone returns t in the location z names when that location gives the
// instant z's abbreviation and offset, else in a fixed zone with them.
func inZone(t time.Time, z zone, loc **time.Location) time.Time {
	if *loc == nil {
		*loc = namedLocation(z.name)
		if *loc == nil {
			*loc = time.FixedZone(z.abbr, z.offset)
		}
	}
	if tt := t.In(*loc); sameZone(tt, z) {
		return tt
	}
	// The reader's tz database gives this instant another zone than the
	// writer's did: the same instant and offset, in a fixed zone.
	return t.In(time.FixedZone(z.abbr, z.offset))
}

func sameZone(t time.Time, z zone) bool {
	abbr, off := t.Zone()
	return abbr == z.abbr && off == z.offset
}

var locations sync.Map // name -> *time.Location, or nil for a name that does not load

// namedLocation loads a location by name once per process.
func namedLocation(name string) *time.Location {
	switch name {
	case "UTC":
		return time.UTC
	case "Local":
		return time.Local
	case "":
		return nil
	}
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		l = nil
	}
	locations.Store(name, l)
	return l
}

// zoneReader reads varints and strings off a byte slice; bad once anything is
// truncated.
type zoneReader struct {
	b   []byte
	off int
	bad bool
}

func (r *zoneReader) uvarint() uint64 {
	v, k := binary.Uvarint(r.b[r.off:])
	if k <= 0 {
		r.bad = true
		return 0
	}
	r.off += k
	return v
}

func (r *zoneReader) varint() int64 {
	v, k := binary.Varint(r.b[r.off:])
	if k <= 0 {
		r.bad = true
		return 0
	}
	r.off += k
	return v
}

func (r *zoneReader) str() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)-r.off) {
		r.bad = true
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}
