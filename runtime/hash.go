package runtime

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"math"
	"reflect"
	"slices"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Hashed placeholders ({filter#}): a value that cannot be spelled into a
// key (a struct, map or slice filter, a long text) is written as a hash of
// its canonical encoding (canon): map entries sorted, nil apart from empty,
// so equal values hash alike in every process.

// HashLen is the length of a hashed value in a key: 128 bits of SHA-256,
// base64url without padding. n distinct values of one placeholder collide
// with probability below n²/2¹²⁹ (10¹² values: under 2·10⁻¹⁵).
const HashLen = 22

type hasher struct {
	buf []byte
	h   hash.Hash
	sum [sha256.Size]byte
}

var hashers = sync.Pool{New: func() any { return &hasher{h: sha256.New()} }}

// AppendHash appends the hash of v's canonical encoding (canon). A value
// whose encoding fails (a custom encoder's error, a func) gets a random
// hash: its call misses and its entry is never read again.
func AppendHash[T any](b []byte, v T) []byte {
	h := hashers.Get().(*hasher)
	defer hashers.Put(h)
	var ok bool
	h.buf, ok = canon(h.buf[:0], reflect.ValueOf(&v).Elem())
	if !ok {
		_, _ = rand.Read(h.sum[:])
		return appendSum(b, h.sum[:])
	}
	h.h.Reset()
	h.h.Write(h.buf)
	return appendSum(b, h.h.Sum(h.sum[:0]))
}

// canon appends the canonical encoding of v: equal values encode alike —
// map entries sorted by their keys' encoding, whatever order the maps were
// filled in (msgpack's SetSortMapKeys sorts only a few map types) — and the
// encoding is injective for one type: nil apart from empty, every length
// written before what it counts. A string is msgpack's (header, bytes), as
// AppendHashString hashes it.
func canon(b []byte, v reflect.Value) ([]byte, bool) {
	t := v.Type()
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && ownCodec(t) {
		var p []byte
		var err error
		if v.CanAddr() {
			p, err = msgpack.Marshal(v.Addr().Interface())
		} else {
			p, err = msgpack.Marshal(v.Interface())
		}
		if err != nil {
			return b, false
		}
		return append(binary.AppendUvarint(b, uint64(len(p))), p...), true
	}
	switch t.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return append(b, 1), true
		}
		return append(b, 0), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.BigEndian.AppendUint64(b, uint64(v.Int())), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.BigEndian.AppendUint64(b, v.Uint()), true
	case reflect.Float32, reflect.Float64:
		return binary.BigEndian.AppendUint64(b, math.Float64bits(v.Float())), true
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(real(c)))
		return binary.BigEndian.AppendUint64(b, math.Float64bits(imag(c))), true
	case reflect.String:
		return appendStrHeader(b, v.Len(), v.String()), true
	case reflect.Pointer:
		if v.IsNil() {
			return append(b, 0), true
		}
		return canon(append(b, 1), v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return append(b, 0), true
		}
		e := v.Elem()
		b = appendStrHeader(append(b, 1), len(e.Type().String()), e.Type().String())
		return canon(b, e)
	case reflect.Slice:
		if v.IsNil() {
			return append(b, 0), true
		}
		b = binary.AppendUvarint(append(b, 1), uint64(v.Len()))
		if t.Elem().Kind() == reflect.Uint8 && !ownCodec(t.Elem()) {
			return append(b, v.Bytes()...), true
		}
		return canonElems(b, v)
	case reflect.Array:
		return canonElems(b, v)
	case reflect.Map:
		if v.IsNil() {
			return append(b, 0), true
		}
		b = binary.AppendUvarint(append(b, 1), uint64(v.Len()))
		type pair struct{ k, v []byte }
		pairs := make([]pair, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			k, ok := canon(nil, it.Key())
			if !ok {
				return b, false
			}
			e, ok := canon(nil, it.Value())
			if !ok {
				return b, false
			}
			pairs = append(pairs, pair{k, e})
		}
		slices.SortFunc(pairs, func(x, y pair) int { return bytes.Compare(x.k, y.k) })
		for _, p := range pairs {
			b = append(binary.AppendUvarint(b, uint64(len(p.k))), p.k...)
			b = append(binary.AppendUvarint(b, uint64(len(p.v))), p.v...)
		}
		return b, true
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if (!f.IsExported() && !f.Anonymous) || f.Tag.Get("msgpack") == "-" {
				continue
			}
			var ok bool
			if b, ok = canon(b, v.Field(i)); !ok {
				return b, false
			}
		}
		return b, true
	}
	return b, false // chan, func, unsafe.Pointer
}

func canonElems(b []byte, v reflect.Value) ([]byte, bool) {
	for i := range v.Len() {
		var ok bool
		if b, ok = canon(b, v.Index(i)); !ok {
			return b, false
		}
	}
	return b, true
}

// appendStrHeader appends msgpack's string header for n bytes, then s.
func appendStrHeader(b []byte, n int, s string) []byte {
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 1<<8:
		b = append(b, 0xd9, byte(n))
	case n < 1<<16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

// AppendHashString is AppendHash for a string, without reflection: the
// same bytes are hashed (msgpack's string header, then the string).
func AppendHashString(b []byte, s string) []byte {
	h := hashers.Get().(*hasher)
	defer hashers.Put(h)
	var hdr [5]byte
	n := len(s)
	var head []byte
	switch {
	case n < 32:
		head = append(hdr[:0], 0xa0|byte(n))
	case n < 1<<8:
		head = append(hdr[:0], 0xd9, byte(n))
	case n < 1<<16:
		head = append(hdr[:0], 0xda, byte(n>>8), byte(n))
	default:
		head = append(hdr[:0], 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	h.h.Reset()
	h.h.Write(head)
	h.h.Write([]byte(s))
	return appendSum(b, h.h.Sum(h.sum[:0]))
}

func appendSum(b, sum []byte) []byte {
	return base64.RawURLEncoding.AppendEncode(b, sum[:16])
}
