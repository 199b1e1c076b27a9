package runtime

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// batch is a Batch as the protocol sees it, over V = *T (typed.go).
type batch[K comparable, V any] struct {
	Key  func(b []byte, id K) []byte
	Tags func(id K) []string
	src  batchSource[K, V]
}

// batchSource is the typed layer's side of a batch read (typed.go).
type batchSource[K comparable, V any] interface {
	// load calls the source (Batch.Load) with ids; got[j] is the value of
	// ids[j], nil when the source did not return it.
	load(ctx context.Context, ids []K, got []V) error
	// resultTags is Batch.ResultTags over V; nil without.
	resultTags() func(v V) ([]string, bool)
	// put adds an id's value to the caller's map; shared, it is the L1's
	// own value, which the caller gets a clone of.
	put(id K, v V, shared bool)
}

// getMany is GetMany over ids without repeats (len(ids) > 0): values go to
// b.src.put. It returns the wait for its fills (Warm).
func getMany[K comparable, V any](ctx context.Context, ks *keyspace[V], uniq []K, b batch[K, V]) ([]<-chan struct{}, error) {
	br := lookupMany(ctx, ks, batchKeys(&ks.space, uniq, b.Key))
	var miss, due []int
	for i := range br.reads {
		switch r := &br.reads[i]; {
		case !r.hit:
			miss = append(miss, i)
		case !r.neg:
			b.src.put(uniq[i], r.v, r.shared)
		}
		if br.reads[i].due {
			due = append(due, i)
		}
	}
	if len(due) > 0 {
		refreshManyLater(ctx, ks, uniq, br, due, b)
	}
	if len(miss) == 0 {
		return nil, nil
	}
	return loadMany(ctx, br, uniq, miss, b)
}

