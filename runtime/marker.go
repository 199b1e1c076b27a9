package runtime

import "encoding/binary"

// A marker is anything an entry can be invalidated by: the namespace, a
// repository, a keyspace (its pattern group), a tag, an entry's own key. It is
// a 64-bit id in the invalidation state's sorted set, never a key of its own,
// so it cannot be evicted apart from the rest of the state. Two names with one
// id (a 64-bit FNV-1a collision) only ever invalidate each other too often:
// more misses, never a stale read.
const (
	markNamespace = 'n'
	markRepo      = 'r'
	markGroup     = 'g'
	markTag       = 't'
	markKey       = 'k'
	markLocal     = 'o' // moved by DeletePattern: what an L1 holds, Redis may no longer
)

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// markerID hashes a marker's kind and name (FNV-1a, stable across processes).
func markerID(kind byte, name string) uint64 {
	h := uint64(fnvOffset)
	h ^= uint64(kind)
	h *= fnvPrime
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= fnvPrime
	}
	return h
}

// memberOf is the sorted-set member of a marker id: its 8 big-endian bytes.
// (The incarnation member, "inc:<13+ digits>", can never be 8 bytes long.)
func memberOf(id uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return string(b[:])
}

// idOf is the inverse of memberOf; ok is false for any other member.
func idOf(member string) (uint64, bool) {
	if len(member) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64([]byte(member)), true
}
