package runtime

import (
	"context"
	"time"
	"unsafe"
)

// read is a Read as the protocol sees it, over V = *T (typed.go): Value is
// nil for a negative hit.
type read[V any] struct {
	_ noEqual
	v V // Read.Value; nil for a negative hit
	// Err, Hit and Background are Read's (promoted): documented there.
	Err        error
	Hit        bool
	Background bool
	// shared marks a Value the L1 keeps: the typed layer hands out a
	// clone of it (Spec.Clone), never the L1's own.
	shared bool

	ks       *keyspace[V]
	key      Key
	answered bool   // Redis answered the lookup
	inc      uint64 // the clock read with the entry; 0 when there was none
	clock    uint64
	chk      *check[V] // what a sampled hit served (verify.go)
	reload   bool      // a reload of the entry is due (refresh.go)
}

// lookup is the hit path (Lookup). A local keyspace first asks the L1
// (local.go) unless local is false (lookupBytes asked it already).
func lookup[V any](ctx context.Context, ks *keyspace[V], key Key, local bool, rd *read[V]) {
	c := ks.c
	var st l1Start
	if ks.spec.Local > 0 {
		if local {
			if localRead(ks, key, rd) {
				return
			}
		}
		st = localStart(ks) // before Redis is asked: see localPut
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
		return
	}
	rd.answered = true
	inc, n, ok := parseClock(clock)
	if ok {
		rd.inc, rd.clock = inc, n
	}
	if !found || !ok { // no state: no entry can be valid
		c.emitTimed(EventMiss, ks.label, took)
		return
	}
	// raw aliases the reply; nothing below keeps it past the decode.
	e, ok := decodeEnvelope(unsafe.Slice(unsafe.StringData(raw), len(raw)))
	if !ok {
		hc.corrupt.Do(func() { corrupt(ctx, ks, key) })
		c.emitTimed(EventMiss, ks.label, took)
		return
	}
	valid, err := c.validate(ctx, inc, n, &ks.space, key, &e)
	if err != nil || !valid {
		if err != nil { // the state could not be read: like a failed lookup
			rd.answered, rd.inc, rd.clock = false, 0, 0
		}
		c.emitTimed(EventMiss, ks.label, took)
		return
	}
	a := ageOf(ks, key, &e, c.cfg.now().UnixMilli())
	if a == ageExpired { // past its TTL (and stale=): whatever Redis still holds
		c.emitTimed(EventMiss, ks.label, took)
		return
	}
	v, verr, ok := decode(ks, e)
	if !ok {
		hc.corrupt.Do(func() { corrupt(ctx, ks, key) })
		c.emitTimed(EventMiss, ks.label, took)
		return
	}
	if st.sgen != 0 && a != ageStale {
		// The L1 keeps the decoded value; the caller gets a clone of it.
		localPut(ks, key, st, &e, v, verr, localLeft(ks, &e))
		rd.shared = true
	}
	if e.flags&(flagNil|flagNotFound) != 0 {
		c.emitTimed(EventNegativeHit, ks.label, took)
	} else {
		c.emitTimed(EventHit, ks.label, took)
	}
	rd.v, rd.Err, rd.Hit = v, verr, true
	if a != ageFresh {
		if a == ageStale {
			c.emit(EventStale, ks.label, nil)
		}
		rd.reload, rd.Background = true, true
	}
	if c.verify.sample() {
		sampledL2(rd, raw)
	}
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

// lookupBytes is LookupBytes: an L1 hit reads the key in place in b.
func lookupBytes[V any](ctx context.Context, ks *keyspace[V], b []byte, rd *read[V]) {
	b = append(b, '}')
	if ks.spec.Local > 0 && localRead(ks, Key(unsafe.String(unsafe.SliceData(b), len(b))), rd) {
		return
	}
	lookup(ctx, ks, Key(b), false, rd)
}
