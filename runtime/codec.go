package runtime

import (
	"context"
	"errors"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// The only T-dependent encoding code: what to store for a source result, and
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
func (ks *Keyspace[T]) negativeEntry(err error) stored {
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
func (ks *Keyspace[T]) seal(s stored, inc, n uint64, ids []uint64) []byte {
	now := ks.c.cfg.now()
	return appendEnvelope(nil, s.flags, now.UnixMilli(), now.Add(s.ttl).UnixMilli(), inc, n, ids, s.payload)
}

func (ks *Keyspace[T]) entry(v T, err error, resultTags func(T) ([]string, bool)) (s stored, ok bool) {
	c, sp := ks.c, &ks.spec
	switch {
	case err != nil:
		if sp.Negative > 0 && sp.NotFound != nil && errors.Is(err, sp.NotFound) {
			return ks.negativeEntry(err), true
		}
		return s, false
	case sp.IsNil != nil && sp.IsNil(v):
		if sp.Negative <= 0 {
			return s, false // negative=0: a nil result is not cached at all
		}
		return ks.negativeEntry(nil), true
	case resultTags != nil:
		if s.tags, ok = resultTags(v); !ok {
			return s, false
		}
	}
	payload, merr := msgpack.Marshal(&v)       // addressable: encoders with pointer receivers run
	if merr == nil && !validMsgpack(payload) { // e.g. nested deeper than reads accept
		merr = errors.New("encoding fails the bounded decoder's checks")
	}
	if merr != nil {
		if n, ok := c.allowLog(logEncode); ok {
			c.cfg.logger.Error("cachegen: cannot encode result; not cached", "keyspace", ks.label, "err", merr, "suppressed", n)
		}
		return s, false
	}
	s.payload, s.ttl = payload, sp.Jitter.ttl(sp.TTL, c.cfg.maxTTL, c.cfg.rand())
	// stale= keeps a positive entry past its TTL, never past MaxTTL: the
	// markers that decide its validity are kept no longer than that.
	s.life = min(s.ttl+max(sp.Stale, 0), c.cfg.maxTTL)
	return s, true
}

// decode turns an entry into the method's results; ok is false when the
// payload is not a valid encoding of T.
func (ks *Keyspace[T]) decode(e envelope) (v T, err error, ok bool) {
	switch {
	case e.flags&flagNotFound != 0:
		if ks.spec.NotFound == nil {
			return v, nil, false
		}
		return v, &notFoundError{msg: string(e.payload), target: ks.spec.NotFound}, true
	case e.flags&flagNil != 0:
		return v, nil, true
	}
	if !validMsgpack(e.payload) {
		return v, nil, false
	}
	if msgpack.Unmarshal(e.payload, &v) != nil {
		var zero T
		return zero, nil, false
	}
	return v, nil, true
}

// notFoundError is a cached not-found result: it reads like the error the
// source returned and matches its sentinel with errors.Is.
type notFoundError struct {
	msg    string
	target error
}

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Unwrap() error { return e.target }

// corrupt deletes an entry that failed to decode, so it costs one miss.
func (ks *Keyspace[T]) corrupt(ctx context.Context, key Key) {
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
	return out
}
