package runtime

// Tests read and write entries of a Keyspace[T] in T's terms.

// decode is keyspace.decode with the value as a T.
func (ks *Keyspace[T]) decode(e envelope) (v T, err error, ok bool) {
	p, err, ok := decode(&ks.core, e)
	if p != nil {
		v = *p
	}
	return v, err, ok
}

// encode is keyspace.encode of a T.
func (ks *Keyspace[T]) encode(v T) (flags byte, payload []byte, err error) {
	return encode(&ks.core, &v)
}
