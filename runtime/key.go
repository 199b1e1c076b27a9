package runtime

import "strconv"

// Key is a complete Redis key of one cache entry, built by Keyspace.AppendPrefix,
// the Append* functions and Keyspace.Key. Generated code builds it; users rarely
// need to.
type Key string

// escaped reports whether c must be escaped in a value placed into a key or tag.
// The set covers the key separator, Redis glob metacharacters, Cluster hash-tag
// braces, the escape character itself, and control and space bytes, so a value
// can never collide with another key, widen a pattern, or pick a hash slot.
func escaped(c byte) bool {
	switch c {
	case ':', '*', '?', '[', ']', '{', '}', '\\', '%':
		return true
	}
	return c <= ' ' || c == 0x7f
}

const hexDigits = "0123456789ABCDEF"

// AppendString appends s to b, percent-escaping every byte that has a meaning in
// keys or patterns. The encoding is injective: distinct strings never encode alike.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if escaped(c) {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// AppendBytes is AppendString for a byte slice (the output of MarshalText).
func AppendBytes(b []byte, p []byte) []byte {
	for _, c := range p {
		if escaped(c) {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// AppendInt appends the decimal form of i.
func AppendInt(b []byte, i int64) []byte { return strconv.AppendInt(b, i, 10) }

// AppendUint appends the decimal form of u.
func AppendUint(b []byte, u uint64) []byte { return strconv.AppendUint(b, u, 10) }

// AppendBool appends "true" or "false".
func AppendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

// EscapeGlob returns s with Redis glob metacharacters backslash-escaped, for
// building a DeletePattern glob from a raw string that did not go through
// AppendString.
func EscapeGlob(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
