package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// The only result-dependent encoding code (over V = *T, typed.go): what to store for a source result, and
// how an entry turns back into the method's results.

// stored is what a source result becomes in Redis: ok=false when nothing may
// be stored (an error, negative caching off, a nil hop in a result tag, a
// value that cannot be encoded).
type stored struct {
	flags   byte
	payload []byte
	ttl     time.Duration // until the entry expires (its envelope's expires-at)
	life    time.Duration // how long Redis keeps it: ttl, plus stale= for a positive entry
	tags    []string      // from the result
}

// negativeEntry is what a not-found (err non-nil) or nil result is stored as.
func negativeEntry[V any](ks *keyspace[V], err error) stored {
	sp := &ks.spec
	ttl := sp.Jitter.ttl(sp.Negative, ks.c.cfg.maxTTL, ks.c.cfg.rand())
	if err != nil {
		return stored{flags: flagNotFound, payload: []byte(err.Error()), ttl: ttl, life: ttl}
	}
	return stored{flags: flagNil, ttl: ttl, life: ttl}
}

// seal builds the envelope of s for a fill (or a put) at fill seq (inc, n),
// taking the store time now: before the SET runs, so the envelope never
// promises more than Redis keeps.
func seal[V any](ks *keyspace[V], s stored, inc, n uint64, ids []uint64) []byte {
	now := ks.c.cfg.now()
	return appendEnvelope(nil, s.flags, now.UnixMilli(), now.Add(s.ttl).UnixMilli(), inc, n, ids, s.payload)
}

func entry[V any](ks *keyspace[V], v V, err error, resultTags func(V) ([]string, bool)) (s stored, ok bool) {
	c, sp := ks.c, &ks.spec
	switch {
	case err != nil:
		if sp.Negative > 0 && isNotFound(ks, err) {
			return notFoundEntry(ks, err)
		}
		return s, false
	case sp.IsNil != nil && sp.IsNil(v):
		if sp.Negative <= 0 {
			return s, false // negative=0: a nil result is not cached at all
		}
		return negativeEntry(ks, nil), true
	case resultTags != nil:
		if s.tags, ok = resultTags(v); !ok {
			return s, false
		}
	}
	flags, payload, merr := encode(ks, v)
	if merr != nil {
		if n, ok := c.allowLog(logEncode); ok {
			c.cfg.logger.Error("cachegen: cannot encode result; not cached", "keyspace", ks.label, "err", merr, "suppressed", n)
		}
		return s, false
	}
	s.flags, s.payload, s.ttl = flags, payload, sp.Jitter.ttl(sp.TTL, c.cfg.maxTTL, c.cfg.rand())
	// stale= keeps a positive entry past its TTL, never past MaxTTL: the
	// markers that decide its validity are kept no longer than that.
	s.life = min(s.ttl+max(sp.Stale, 0), c.cfg.maxTTL)
	return s, true
}

// encode is the payload of a value: its msgpack bytes, after a zone table
// (flagZones) when its times are not all in UTC — unless they are all in
// time.Local (flagLocal), the zone msgpack decodes into: what a database
// driver returns, read back without a walk over the value on every hit.
func encode[V any](ks *keyspace[V], v V) (flags byte, payload []byte, err error) {
	var table []byte
	if ks.zones != nil {
		rv := reflect.ValueOf(v).Elem()
		switch {
		case allLocal(ks.zones, rv):
			flags |= flagLocal
		default:
			var ok bool
			if table, ok = appendZones(nil, ks.zones, rv); ok {
				flags |= flagZones
			}
		}
	}
	payload, err = msgpack.Marshal(v)         // *T, addressable: encoders with pointer receivers run
	if err == nil && !validMsgpack(payload) { // e.g. nested deeper than reads accept
		err = errors.New("encoding fails the bounded decoder's checks")
	}
	if len(table) > 0 {
		payload = append(table, payload...)
	}
	return flags, payload, err
}

// isNotFound reports whether err is the keyspace's not-found result: the
// predicate, else errors.Is the sentinel, else errors.As the error type.
func isNotFound[V any](ks *keyspace[V], err error) bool {
	sp := &ks.spec
	switch {
	case err == nil:
		return false
	case sp.NotFoundIf != nil:
		return sp.NotFoundIf(err)
	case sp.NotFound != nil:
		return errors.Is(err, sp.NotFound)
	case sp.NotFoundAs != nil:
		return sp.NotFoundAs.match(err)
	}
	return false
}

// notFoundEntry is what a not-found error becomes: its text and, with an
// error type, its encoded fields. It is stored only if the error a hit
// would return passes the keyspace's test again.
func notFoundEntry[V any](ks *keyspace[V], err error) (stored, bool) {
	text := err.Error()
	s := stored{flags: flagNotFound, payload: []byte(text)}
	var val []byte
	if as := ks.spec.NotFoundAs; as != nil {
		if b, ok := as.encode(err); ok {
			val = b
			s.flags |= flagErrValue
			s.payload = append(binary.AppendUvarint(nil, uint64(len(text))), text...)
			s.payload = append(s.payload, b...)
		}
	}
	if hit, ok := notFoundErr(ks, text, val); !ok || !isNotFound(ks, hit) {
		c := ks.c
		if n, ok := c.allowLog(logEncode); ok {
			c.cfg.logger.Error("cachegen: a cached not-found would not pass the keyspace's notfound test again (a predicate that wants more than the error's text and fields?); not cached",
				"keyspace", ks.label, "err", text, "suppressed", n)
		}
		return stored{}, false
	}
	s.ttl = ks.spec.Jitter.ttl(ks.spec.Negative, ks.c.cfg.maxTTL, ks.c.cfg.rand())
	s.life = s.ttl
	return s, true
}