// uniqueIDs drops repeated ids, keeping the first occurrence's order.
func uniqueIDs[K comparable](ids []K) []K {
	if len(ids) < 2 {
		return ids
	}
	seen := make(map[K]struct{}, len(ids))
	out := make([]K, 0, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// batchKeys spells every id's key into one buffer: one allocation for all.
// An id whose key cannot be spelled gets "".
func batchKeys[K comparable](ks *space, ids []K, key func([]byte, K) []byte) []Key {
	ends := make([]int, len(ids))
	buf := make([]byte, 0, len(ids)*(len(ks.prefix)+24))
	for i, id := range ids {
		nb := key(append(buf, ks.prefix...), id)
		if nb == nil { // the id has no key (a nil pointer, a MarshalText error): it bypasses the cache
			ends[i] = -1
			continue
		}
		buf = append(nb, '}')
		ends[i] = len(buf)
	}
	keys := make([]Key, len(ids))
	start := 0
	for i, end := range ends {
		if end < 0 {
			continue
		}
		keys[i] = Key(unsafe.String(unsafe.SliceData(buf[start:]), end-start))
		start = end
	}
	return keys
}

// slotRead is what the batch lookup found for one key.
type slotRead[V any] struct {
	_        noEqual
	v        V
	hit      bool
	shared   bool   // v is the L1's own (read.shared)
	neg      bool   // a negative entry: absent from the map
	answered bool   // Redis answered for this key
	due      bool   // a hit whose reload is due (refresh=, stale=)
	dinc, dn uint64 // the clock the reload's lease carries
}

// batchRead is a batch lookup: every key read with one clock.
type batchRead[V any] struct {
	_      noEqual
	ks     *keyspace[V]
	keys   []Key
	reads  []slotRead[V]
	inc, n uint64 // the clock (0: none)
	st     l1Start
}

// lookupMany is Lookup for many keys: the L1 first (a local keyspace), then
// every other key and the clock in one round trip (one per master on
// Cluster), each entry judged against that clock by the hit rule.
func lookupMany[V any](ctx context.Context, ks *keyspace[V], keys []Key) *batchRead[V] {
	c := ks.c
	br := &batchRead[V]{ks: ks, keys: keys, reads: make([]slotRead[V], len(keys))}
	ask := keys
	var at []int // ask[j] is keys[at[j]]; nil: ask is keys
	if ks.spec.Local > 0 || slices.Contains(keys, "") {
		ask = make([]Key, 0, len(keys))
		for i, k := range keys {
			if k == "" {
				c.emit(EventBypass, ks.label, nil)
				continue
			}
			if ks.spec.Local <= 0 {
				ask, at = append(ask, k), append(at, i)
				continue
			}
			if v, e, ok := localGet(ks, k); ok {
				br.reads[i] = slotRead[V]{v: v, hit: true, shared: true, neg: e.neg, answered: true, due: isDue(e.due), dinc: e.inc, dn: e.f}
				c.emit(EventLocalHit, ks.label, nil)
				continue
			}
			ask, at = append(ask, k), append(at, i)
		}
		if len(ask) == 0 {
			return br
		}
		br.st = localStart(ks) // before Redis is asked: see localPut
	}
	c.hits.awaitFills(ctx, c, ask)
	mh, err := call(c, ctx, func(ctx context.Context) (manyHit, error) { return c.remote.hitMany(ctx, ask) })
	if !mh.clkOK {
		kind := EventMiss
		if err == errBreakerOpen {
			kind = EventBypass
		}
		for range ask {
			c.emit(kind, ks.label, nil)
		}
		return br
	}
	inc, n, state := parseClock(mh.clock)
	if state {
		br.inc, br.n = inc, n
	}
	now := c.cfg.now().UnixMilli()
	for j, key := range ask {
		i := j
		if at != nil {
			i = at[j]
		}
		r := &br.reads[i]
		if mh.failed[j] {
			c.emit(EventMiss, ks.label, nil)
			continue
		}
		r.answered = true
		if !mh.found[j] || !state {
			c.emit(EventMiss, ks.label, nil)
			continue
		}
		raw := mh.vals[j]
		e, ok := decodeEnvelope(unsafe.Slice(unsafe.StringData(raw), len(raw)))
		if !ok {
			corrupt(ctx, ks, key)
			c.emit(EventMiss, ks.label, nil)
			continue
		}
		valid, verr := c.validate(ctx, inc, n, &ks.space, key, &e)
		if verr != nil || !valid {
			r.answered = verr == nil // the state could not be read: like a failed lookup
			c.emit(EventMiss, ks.label, nil)
			continue
		}
		a := ageOf(ks, key, &e, now)
		if a == ageExpired {
			c.emit(EventMiss, ks.label, nil)
			continue
		}
		v, vErr, ok := decode(ks, e)
		if !ok {
			corrupt(ctx, ks, key)
			c.emit(EventMiss, ks.label, nil)
			continue
		}
		if br.st.sgen != 0 && a != ageStale {
			// The key shares the batch's buffer: the L1 keeps its own. It
			// keeps the decoded value; the caller gets a clone of it.
			localPut(ks, Key(strings.Clone(string(key))), br.st, &e, v, vErr, localLeft(ks, &e))
			r.shared = true
		}
		r.hit, r.v = true, v
		if a != ageFresh {
			r.due, r.dinc, r.dn = true, inc, n
			if a == ageStale {
				c.emit(EventStale, ks.label, nil)
			}
		}
		if r.neg = e.flags&(flagNil|flagNotFound) != 0; r.neg {
			c.emit(EventNegativeHit, ks.label, nil)
		} else {
			c.emit(EventHit, ks.label, nil)
		}
	}
	return br
}

// batchSlot is one missed id of a batch.
type batchSlot[K comparable, V any] struct {
	_   noEqual
	i   int // index into the batch's ids and keys
	id  K
	key Key
	fk  flightKey
	f   *flight
	own bool

	tags         []string // known before the load
	lease, token string   // a lease this batch holds for the key
	finc, fn     uint64   // its fill clock
	res          *loaded[V]
	fill         *fillArgs
	local        func() // what the L1 keeps once the fill lands
}

// loadMany resolves a batch's misses: per id a flight (joined when another
// caller in this process already loads it), one look round for the owned
// ones, one source call for every id the batch must load, and the fills in
// the background (the returned channel closes when they are done). Results
// go to b.src.put.
func loadMany[K comparable, V any](ctx context.Context, br *batchRead[V], ids []K, miss []int, b batch[K, V]) ([]<-chan struct{}, error) {
	ks := br.ks
	c := ks.c
	// The load runs under its own context, cancelled when every caller of
	// every flight it owns has gone.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var live atomic.Int64
	slots := make([]batchSlot[K, V], len(miss))
	var owned, joined []*batchSlot[K, V]
	for j, i := range miss {
		s := &slots[j]
		s.i, s.id, s.key = i, ids[i], br.keys[i]
		if s.key == "" { // no key: loaded with the others, never shared or stored
			s.own = true
			owned = append(owned, s)
			continue
		}
		s.fk = flightKey{s.key, br.inc, br.n}
		if !br.reads[i].answered {
			s.fk.inc, s.fk.clock = 0, 0
		}
		s.f, s.own = c.flights.claim(s.fk, sync.OnceFunc(func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		}))
		if s.own {
			live.Add(1)
			owned = append(owned, s)
		} else {
			joined = append(joined, s)
		}
	}
	stop := context.AfterFunc(ctx, func() {
		for _, s := range owned {
			if s.f != nil {
				c.flights.leave(s.f)
			}
		}
	})
	defer stop()
	defer func() { // a caller that leaves early (a panic) leaves its joined flights too
		if r := recover(); r != nil {
			for _, s := range joined {
				c.flights.leave(s.f)
			}
			panic(r)
		}
	}()

	var filled []<-chan struct{}
	if len(owned) > 0 {
		filled = loadOwned(bctx, br, owned, b)
	}
	var firstErr error
	take := func(s *batchSlot[K, V], res *loaded[V]) {
		v, err := takeLoaded(res, ks)
		switch {
		case negativeLoaded(res, ks, v, err):
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		default:
			b.src.put(s.id, v, false)
		}
	}
	for _, s := range owned {
		take(s, s.res)
	}
	for k, s := range joined {
		val, err := c.flights.wait(ctx, s.f)
		if err != nil { // this caller's context ended
			for _, rest := range joined[k+1:] {
				c.flights.leave(rest.f)
			}
			return filled, err
		}
		take(s, val.(*loaded[V]))
	}
	if err := ctx.Err(); err != nil {
		return filled, err
	}
	return filled, firstErr
}

// loadOwned loads the flights the batch owns and ends them. A panic of the
// source ends them with the panic (re-panicked in every caller that joined
// them, and in this one) and releases the batch's leases.
func loadOwned[K comparable, V any](ctx context.Context, br *batchRead[V], owned []*batchSlot[K, V], b batch[K, V]) (filled []<-chan struct{}) {
	ks := br.ks
	c := ks.c
	defer func() {
		r := recover()
		var p any
		if r != nil {
			p = r
			if _, wrapped := r.(loaderPanicked); !wrapped {
				p = loaderPanicked{loaderPanic(r)}
			}
			for _, s := range owned { // no fill was sent: free every lease now
				if s.lease != "" {
					release(ks, s.lease, s.token)
				}
			}
		}
		for _, s := range owned {
			if s.f != nil {
				c.flights.finish(s.fk, s.f, s.res, unwrapPanic(p))
			}
		}
		if p != nil {
			panic(unwrapPanic(p))
		}
	}()

	inc, n := br.inc, br.n
	healthy := c.healthy()
	if inc == 0 && healthy { // an empty Redis: the first fill creates the state
		for _, s := range owned {
			if br.reads[s.i].answered {
				if rep, err := c.ensureState(ctx); err == nil {
					inc, n = rep.inc, rep.seq
				}
				break
			}
		}
	}
	var look, load []*batchSlot[K, V]
	for _, s := range owned {
		if inc == 0 || !healthy || !br.reads[s.i].answered {
			load = append(load, s) // no clock, or Redis failing: no lease, no fill
		} else {
			look = append(look, s)
		}
	}
	var waits []*batchSlot[K, V]
	if len(look) > 0 {
		var more []*batchSlot[K, V]
		more, waits = lookOwned(ctx, ks, inc, n, look, b, true)
		load = append(load, more...)
	}

	var wg sync.WaitGroup
	var pmu sync.Mutex
	var panicked any
	guard := func(f func()) {
		defer wg.Done()
		defer func() {
			if r := recover(); r != nil {
				pmu.Lock()
				if panicked == nil {
					panicked = loaderPanicked{loaderPanic(r)}
				}
				pmu.Unlock()
			}
		}()
		f()
	}
	// Each chunk fills as soon as it is loaded, not after the waits: another
	// process may be waiting for these very leases while this batch waits
	// for its own.
	sem := make(chan struct{}, c.cfg.batchParallel)
	loadAll := func(load []*batchSlot[K, V]) {
		chunk := c.cfg.batchChunk
		for lo := 0; lo < len(load); lo += chunk {
			part := load[lo:min(lo+chunk, len(load))]
			sealClockless(c, part) // before the source call: a caller that begins later may follow a write
			wg.Add(1)
			sem <- struct{}{}
			go guard(func() {
				defer func() { <-sem }()
				loadChunk(ctx, ks, part, b)
				var fills []*fillArgs
				var locals []func()
				for _, s := range part {
					if s.fill != nil {
						fills, locals = append(fills, s.fill), append(locals, s.local)
					}
				}
				done := fillBatchArgs(ctx, ks, fills, locals)
				pmu.Lock()
				filled = append(filled, done)
				pmu.Unlock()
			})
		}
	}
	// Keys another process is loading: wait for its values, all of them in
	// one look round per poll (not a poller per key: a wide batch would
	// take the whole connection pool); the keys the wait ends without a
	// value for are loaded in one more call.
	if len(waits) > 0 {
		wg.Add(1)
		go guard(func() { loadAll(waitMany(ctx, ks, inc, n, waits, b)) })
	}
	loadAll(load)
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	return filled
}

// loaderPanicked marks a panic already wrapped by loaderPanic.
type loaderPanicked struct{ err error }

func unwrapPanic(p any) any {
	if lp, ok := p.(loaderPanicked); ok {
		return lp.err
	}
	return p
}

// lookOwned is the look round for the owned keys read with a clock: one
// pipeline. It settles the keys an entry or a hand-off answers and returns
// the ones to load (leaseholders, and keys whose holder cannot answer us)
// and the ones to wait for.
func lookOwned[K comparable, V any](ctx context.Context, ks *keyspace[V], inc, n uint64, look []*batchSlot[K, V], b batch[K, V], first bool) (load, waits []*batchSlot[K, V]) {
	c := ks.c
	keys := make([]Key, len(look))
	leases := make([]string, len(look))
	values := make([]string, len(look))
	for j, s := range look {
		keys[j], leases[j], values[j] = s.key, leaseKeyOf(s.key), c.leaseValue(inc, n)
		if first && b.Tags != nil {
			s.tags = b.Tags(s.id)
		}
	}
	r, ok := c.lookRound(ctx, keys, leases, values)
	if !ok {
		// The round failed as a whole; a lease it may have taken expires.
		return look, nil
	}
	// The fill seq of every lease taken: the clock read after them all.
	finc, fn := laterClock(inc, n, r.clock)
	var free []int // leases taken in the round that no load needs: freed in one more
	defer func() { releaseMany(ctx, ks, leases, values, free) }()
	for j, s := range look {
		lr := r.res[j]
		if r.errs[j] != nil {
			if lr.taken {
				free = append(free, j)
			}
			load = append(load, s)
			continue
		}
		if lr.hasEntry { // filled since our lookup
			res, ok, err := usable(ctx, ks, s.key, inc, n, lr.entry, false)
			if err == nil && ok {
				if lr.taken {
					free = append(free, j)
				}
				s.res = res
				continue
			}
		}
		if lr.hasHandoff {
			if res, ok, err := usable(ctx, ks, s.key, inc, n, lr.handoff, true); err == nil && ok {
				if lr.taken {
					free = append(free, j)
				}
				s.res = res
				continue
			}
		}
		if lr.taken {
			s.lease, s.token, s.finc, s.fn = leases[j], values[j], finc, fn
			load = append(load, s)
			continue
		}
		// Busy: a holder whose load began before a bump of a marker we know
		// cannot answer us; load now, without a fill.
		known := append(append(ks.repo.tagIDs(nil, s.tags), ks.deps[:]...), markerID(markKey, string(s.key)))
		if _, outdated := c.outdates(ctx, inc, n, lr.holder, known); outdated {
			load = append(load, s)
			continue
		}
		if first {
			c.emit(EventLeaseWait, ks.label, nil)
		}
		waits = append(waits, s)
	}
	return load, waits
}

// waitMany waits for the keys of waits that other callers hold the lease of,
// polling them all in one look round each time (as a single waiter polls
// one), until each has a value it may take, or its lease is free (the batch
// then loads it with a fill), or a known marker moved past its holder's
// clock, or the lease wait ends (then it loads it without a fill). It
// returns the keys to load.
func waitMany[K comparable, V any](ctx context.Context, ks *keyspace[V], inc, n uint64, waits []*batchSlot[K, V], b batch[K, V]) (load []*batchSlot[K, V]) {
	c := ks.c
	deadline := c.cfg.now().Add(c.cfg.leaseWait)
	wait := c.cfg.pollMin
	for len(waits) > 0 {
		left := deadline.Sub(c.cfg.now())
		if left <= 0 {
			for range waits {
				c.emit(EventLeaseTimeout, ks.label, nil)
			}
			return append(load, waits...)
		}
		if !sleep(ctx, min(wait, left)) {
			return append(load, waits...)
		}
		wait = min(2*wait, pollCap(ks))
		more, still := lookOwned(ctx, ks, inc, n, waits, b, false)
		load, waits = append(load, more...), still
	}
	return load
}

// absentErr is what an id the source did not return stands for: the
// keyspace's not-found error, else a nil (or zero) result; the batch itself
// knows it by the result's absent mark.
func absentErr[V any](ks *keyspace[V]) error { return ks.spec.NotFound }

// loadChunk calls the source once for part and settles each id: its result,
// and the fill of an id whose lease the batch holds.
func loadChunk[K comparable, V any](ctx context.Context, ks *keyspace[V], part []*batchSlot[K, V], b batch[K, V]) {
	ids := make([]K, len(part))
	for j, s := range part {
		ids[j] = s.id
	}
	got := make([]V, len(part))
	start := time.Now()
	err := b.src.load(ctx, ids, got)
	counted(ks, err, time.Since(start))
	var resultTags func(V) ([]string, bool)
	if err == nil {
		resultTags = b.src.resultTags()
	}
	for j, s := range part {
		var zero V
		if err != nil {
			if s.lease != "" {
				release(ks, s.lease, s.token)
				s.lease = ""
			}
			s.res = unencoded(ks, zero, err)
			continue
		}
		v := got[j]
		absent := absentResult(ks, v, nil) // not returned (nil), or a nil value
		var verr error
		if absent {
			v, verr = zero, absentErr(ks)
		}
		s.res = settleSlot(ks, s.key, s.lease, s.token, s.finc, s.fn, s.tags, v, verr, absent, resultTags, &s.fill, &s.local)
	}
}

// settleSlot turns one loaded id into its flight's result and, when the
// batch holds its lease, the fill to send (nil when nothing may be stored:
// the lease is released then).
func settleSlot[V any](ks *keyspace[V], key Key, lease, token string, finc, fn uint64, tags []string, v V, verr error, absent bool,
	resultTags func(V) ([]string, bool), fill **fillArgs, local *func()) *loaded[V] {
	c := ks.c
	plain := func() *loaded[V] {
		res := unencoded(ks, v, verr)
		res.absent = absent
		return res
	}
	if lease == "" {
		return plain()
	}
	var st stored
	var ok bool
	if absent {
		st, ok = absentEntry(ks)
	} else {
		st, ok = entry(ks, v, nil, resultTags)
	}
	ids := ks.repo.tagIDs(make([]uint64, 0, len(tags)+len(st.tags)), tags, st.tags)
	if ok && len(ids) > maxTags {
		c.cfg.logger.Error("cachegen: more than 255 tags; not cached", "keyspace", ks.label)
		ok = false
	}
	if !ok {
		release(ks, lease, token)
		return plain()
	}
	res := &loaded[V]{v: v, err: verr, absent: absent}
	env := seal(ks, st, finc, fn, ids)
	res.env, res.encoded = decodeEnvelope(env)
	members := make([]string, 0, 4+len(ids))
	members = append(members, ks.depMem[:]...)
	members = append(members, memberOf(markerID(markKey, string(key))))
	for _, id := range ids {
		members = append(members, memberOf(id))
	}
	*fill = &fillArgs{key: key, lease: lease, token: token, env: env, ttl: st.life, seq: fn,
		members: members, handoff: c.handoffTTL()}
	if l1 := localStart(ks); l1.sgen != 0 {
		kept := v
		if ks.spec.Clone != nil {
			kept = ks.spec.Clone(v)
		}
		e, k := res.env, Key(strings.Clone(string(key)))
		*local = func() { localPut(ks, k, l1, &e, kept, verr, localLeft(ks, &e)) }
	}
	return res
}

// absentEntry is the negative entry of an id the source did not return.
func absentEntry[V any](ks *keyspace[V]) (stored, bool) {
	if ks.spec.Negative <= 0 {
		return stored{}, false
	}
	return negativeEntry(ks, ks.spec.NotFound), true
}

// fillBatch sends the batch's fills in one round, after its caller has its
// values (as a single fill does); this process's lookups of those keys wait
// for them. The channel closes when the fills are done.
func fillBatchArgs[V any](ctx context.Context, ks *keyspace[V], fills []*fillArgs, locals []func()) <-chan struct{} {
	c := ks.c
	done := make(chan struct{})
	if len(fills) == 0 {
		close(done)
		return done
	}
	ends := make([]func(), len(fills))
	for i, f := range fills {
		ends[i] = c.hits.filling(f.key)
	}
	fctx := context.WithoutCancel(ctx)
	c.fills.Add(1)
	c.background(func() {
		defer close(done)
		defer c.fills.Done()
		defer func() {
			for _, end := range ends {
				end()
			}
		}()
		outs, _ := call(c, fctx, func(ctx context.Context) ([]fillOutcome, error) { return c.remote.fillMany(ctx, fills) })
		if outs == nil { // the round failed (counted by call): free the leases now
			for _, f := range fills {
				release(ks, f.lease, f.token)
			}
			return
		}
		var stale []*fillArgs
		for i, o := range outs {
			f := fills[i]
			switch {
			case o.err != nil:
				release(ks, f.lease, f.token)
			case o.stale && o.stored: // an invalidation raced this id's load
				stale = append(stale, f)
				c.emit(EventFillRejected, ks.label, nil)
			case o.stored:
				c.emit(EventFill, ks.label, nil)
				if locals[i] != nil {
					locals[i]()
				}
			default: // the lease was lost
				c.emit(EventFillRejected, ks.label, nil)
			}
		}
		if len(stale) > 0 {
			_, _ = call(c, fctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, c.remote.unfillMany(ctx, stale) })
		}
	})
	return done
}

