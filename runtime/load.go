package runtime

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// loadRead is Load: the miss path (docs/runtime.md, "The miss path and the
// lease protocol"). Concurrent callers in this process that read the same clock
// share one load; across processes a Redis lease lets one caller load while
// the others wait, bounded by the lease wait, for its value — or for its
// hand-off when an invalidation rejected its fill. The fill is conditional:
// it is dropped when the lease was lost or any marker of the entry (its key,
// tags, group, repository, the namespace) moved after the clock rd was read
// with. Redis trouble never fails the call: the source's answer is returned.
func loadRead[V any](ctx context.Context, rd read[V], l loader[V]) (V, error) {
	if rd.Hit { // rd.Background: a reload is due, or WithVerify sampled it
		if rd.reload {
			refreshLater(ctx, rd.ks, rd.key, rd.inc, rd.clock, l)
		}
		verifyLater(rd, l)
		return rd.v, rd.Err
	}
	ks := rd.ks
	c := ks.c
	res, err := c.flights.do(ctx, flightKey{rd.key, rd.inc, rd.clock}, func(fctx context.Context, seal func()) (any, error) {
		inc, n := rd.inc, rd.clock
		if inc != 0 {
			seal = func() {} // callers that read one clock may share the load at any time
		}
		if rd.answered && inc == 0 && c.healthy() { // an empty Redis: the first fill creates the state
			if rep, err := c.ensureState(fctx); err == nil {
				inc, n = rep.inc, rep.seq
			}
		}
		if inc == 0 || !c.healthy() {
			seal()
			return loadOnly(fctx, ks, l), nil
		}
		return loadShared(fctx, ks, rd.key, inc, n, l, seal), nil
	})
	if err != nil { // this caller's context ended
		var zero V
		return zero, err
	}
	v, err := takeLoaded(res.(*loaded[V]), ks)
	if err != nil && isNotFound(ks, err) {
		// What the source returned beside its not-found error is not what a
		// hit of the cached not-found gives back (zero values): a miss
		// returns those too, so a hit equals its miss.
		var zero V
		return zero, err
	}
	return v, err
}

// healthy reports whether a miss may use Redis (leases, fills): not while the
// breaker is open, nor right after a failed call — no write-back after a
// failed read, and no second timeout on top of the first.
func (c *Cache) healthy() bool {
	return c.brk.failures.Load() == 0 && !c.brk.open.Load()
}

// loaded is the result of one shared load. The first caller takes the value
// the source returned; the others decode their own copy from the encoded
// payload, so no two callers share (and race on) one pointer.
type loaded[V any] struct {
	_       noEqual
	v       V
	err     error
	env     envelope
	encoded bool
	orig    V // a copy of v nobody is given, to clone for the others
	hasOrig bool
	absent  bool // a batch load's id the source did not return
	taken   atomic.Bool
}

// negativeLoaded reports a result a batch read leaves out of its map: an id the
// source did not return, a nil result, the keyspace's not-found error, a
// negative entry.
func negativeLoaded[V any](r *loaded[V], ks *keyspace[V], v V, err error) bool {
	if r.absent || (r.encoded && r.env.flags&(flagNil|flagNotFound) != 0) {
		return true
	}
	return absentResult(ks, v, err)
}

// absentResult reports a method result that stands for "not found".
func absentResult[V any](ks *keyspace[V], v V, err error) bool {
	if err != nil {
		return isNotFound(ks, err)
	}
	return ks.spec.IsNil != nil && ks.spec.IsNil(v)
}

// takeLoaded is a caller's share of r: the value itself for the first, a
// copy for the others.
func takeLoaded[V any](r *loaded[V], ks *keyspace[V]) (V, error) {
	if r.taken.CompareAndSwap(false, true) {
		return r.v, r.err
	}
	if r.encoded {
		if v, err, ok := decode(ks, r.env); ok {
			return v, err
		}
	}
	if r.hasOrig {
		return ks.spec.Clone(r.orig), r.err
	}
	return r.v, r.err
}

// unencoded is a load's result with no encoding to decode copies from (Redis
// failing, nothing cacheable): other callers of the flight get clones of a
// copy taken before anyone has the value.
func unencoded[V any](ks *keyspace[V], v V, err error) *loaded[V] {
	r := &loaded[V]{v: v, err: err}
	if ks.spec.Clone != nil {
		r.orig, r.hasOrig = ks.spec.Clone(v), true
	}
	return r
}

