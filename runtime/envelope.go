package runtime

import (
	"encoding/binary"
	"hash/crc32"
)

// Envelope layout (all integers big-endian); docs/runtime.md explains each field:
//
//	0     magic 0xCA
//	1     format version
//	2     flags
//	3:9   stored-at, Unix milliseconds, 48 bits (the refresh point is computed from it)
//	9:15  expires-at: stored-at + TTL, Unix milliseconds, 48 bits
//	15:21 incarnation of the invalidation state the entry was filled under, 48 bits
//	21:28 fill seq: the invalidation clock read before the load began, 56 bits
//	28    number of tag markers n, then n × 8-byte marker ids
//	      uint32 CRC-32C of every other byte of the envelope
//	      payload: msgpack value, or the error text of a not-found entry
const (
	envMagic   = 0xCA
	envVersion = 3
	envFixed   = 29
	maxTags    = 255

	flagNil      = 1 << 0 // a nil result with a nil error, cached negatively
	flagNotFound = 1 << 1 // the keyspace's not-found error; payload is the error text
	flagZones    = 1 << 2 // the payload starts with the zone table of its times (zones.go)
	flagErrValue = 1 << 3 // with flagNotFound: payload is uvarint len, text, msgpack of the error value
	flagLocal    = 1 << 4 // every time of the payload is in time.Local (or zero): msgpack decodes them so
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// envelope is a decoded cache entry. tags and payload alias the input.
type envelope struct {
	flags     byte
	storedAt  int64 // ms: when its TTL began
	expiresAt int64 // ms: when its TTL ends, no later than Redis expires the entry (taken before the SET ran)
	inc       uint64
	seq       uint64
	tags      []byte // n × 8-byte marker ids
	payload   []byte
}

// appendEnvelope encodes an entry after b. Callers keep len(tags) ≤ maxTags.
func appendEnvelope(b []byte, flags byte, storedAt, expiresAt int64, inc, seq uint64, tags []uint64, payload []byte) []byte {
	start := len(b)
	b = append(b, envMagic, envVersion, flags)
	b = appendUint(b, uint64(storedAt), 6)
	b = appendUint(b, uint64(expiresAt), 6)
	b = appendUint(b, inc, 6)
	b = appendUint(b, seq, 7)
	b = append(b, byte(len(tags)))
	for _, t := range tags {
		b = binary.BigEndian.AppendUint64(b, t)
	}
	sum := crc32.Update(crc32.Checksum(b[start:], castagnoli), castagnoli, payload)
	b = binary.BigEndian.AppendUint32(b, sum)
	return append(b, payload...)
}

// decodeEnvelope parses an entry; ok is false for anything truncated,
// corrupted or of another format version.
func decodeEnvelope(b []byte) (e envelope, ok bool) {
	if len(b) < envFixed+4 || b[0] != envMagic || b[1] != envVersion {
		return e, false
	}
	p := envFixed + 8*int(b[envFixed-1])
	if p+4 > len(b) {
		return e, false
	}
	sum := crc32.Update(crc32.Checksum(b[:p], castagnoli), castagnoli, b[p+4:])
	if sum != binary.BigEndian.Uint32(b[p:]) {
		return e, false
	}
	e.flags = b[2]
	e.storedAt = int64(readUint(b[3:9]))
	e.expiresAt = int64(readUint(b[9:15]))
	e.inc = readUint(b[15:21])
	e.seq = readUint(b[21:28])
	e.tags = b[envFixed:p]
	e.payload = b[p+4:]
	return e, true
}

// tagAt returns the i-th tag marker id of e.
func (e *envelope) tagAt(i int) uint64 { return binary.BigEndian.Uint64(e.tags[8*i:]) }

// numTags is the number of tag markers of e.
func (e *envelope) numTags() int { return len(e.tags) / 8 }

// appendUint appends the low n bytes of v, big-endian.
func appendUint(b []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func readUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}
