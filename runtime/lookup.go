package runtime

import (
	"context"
	"time"
	"unsafe"
)

// Read is what Lookup found. On a hit, Value and Err are the method's results
// (Err is the cached not-found error of a negative entry); on a miss, pass it
// on to Load, which uses the clock it was read with.
type Read[T any] struct {
	Value T
	Err   error
	Hit   bool
	// Background marks a hit that wants its Loader for work after the
	// caller has the value: a refresh= or stale= reload is due, or
	// WithVerify sampled it. Pass the Read on to Load with the Loader: Load
	// returns the hit at once and starts that work. Generated code returns
	// a hit without building its Loader unless Background is set.
	Background bool

	ks       *Keyspace[T]
	key      Key
	answered bool   // Redis answered the lookup
	inc      uint64 // the clock read with the entry; 0 when there was none
	clock    uint64
	chk      *check[T] // what a sampled hit served (verify.go)
	reload   bool      // a reload of the entry is due (refresh.go)
}

// Lookup is the hit path. A local keyspace first asks the L1 (local.go).
// Then: one MGET of the entry and the invalidation clock on
// a single node, one parallel round (entry ∥ clock) on Cluster, no script and
// no per-tag work in Redis. The entry is served if its incarnation is the
// clock's and no marker it depends on moved past its fill seq, which the
// process's mirror of the markers answers (docs/runtime.md). A miss — no
// entry, a stale or corrupt one, Redis unavailable — returns Hit false.
func Lookup[T any](ctx context.Context, ks *Keyspace[T], key Key) Read[T] {
	return lookup(ctx, ks, key, true)
}

func lookup[T any](ctx context.Context, ks *Keyspace[T], key Key, local bool) (rd Read[T]) {
	c := ks.c
	var st l1Start
	if ks.spec.Local > 0 {
		if local {
			if r, ok := ks.localRead(key); ok {
				return r
			}
		}
		st = ks.localStart() // before Redis is asked: see localPut
	}
	rd.ks, rd.key = ks, key
	var t0 time.Time
	if c.cfg.metrics {
		t0 = time.Now()
	}
	hc := c.hits.do(ctx, c, key)
	var took time.Duration
	if c.cfg.metrics {
		took = max(time.Since(t0), 1)
	}
	raw, found, clock, err := hc.raw, hc.found, hc.clock, hc.err
	if err != nil {
		if err == errBreakerOpen {
			c.emit(EventBypass, ks.label, nil)
		} else {
			c.emit(EventFallback, ks.label, err)
		}
		return rd
	}
	rd.answered = true
	inc, n, ok := parseClock(clock)
	if ok {
		rd.inc, rd.clock = inc, n
	}
	if !found || !ok { // no state: no entry can be valid
		c.emitTimed(EventMiss, ks.label, took)
		return rd
	}
	// raw aliases the reply; nothing below keeps it past the decode.
	e, ok := decodeEnvelope(unsafe.Slice(unsafe.StringData(raw), len(raw)))
	if !ok {
		hc.corrupt.Do(func() { ks.corrupt(ctx, key) })
		c.emitTimed(EventMiss, ks.label, took)
		return rd
	}
	valid, err := c.validate(ctx, inc, n, &ks.space, key, &e)
	if err != nil || !valid {
		if err != nil { // the state could not be read: like a failed lookup
			rd.answered, rd.inc, rd.clock = false, 0, 0
		}
		c.emitTimed(EventMiss, ks.label, took)
		return rd
	}
	a := ks.ageOf(key, &e, c.cfg.now().UnixMilli())
	if a == ageExpired { // past its TTL (and stale=): whatever Redis still holds
		c.emitTimed(EventMiss, ks.label, took)
		return rd
	}
	v, verr, ok := ks.decode(e)
	if !ok {
		hc.corrupt.Do(func() { ks.corrupt(ctx, key) })
		c.emitTimed(EventMiss, ks.label, took)
		return rd
	}
	if st.sgen != 0 && a != ageStale {
		kept := v
		if ks.spec.Clone != nil {
			kept = ks.spec.Clone(v)
		}
		ks.localPut(key, st, &e, kept, verr, ks.localLeft(&e))
	}
	if e.flags&(flagNil|flagNotFound) != 0 {
		c.emitTimed(EventNegativeHit, ks.label, took)
	} else {
		c.emitTimed(EventHit, ks.label, took)
	}
	rd.Value, rd.Err, rd.Hit = v, verr, true
	if a != ageFresh {
		if a == ageStale {
			c.emit(EventStale, ks.label, nil)
		}
		rd.reload, rd.Background = true, true
	}
	if c.verify.sample() {
		rd.sampledL2(raw)
	}
	return rd
}

// hit reads the entry and the clock within the budget. It is call() unrolled
// for the hottest path: no closure when the client honours deadlines.
func (c *Cache) hit(ctx context.Context, key Key) (raw string, found bool, clock string, err error) {
	if !c.brk.allow() {
		return "", false, "", errBreakerOpen
	}
	if c.ctxTO {
		dctx := c.budget(ctx)
		raw, found, clock, err = c.remote.hit(dctx, key)
		err = dctx.timedOut(err)
	} else {
		type res struct {
			raw, clock string
			found      bool
		}
		var r res
		r, err = bounded(c, ctx, func(ctx context.Context) (res, error) {
			raw, found, clock, err := c.remote.hit(ctx, key)
			return res{raw, clock, found}, err
		})
		raw, found, clock = r.raw, r.found, r.clock
	}
	c.settle(ctx, err)
	return raw, found, clock, err
}

// LookupBytes is Lookup for a key still in the caller's buffer (b, as
// AppendPrefix and the Append* helpers built it, without the closing brace
// Key adds): an L1 hit reads the key in place, so it allocates nothing for
// it; the key string is made only when Redis must be asked.
func LookupBytes[T any](ctx context.Context, ks *Keyspace[T], b []byte) Read[T] {
	b = append(b, '}')
	if ks.spec.Local > 0 {
		if r, ok := ks.localRead(Key(unsafe.String(unsafe.SliceData(b), len(b)))); ok {
			return r
		}
	}
	return lookup(ctx, ks, Key(b), false)
}