// fromRedis wraps an envelope read from Redis: every caller decodes its own copy.
func fromRedis[V any](e envelope) *loaded[V] {
	res := &loaded[V]{env: e, encoded: true}
	res.taken.Store(true)
	return res
}

// loadShared runs once per flight: take the lease and load, or wait for the
// leaseholder's value, or — past the wait bound or when Redis fails — load
// without filling. (inc, n) is the clock the flight's callers read.
// Callers without a clock (seal is not a no-op) share the flight only until
// its source call starts: a later one may have begun after a write.
func loadShared[V any](ctx context.Context, ks *keyspace[V], key Key, inc, n uint64, l loader[V], seal func()) *loaded[V] {
	c := ks.c
	lease := leaseKeyOf(key)
	// The lease's value: our token and the clock our read began at, so that a
	// waiter can tell whether our load can answer it.
	value := c.leaseValue(inc, n)
	deadline := c.cfg.now().Add(c.cfg.leaseWait)
	wait := c.cfg.pollMin
	entryOK, handoffOK := true, true // false once seen and found of no use to us
	waited := false
	var known []uint64  // the markers known before the load: keyspace, key, parameter tags
	vetted := uint64(0) // fill seq of a holder whose load we found no known bump after
	for {
		r, err := call(c, ctx, func(ctx context.Context) (lookResult, error) {
			return c.remote.look(ctx, key, lease, value)
		})
		if err != nil {
			seal()
			return loadOnly(ctx, ks, l)
		}
		var found *loaded[V]
		if r.hasEntry && entryOK { // filled since our lookup: take it if it is valid for our read
			res, ok, err := usable(ctx, ks, key, inc, n, r.entry, false)
			if err != nil {
				releaseIf(ks, r.taken, lease, value)
				seal()
				return loadOnly(ctx, ks, l)
			}
			if ok {
				found = res
			} else {
				entryOK = false
			}
		}
		if found == nil && r.hasHandoff && handoffOK { // a fill that an invalidation rejected
			if res, ok := vettedHandoff(ctx, ks, inc, vetted, known, r.handoff); ok {
				found = res
			} else if res, ok, err := usable(ctx, ks, key, inc, n, r.handoff, true); err == nil && ok {
				found = res
			} else {
				handoffOK = false
			}
		}
		if found != nil {
			releaseIf(ks, r.taken, lease, value)
			return found
		}
		if r.taken {
			// The fill seq is the clock read with the lease, before the load:
			// later than our lookup's, so waiters who began since can take
			// this load's result too (a hand-off, if its fill is rejected).
			finc, fn := laterClock(inc, n, r.clock)
			seal()
			return loadAndFill(ctx, ks, key, lease, value, finc, fn, l)
		}
		// Busy. If a marker we know was bumped after the holder's load began,
		// its result cannot answer us: waiting would only queue us behind
		// it (under churn, behind every load). Load now, without a fill.
		if known == nil {
			known = append(append(ks.repo.tagIDs(nil, l.Tags), ks.deps[:]...), markerID(markKey, string(key)))
		}
		lf, outdated := c.outdates(ctx, inc, n, r.holder, known)
		if outdated {
			seal()
			return loadOnly(ctx, ks, l)
		}
		vetted = lf
		if !waited {
			c.emit(EventLeaseWait, ks.label, nil)
			waited = true
		}
		left := deadline.Sub(c.cfg.now())
		if left <= 0 {
			c.emit(EventLeaseTimeout, ks.label, nil)
			seal()
			return loadOnly(ctx, ks, l)
		}
		if !sleep(ctx, min(wait, left)) {
			seal()
			return loadOnly(ctx, ks, l)
		}
		wait = min(2*wait, pollCap(ks))
		entryOK, handoffOK = true, true // a new look may find new values
	}
}

// releaseIf frees the lease a look took when its result was not needed.
func releaseIf[V any](ks *keyspace[V], taken bool, lease, value string) {
	if taken {
		release(ks, lease, value)
	}
}