// notFoundErr is the error a not-found hit returns; ok is false when val
// does not decode.
func notFoundErr[V any](ks *keyspace[V], text string, val []byte) (error, bool) {
	e := &notFoundError{msg: text}
	if val != nil {
		as := ks.spec.NotFoundAs
		if as == nil {
			return nil, false
		}
		ev, ok := as.decode(val)
		if !ok {
			return nil, false
		}
		e.errs = append(e.errs, ev)
	}
	if ks.spec.NotFound != nil {
		e.errs = append(e.errs, ks.spec.NotFound)
	}
	return e, true
}

// negativeOn reports whether the keyspace caches not-found errors at all.
func negativeOn[V any](ks *keyspace[V]) bool {
	sp := &ks.spec
	return sp.NotFound != nil || sp.NotFoundAs != nil || sp.NotFoundIf != nil
}

// decode turns an entry into the method's results; ok is false when the
// payload is not a valid encoding of a T; v is nil for a negative entry.
func decode[V any](ks *keyspace[V], e envelope) (v V, err error, ok bool) {
	switch {
	case e.flags&flagNotFound != 0:
		if !negativeOn(ks) {
			return v, nil, false
		}
		text, val := e.payload, []byte(nil)
		if e.flags&flagErrValue != 0 {
			n, k := binary.Uvarint(e.payload)
			if k <= 0 || n > uint64(len(e.payload)-k) {
				return v, nil, false
			}
			text, val = e.payload[k:k+int(n)], e.payload[k+int(n):]
		}
		nf, ok := notFoundErr(ks, string(text), val)
		return v, nf, ok
	case e.flags&flagNil != 0:
		return v, nil, true
	}
	p, table := e.payload, []byte(nil)
	if e.flags&flagZones != 0 {
		if ks.zones == nil {
			return v, nil, false
		}
		if table, p, ok = splitZones(p); !ok {
			return v, nil, false
		}
	}
	if !validMsgpack(p) {
		return v, nil, false
	}
	var zero V
	v = ks.alloc()
	if msgpack.Unmarshal(p, v) != nil {
		return zero, nil, false
	}
	if ks.zones != nil && e.flags&flagLocal == 0 && !applyZones(table, ks.zones, reflect.ValueOf(v).Elem()) {
		return zero, nil, false
	}
	return v, nil, true
}

// notFoundError is a cached not-found result: it reads like the error the
// source returned, matches its sentinel with errors.Is and, with an error
// type, gives a value of it with the stored fields to errors.As.
type notFoundError struct {
	msg  string
	errs []error // the decoded error value, then the sentinel
}

func (e *notFoundError) Error() string   { return e.msg }
func (e *notFoundError) Unwrap() []error { return e.errs }

// NotFoundType is an error type whose values are not-found results
// (Spec.NotFoundAs): matched with errors.As, its msgpack-encodable fields
// stored. Build one with ErrorType.
type NotFoundType struct {
	match  func(error) bool
	encode func(error) ([]byte, bool)
	decode func([]byte) (error, bool)
}

// ErrorType returns the NotFoundType of E (*ent.NotFoundError, kratos'
// *errors.Error). Its exported fields are stored; unexported ones are not.
func ErrorType[E error]() *NotFoundType {
	return &NotFoundType{
		match: func(err error) bool {
			var e E
			return errors.As(err, &e)
		},
		encode: func(err error) ([]byte, bool) {
			var e E
			if !errors.As(err, &e) {
				return nil, false
			}
			b, merr := msgpack.Marshal(&e)
			if merr != nil || !validMsgpack(b) {
				return nil, false
			}
			return b, true
		},
		decode: func(b []byte) (error, bool) {
			var e E
			if !validMsgpack(b) || msgpack.Unmarshal(b, &e) != nil {
				return nil, false
			}
			return e, true
		},
	}
}

// corrupt deletes an entry that failed to decode, so it costs one miss.
func corrupt[V any](ctx context.Context, ks *keyspace[V], key Key) {
	c := ks.c
	c.emit(EventCorrupt, ks.label, nil)
	if n, ok := c.allowLog(logCorrupt); ok {
		c.cfg.logger.Warn("cachegen: corrupt cache entry deleted", "keyspace", ks.label, "key", string(key), "suppressed", n)
	}
	_, _ = call(c, ctx, func(ctx context.Context) (int64, error) {
		return c.rdb.Del(ctx, string(key)).Result()
	})
}

// CloneCodec copies v by encoding and decoding it: the Clone of a result type
// whose fields the generator cannot copy one by one (unexported reference
// fields of another package's type). It costs an encode and a decode; a value
// that does not round-trip is returned as is.
func CloneCodec[T any](v T) T {
	b, err := msgpack.Marshal(&v) // addressable: encoders with pointer receivers run
	if err != nil {
		return v
	}
	var out T
	if msgpack.Unmarshal(b, &out) != nil {
		return v
	}
	if w := timeWalkOf(reflect.TypeFor[T]()); w != nil {
		table, ok := appendZones(nil, w, reflect.ValueOf(&v).Elem())
		if !ok {
			table = nil
		} else if table, _, ok = splitZones(table); !ok {
			return v
		}
		if !applyZones(table, w, reflect.ValueOf(&out).Elem()) {
			return v
		}
	}
	return out
}
