package runtime

import (
	"bytes"
	"context"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// The consistency checker (WithVerify, docs/observability.md). A sampled
// hit carries what it served (check) in its Read; the generated code then
// passes the Read on to Load with its Loader, which returns the hit at once
// and queues the verification: the source is called on a worker, never on
// the caller's path. Without WithVerify no hit is sampled, the generated
// code returns before it builds the Loader, and the hit path allocates
// nothing for it.

// verifier samples hits and runs their verifications.
type verifier struct {
	threshold uint64       // a hit is sampled when a random uint64 is below it (0: off)
	interval  int64        // ns between two samples (the rate limit)
	next      atomic.Int64 // monoNow from which the next sample may be taken
	once      sync.Once
	queue     chan func(context.Context)
	ctx       context.Context // cancelled by Close
	rechecks  atomic.Int32
	dropped   atomic.Uint64 // verifications skipped: queue full, or too many re-checks waiting
	calls     atomic.Uint64 // source calls made by the checker
}

const (
	verifyWorkers  = 2
	verifyQueue    = 64
	verifyRechecks = 16
	verifyTimeout  = 10 * time.Second
)

func (v *verifier) init(c *Cache) {
	f := c.cfg.verify
	switch {
	case f <= 0:
		return
	case f >= 1:
		v.threshold = ^uint64(0)
	default:
		v.threshold = uint64(f * (1 << 63) * 2)
	}
	v.interval = int64(time.Second) / int64(c.cfg.verifyRate)
	v.queue = make(chan func(context.Context), verifyQueue)
}

// sample decides whether this hit is verified: one comparison when off.
func (v *verifier) sample() bool {
	if v.threshold == 0 || rand.Uint64() >= v.threshold {
		return false
	}
	now, next := monoNow(), v.next.Load()
	return now >= next && v.next.CompareAndSwap(next, now+v.interval)
}

// check is what a sampled hit served: the Redis entry it decoded (raw), or
// the L1's value (a copy nobody else holds).
type check[V any] struct {
	_     noEqual
	key   Key
	raw   string
	fromL bool
	v     V
	err   error
}

// sampledL2 marks a hit decoded from raw for verification.
func sampledL2[V any](rd *read[V], raw string) {
	rd.chk = &check[V]{key: rd.key, raw: raw}
	rd.Background = true
}

// sampledL1 marks an L1 hit for verification; key may alias the caller's
// buffer. The value is the L1's own, which no caller is given (read.shared).
func sampledL1[V any](ks *keyspace[V], rd *read[V], key Key) {
	v := rd.v
	rd.ks = ks
	rd.chk = &check[V]{key: Key(strings.Clone(string(key))), fromL: true, v: v, err: rd.Err}
	rd.Background = true
}

// verifyLater queues the verification of a sampled hit with the loader that
// calls its source.
func verifyLater[V any](rd read[V], l loader[V]) {
	if rd.chk == nil || rd.ks == nil || l.Load == nil {
		return
	}
	ks, chk := rd.ks, rd.chk
	c := ks.c
	c.verify.once.Do(func() { c.startVerifiers() })
	select {
	case c.verify.queue <- func(ctx context.Context) { verify(ctx, ks, chk, l.Load) }:
	default:
		c.verify.dropped.Add(1)
	}
}

func (c *Cache) startVerifiers() {
	ctx, cancel := context.WithCancel(context.Background())
	c.verify.ctx = ctx
	c.background(func() { <-c.closed; cancel() }) // Close ends the sources' calls too
	for range verifyWorkers {
		c.background(func() {
			for {
				select {
				case <-c.closed:
					return
				case job := <-c.verify.queue:
					c.verify.run(job)
				}
			}
		})
	}
}

// run runs one job under the verification timeout; a panicking source must
// not take the process down from a worker.
func (v *verifier) run(job func(context.Context)) {
	ctx, cancel := context.WithTimeout(v.ctx, verifyTimeout)
	defer cancel()
	defer func() { _ = recover() }()
	job(ctx)
}

// verify compares what the hit served with the source's answer now, and
// re-checks a mismatch after the verify delay: it is reported only if the
// cache still serves the same value and the source still holds the same
// different one — a write racing the check changes one of them.
func verify[V any](ctx context.Context, ks *keyspace[V], chk *check[V], load func(context.Context) (V, error)) {
	c := ks.c
	cached, ok := canonCached(ks, chk)
	if !ok {
		return
	}
	s1, ok := canonSource(ctx, ks, load)
	if !ok {
		return
	}
	c.emit(EventVerified, ks.label, nil)
	if bytes.Equal(cached, s1) {
		return
	}
	if c.verify.rechecks.Add(1) > verifyRechecks {
		c.verify.rechecks.Add(-1)
		c.verify.dropped.Add(1)
		return
	}
	c.background(func() {
		defer c.verify.rechecks.Add(-1)
		if !c.pause(c.cfg.verifyDelay) {
			return
		}
		c.verify.run(func(ctx context.Context) { recheck(ctx, ks, chk, load, cached, s1) })
	})
}

// recheck is verify's second look, after the delay.
func recheck[V any](ctx context.Context, ks *keyspace[V], chk *check[V], load func(context.Context) (V, error), cached, s1 []byte) {
	c := ks.c
	now, served := peek(ctx, ks, chk.key) // the cache first, then the source: see docs/observability.md
	if !served || !bytes.Equal(now, cached) {
		return // invalidated or replaced since: a write raced the check
	}
	s2, ok := canonSource(ctx, ks, load)
	if !ok || !bytes.Equal(s2, s1) {
		return // the source changed again: a write in progress
	}
	c.emit(EventInconsistent, ks.label, nil)
	if n, ok := c.allowLog(logInconsistent); ok {
		c.cfg.logger.Warn("cachegen: inconsistent read: the cache serves a value the source does not hold",
			"keyspace", ks.label, "key", string(chk.key), "after", c.cfg.verifyDelay, "suppressed", n)
	}
}

// canonical is a result's encoding for comparison: a flag byte, then for a
// value its msgpack with map keys sorted (map order would differ otherwise).
func canonical[V any](ks *keyspace[V], v V, err error) ([]byte, bool) {
	sp := &ks.spec
	switch {
	case err != nil:
		if isNotFound(ks, err) {
			return []byte{flagNotFound}, true
		}
		return nil, false // an error is never cached: nothing to compare
	case sp.IsNil != nil && sp.IsNil(v):
		return []byte{flagNil}, true
	}
	var buf bytes.Buffer
	buf.WriteByte(0)
	if ks.zones != nil { // the same instant in another zone is another value
		table, _ := appendZones(nil, ks.zones, reflect.ValueOf(v).Elem())
		buf.Write(table)
	}
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if enc.Encode(v) != nil { // *T
		return nil, false
	}
	return buf.Bytes(), true
}

func canonCached[V any](ks *keyspace[V], chk *check[V]) ([]byte, bool) {
	if chk.fromL {
		return canonical(ks, chk.v, chk.err)
	}
	e, ok := decodeEnvelope([]byte(chk.raw))
	if !ok {
		return nil, false
	}
	v, err, ok := decode(ks, e)
	if !ok {
		return nil, false
	}
	return canonical(ks, v, err)
}

func canonSource[V any](ctx context.Context, ks *keyspace[V], load func(context.Context) (V, error)) ([]byte, bool) {
	ks.c.verify.calls.Add(1)
	v, err := load(ctx)
	if ctx.Err() != nil {
		return nil, false
	}
	return canonical(ks, v, err)
}

// peek is what a read of key would be served now — the L1, then Redis —
// without counting it or sampling it. served is false for a miss.
func peek[V any](ctx context.Context, ks *keyspace[V], key Key) ([]byte, bool) {
	c := ks.c
	if ks.spec.Local > 0 {
		if v, e, ok := localGet(ks, key); ok {
			return canonical(ks, v, e.err)
		}
	}
	hc := c.hits.do(ctx, c, key)
	if hc.err != nil || !hc.found {
		return nil, false
	}
	inc, n, ok := parseClock(hc.clock)
	if !ok {
		return nil, false
	}
	e, ok := decodeEnvelope([]byte(hc.raw))
	if !ok {
		return nil, false
	}
	if valid, err := c.validate(ctx, inc, n, &ks.space, key, &e); err != nil || !valid || expired(ks, &e, c.cfg.now().UnixMilli()) {
		return nil, false
	}
	v, err, ok := decode(ks, e)
	if !ok {
		return nil, false
	}
	return canonical(ks, v, err)
}