// outdates reports whether a lease held by a load that began at the clock in
// its value is of no use to a read that began at (inc, n): a marker in ids
// was bumped after the load's clock (or the incarnations differ). It
// returns that clock too: when it is before n and no marker moved since, the
// holder's result answers our read whatever is bumped later (see
// vettedHandoff).
func (c *Cache) outdates(ctx context.Context, inc, n uint64, leaseVal string, ids []uint64) (uint64, bool) {
	i := strings.LastIndexByte(leaseVal, '|')
	if i < 0 {
		return 0, false
	}
	linc, lf, ok := parseClock(leaseVal[i+1:])
	if !ok {
		return 0, false
	}
	if linc != inc {
		return 0, true
	}
	if lf >= n {
		return 0, false
	}
	if c.syncMirror(ctx, inc, n) != nil {
		return 0, false
	}
	return lf, c.movedSince(ctx, inc, lf, ids)
}

// vettedHandoff takes the hand-off of a holder whose load we vetted while
// waiting (no marker known before the load had moved between its clock and
// our read): only the markers taken from the result remain to be checked.
func vettedHandoff[V any](ctx context.Context, ks *keyspace[V], inc, vetted uint64, known []uint64, raw string) (*loaded[V], bool) {
	if vetted == 0 {
		return nil, false
	}
	e, ok := decodeEnvelope([]byte(raw))
	if !ok || e.inc != inc || e.seq != vetted || expired(ks, &e, ks.c.cfg.now().UnixMilli()) {
		return nil, false
	}
	if _, _, ok := decode(ks, e); !ok {
		return nil, false
	}
	var rest []uint64
	for i := range e.numTags() {
		if id := e.tagAt(i); !slices.Contains(known, id) {
			rest = append(rest, id)
		}
	}
	if ks.c.movedSince(ctx, inc, e.seq, rest) {
		return nil, false
	}
	return fromRedis[V](e), true
}

