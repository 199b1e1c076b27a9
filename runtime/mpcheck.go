package runtime

import "encoding/binary"

// maxDepth bounds container nesting; msgpack's decoder recurses per level.
const maxDepth = 100

// validMsgpack reports whether b holds exactly one well-formed msgpack value
// whose every declared length fits in the bytes that remain. msgpack v5 trusts
// array and map headers when it allocates (a 5-byte array32 header asks for
// gigabytes), so decoding only what passes here keeps allocation proportional
// to the entry's size.
func validMsgpack(b []byte) bool {
	var stack [maxDepth]uint64 // items left in each open container
	depth := 0
	p := 0
	for {
		if p >= len(b) {
			return false
		}
		c := b[p]
		p++
		var skip, items uint64
		switch {
		case c <= 0x7f || c >= 0xe0: // fixint
		case c <= 0x8f:
			items = 2 * uint64(c&0x0f)
		case c <= 0x9f:
			items = uint64(c & 0x0f)
		case c <= 0xbf:
			skip = uint64(c & 0x1f)
		default:
			var ok bool
			skip, items, p, ok = longHeader(b, c, p)
			if !ok {
				return false
			}
		}
		rest := uint64(len(b) - p)
		if skip > rest || items > rest {
			return false
		}
		p += int(skip)
		if items > 0 {
			if depth == maxDepth {
				return false
			}
			stack[depth] = items
			depth++
			continue
		}
		// One item done: close every container it completes.
		for depth > 0 {
			stack[depth-1]--
			if stack[depth-1] > 0 {
				break
			}
			depth--
		}
		if depth == 0 {
			return p == len(b)
		}
	}
}

// longHeader decodes the header of the 0xc0–0xdf formats: the bytes to skip,
// the items that follow, and the position after the header.
func longHeader(b []byte, c byte, p int) (skip, items uint64, next int, ok bool) {
	size := func(n int) (uint64, bool) {
		if p+n > len(b) {
			return 0, false
		}
		var v uint64
		switch n {
		case 1:
			v = uint64(b[p])
		case 2:
			v = uint64(binary.BigEndian.Uint16(b[p:]))
		case 4:
			v = uint64(binary.BigEndian.Uint32(b[p:]))
		}
		p += n
		return v, true
	}
	var v uint64
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return 0, 0, p, true
	case 0xc4, 0xd9: // bin8, str8
		v, ok = size(1)
		return v, 0, p, ok
	case 0xc5, 0xda:
		v, ok = size(2)
		return v, 0, p, ok
	case 0xc6, 0xdb:
		v, ok = size(4)
		return v, 0, p, ok
	case 0xc7: // ext8: length, type, data
		v, ok = size(1)
		return v + 1, 0, p, ok
	case 0xc8:
		v, ok = size(2)
		return v + 1, 0, p, ok
	case 0xc9:
		v, ok = size(4)
		return v + 1, 0, p, ok
	case 0xca, 0xce, 0xd2:
		return 4, 0, p, true
	case 0xcb, 0xcf, 0xd3:
		return 8, 0, p, true
	case 0xcc, 0xd0:
		return 1, 0, p, true
	case 0xcd, 0xd1:
		return 2, 0, p, true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 plus the type byte
		return 1 + 1<<(c-0xd4), 0, p, true
	case 0xdc:
		v, ok = size(2)
		return 0, v, p, ok
	case 0xdd:
		v, ok = size(4)
		return 0, v, p, ok
	case 0xde:
		v, ok = size(2)
		return 0, 2 * v, p, ok
	case 0xdf:
		v, ok = size(4)
		return 0, 2 * v, p, ok
	}
	return 0, 0, p, false // 0xc1 is never used
}
