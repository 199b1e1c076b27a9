package runtime

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Hashed placeholders ({filter#}): a value that cannot be spelled into a
// key (a struct, map or slice filter, a long text) is written as a hash of
// its canonical encoding — msgpack with map keys sorted, so nil stays apart
// from empty and equal values hash alike in every process.

// HashLen is the length of a hashed value in a key: 128 bits of SHA-256,
// base64url without padding. n distinct values of one placeholder collide
// with probability below n²/2¹²⁹ (10¹² values: under 2·10⁻¹⁵).
const HashLen = 22

type hasher struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
	h   hash.Hash
	sum [sha256.Size]byte
}

var hashers = sync.Pool{New: func() any {
	h := &hasher{h: sha256.New()}
	h.enc = msgpack.NewEncoder(&h.buf)
	h.enc.SetSortMapKeys(true)
	return h
}}

// AppendHash appends the hash of v's canonical encoding. A value whose
// encoding fails (a custom encoder's error) gets a random hash: its call
// misses and its entry is never read again.
func AppendHash[T any](b []byte, v T) []byte {
	h := hashers.Get().(*hasher)
	defer hashers.Put(h)
	h.buf.Reset()
	h.enc.Reset(&h.buf)
	h.enc.SetSortMapKeys(true)
	if err := h.enc.Encode(&v); err != nil {
		_, _ = rand.Read(h.sum[:])
		return appendSum(b, h.sum[:])
	}
	h.h.Reset()
	h.h.Write(h.buf.Bytes())
	return appendSum(b, h.h.Sum(h.sum[:0]))
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