// usable decides whether an entry (or a hand-off) found while waiting may
// answer a read that began at clock (inc, n). Neither may be past its TTL
// (and stale=). An entry must pass the validity
// rule; a hand-off must come from a load that read the clock at or after n —
// every write that returned before our read began was then already visible
// to that load.
func usable[V any](ctx context.Context, ks *keyspace[V], key Key, inc, n uint64, raw string, handoff bool) (*loaded[V], bool, error) {
	e, ok := decodeEnvelope([]byte(raw))
	if ok {
		if _, _, ok = decode(ks, e); !ok && !handoff {
			corrupt(ctx, ks, key)
		}
	} else if !handoff {
		corrupt(ctx, ks, key)
	}
	if !ok || ageOf(ks, key, &e, ks.c.cfg.now().UnixMilli()) == ageExpired {
		return nil, false, nil
	}
	if handoff && e.inc == inc && e.seq >= n {
		return fromRedis[V](e), true, nil // the load began after our read did
	}
	valid, err := ks.c.validate(ctx, inc, n, &ks.space, key, &e)
	if err != nil || !valid {
		return nil, false, err
	}
	return fromRedis[V](e), true, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// loadOnly calls the source and stores nothing.
func loadOnly[V any](ctx context.Context, ks *keyspace[V], l loader[V]) *loaded[V] {
	v, err := callSource(ctx, ks, l)
	return unencoded(ks, v, err)
}

// pollCap is the longest wait between two looks: the configured bound, or a
// quarter of the loads this keyspace has seen (a moving average), whichever
// is less, so a waiter notices a value soon after a typical load ends.
func pollCap[V any](ks *keyspace[V]) time.Duration {
	d := time.Duration(ks.loadAvg.Load()) / 4
	if d <= 0 {
		return ks.c.cfg.pollMax
	}
	return max(ks.c.cfg.pollMin, min(d, ks.c.cfg.pollMax))
}

func callSource[V any](ctx context.Context, ks *keyspace[V], l loader[V]) (V, error) {
	start := time.Now()
	defer func() {
		d := int64(time.Since(start))
		if old := ks.loadAvg.Load(); old == 0 {
			ks.loadAvg.Store(d)
		} else {
			ks.loadAvg.Store(old + (d-old)/8) // racy updates only blur an average
		}
	}()
	v, err := l.Load(ctx)
	counted(ks, err, time.Since(start))
	return v, err
}

// loadAndFill calls the source as the leaseholder and stores what it returned
// under fill seq n, if the lease is still ours and no marker moved past n.
func loadAndFill[V any](ctx context.Context, ks *keyspace[V], key Key, lease, token string, inc, n uint64, l loader[V]) *loaded[V] {
	c := ks.c
	settled := false
	defer func() {
		if !settled { // source error, nothing to store, or a panic: free the lease now
			release(ks, lease, token)
		}
	}()
	v, err := callSource(ctx, ks, l)
	s, ok := entry(ks, v, err, l.ResultTags)
	if !ok {
		return unencoded(ks, v, err)
	}
	ids := ks.repo.tagIDs(make([]uint64, 0, len(l.Tags)+len(s.tags)), l.Tags, s.tags)
	if len(ids) > maxTags {
		if n, ok := c.allowLog(logTags); ok {
			c.cfg.logger.Error("cachegen: more than 255 tags; not cached", "keyspace", ks.label, "suppressed", n)
		}
		return unencoded(ks, v, err)
	}
	res := &loaded[V]{v: v, err: err}
	env := seal(ks, s, inc, n, ids)
	res.env, res.encoded = decodeEnvelope(env)
	settled = true
	members := make([]string, 0, 4+len(ids))
	members = append(members, ks.depMem[:]...)
	members = append(members, memberOf(markerID(markKey, string(key))))
	for _, id := range ids {
		members = append(members, memberOf(id))
	}
	f := &fillArgs{key: key, lease: lease, token: token, env: env, ttl: s.life, seq: n,
		members: members, handoff: c.handoffTTL()}
	var local func() // what the L1 keeps if the fill lands: its own copy, taken now
	if st := localStart(ks); st.sgen != 0 {
		kept := v
		if ks.spec.Clone != nil {
			kept = ks.spec.Clone(v)
		}
		e := res.env
		local = func() { localPut(ks, key, st, &e, kept, err, localLeft(ks, &e)) }
	}
	// The caller has its value: the fill (one more round trip) runs off its
	// path — a quarter of a cold read. It is conditional anyway, so when it
	// lands does not matter to other processes; this process's own lookups
	// of the key wait for it (hitGroup.filling).
	done := c.hits.filling(key)
	fctx := context.WithoutCancel(ctx)
	c.fills.Add(1)
	c.background(func() {
		defer c.fills.Done()
		defer done()
		if fill(fctx, ks, lease, token, f) && local != nil {
			local()
		}
	})
	return res
}

// filled is what a fill round found: a local type of the generic fill would
// be a type of its own (and compiled again) for every result type.
type filled struct{ stored, stale bool }

// fill stores a loaded entry (see fillOn) and records the outcome: true when
// it was stored and no invalidation raced it.
func fill[V any](ctx context.Context, ks *keyspace[V], lease, token string, f *fillArgs) bool {
	c := ks.c
	r, err := call(c, ctx, func(ctx context.Context) (filled, error) {
		stored, stale, err := c.remote.fill(ctx, f)
		return filled{stored, stale}, err
	})
	switch {
	case err != nil:
		release(ks, lease, token)
	case r.stale && r.stored: // an invalidation raced the load: drop it, keep it for waiters it can answer
		_, _ = call(c, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, c.remote.unfill(ctx, f) })
		c.emit(EventFillRejected, ks.label, nil)
	case r.stored:
		c.emit(EventFill, ks.label, nil)
		return true
	default: // the lease was lost (expired, or voided by an invalidation or a put)
		c.emit(EventFillRejected, ks.label, nil)
	}
	return false
}

// handoffTTL is how long a rejected fill's value waits for waiters: a few
// polls, no more (it is only for reads that began before the load).
func (c *Cache) handoffTTL() time.Duration {
	return max(4*c.cfg.pollMax, 100*time.Millisecond)
}

// release frees a lease we hold, on a context of its own: it must happen even
// when the load's context was cancelled.
func release[V any](ks *keyspace[V], lease, token string) {
	c := ks.c
	_, err := call(c, context.Background(), func(ctx context.Context) (int64, error) {
		return releaseScript.run(ctx, c.rdb, []string{lease, lease}, token).Int64()
	})
	if err != nil && !isNil(err) {
		c.pend.addRelease(c, lease, token)
	}
}
