package runtime

import (
	"encoding/binary"
	"hash/crc32"
)

// Envelope layout (all integers big-endian); the hit script in scripts.go reads
// the first part, so keep the two in step:
//
//	0     magic 0xCA
//	1     format version
//	2     flags
//	3:11  stored-at, Unix milliseconds (for refresh-ahead)
//	11:19 fill sequence: the invalidation sequence read before the load began
//	19:21 number of dependency markers n
//	      n × (uint16 length, marker key)
//	      uint32 CRC-32C of every other byte of the envelope
//	      payload: msgpack value, or the error text of a not-found entry
const (
	envMagic   = 0xCA
	envVersion = 1
	envFixed   = 21

	flagNil      = 1 << 0 // a nil result with a nil error, cached negatively
	flagNotFound = 1 << 1 // the keyspace's not-found sentinel; payload is the error text
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// envelope is a decoded cache entry.
type envelope struct {
	flags    byte
	storedAt int64
	seq      uint64
	payload  []byte
}

// appendEnvelope encodes an entry after b.
func appendEnvelope(b []byte, flags byte, storedAt int64, seq uint64, deps []string, payload []byte) []byte {
	start := len(b)
	b = append(b, envMagic, envVersion, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(storedAt))
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(deps)))
	for _, d := range deps {
		b = binary.BigEndian.AppendUint16(b, uint16(len(d)))
		b = append(b, d...)
	}
	sum := crc32.Update(crc32.Checksum(b[start:], castagnoli), castagnoli, payload)
	b = binary.BigEndian.AppendUint32(b, sum)
	return append(b, payload...)
}

// decodeEnvelope parses an entry; ok is false for anything truncated,
// corrupted or of another format version.
func decodeEnvelope(b []byte) (e envelope, deps []byte, ok bool) {
	if len(b) < envFixed+4 || b[0] != envMagic || b[1] != envVersion {
		return e, nil, false
	}
	n := int(binary.BigEndian.Uint16(b[19:21]))
	p := envFixed
	for i := 0; i < n; i++ {
		if p+2 > len(b) {
			return e, nil, false
		}
		p += 2 + int(binary.BigEndian.Uint16(b[p:]))
	}
	if p+4 > len(b) {
		return e, nil, false
	}
	sum := crc32.Update(crc32.Checksum(b[:p], castagnoli), castagnoli, b[p+4:])
	if sum != binary.BigEndian.Uint32(b[p:]) {
		return e, nil, false
	}
	e.flags = b[2]
	e.storedAt = int64(binary.BigEndian.Uint64(b[3:11]))
	e.seq = binary.BigEndian.Uint64(b[11:19])
	e.payload = b[p+4:]
	return e, b[envFixed:p], true
}

// eachDep calls f for every marker key in the deps section returned by
// decodeEnvelope (already bounds-checked there).
func eachDep(deps []byte, f func(string)) {
	for len(deps) >= 2 {
		l := int(binary.BigEndian.Uint16(deps))
		f(string(deps[2 : 2+l]))
		deps = deps[2+l:]
	}
}