// sealClockless closes the flights of keys read without a clock before the
// source call starts: a caller that begins later may follow a write.
func sealClockless[K comparable, V any](c *Cache, owned []*batchSlot[K, V]) {
	for _, s := range owned {
		if s.f != nil && s.fk.inc == 0 {
			c.flights.close(s.fk, s.f)
		}
	}
}

// leaseValue is the value of a lease this process takes: a unique token and
// the clock the read began at, so that a waiter can tell whether the
// holder's load can answer it (loadShared, lookOwned).
func (c *Cache) leaseValue(inc, n uint64) string {
	vb := make([]byte, 0, 64)
	vb = append(append(vb, c.tokenBase...), strconv.FormatUint(c.tokenSeq.Add(1), 36)...)
	vb = strconv.AppendUint(append(vb, '|'), inc, 10)
	vb = strconv.AppendUint(append(vb, ':'), n, 10)
	return string(vb)
}

// invalidateKeys drops the entries of keys (InvalidateMany): one
// invalidation for all of them.
func invalidateKeys(ctx context.Context, c *Cache, keys []Key) error {
	keys = slices.DeleteFunc(keys, func(k Key) bool { return k == "" })
	if len(keys) == 0 {
		return nil
	}
	return c.Invalidate(ctx, Invalidation{Keys: keys})
}

// releaseMany frees the leases at idx (tokens in values) in one pipeline; a
// release that fails is replayed like a single one.
func releaseMany[V any](ctx context.Context, ks *keyspace[V], leases, values []string, idx []int) {
	c := ks.c
	switch len(idx) {
	case 0:
		return
	case 1:
		release(ks, leases[idx[0]], values[idx[0]])
		return
	}
	cmds := make([]*redis.Cmd, len(idx))
	_, err := call(c, context.WithoutCancel(ctx), func(ctx context.Context) (struct{}, error) {
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for k, j := range idx {
				cmds[k] = releaseScript.evalsha(ctx, p, []string{leases[j], leases[j]}, values[j])
			}
			return nil
		})
		if err == redis.Nil || isReply(err) {
			err = nil
		}
		return struct{}{}, err
	})
	for k, j := range idx {
		if err != nil || cmds[k] == nil || (cmds[k].Err() != nil && !isNil(cmds[k].Err())) {
			release(ks, leases[j], values[j]) // NOSCRIPT, a failed round: one by one (replayed if need be)
		}
	}
}

// lookRound is one look round for many keys (lookMany, within the budget);
// ok is false when the round failed as a whole (a lease it may have taken
// expires), true also when only some keys failed (r.errs).
func (c *Cache) lookRound(ctx context.Context, keys []Key, leases, values []string) (r lookRoundResult, ok bool) {
	r, err := call(c, ctx, func(ctx context.Context) (lookRoundResult, error) {
		res, errs, clock, err := c.remote.lookMany(ctx, keys, leases, values)
		return lookRoundResult{res, errs, clock}, err
	})
	return r, r.res != nil && (err == nil || err == errPartial)
}

// lookRoundResult is what lookRound read: per key, and the clock after all.
type lookRoundResult struct {
	res   []lookResult
	errs  []error
	clock string
}
