package runtime

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Freshness (docs/runtime.md, "Freshness"): refresh-ahead and serving stale.
// Both only move what happens around an entry's TTL; an invalidated entry is
// a miss at any age, so neither can hand out a value a returned write made
// stale. The reload is a load under the miss path's lease and fill rules.

// age is how a read judges an entry that passed the validity rule.
type age uint8

const (
	ageFresh   age = iota // served
	ageDue                // served; past its refresh point: a reload is due
	ageStale              // past its TTL, within stale=: served; a reload is due
	ageExpired            // not served, even while Redis still holds it
)

// ageOf judges e (read for key) at now, Unix ms of this process's clock.
func ageOf[V any](ks *keyspace[V], key Key, e *envelope, now int64) age {
	if now >= e.expiresAt {
		if expired(ks, e, now) {
			return ageExpired
		}
		return ageStale
	}
	if p := ks.spec.Refresh; p > 0 {
		// Before the window no hash is needed: the common case of a hit.
		if now >= e.storedAt+int64(float64(e.expiresAt-e.storedAt)*p) {
			if r, _ := refreshPoint(ks, key, e); now >= r {
				return ageDue
			}
		}
	}
	return ageFresh
}

// refreshPoint is when a hit of e starts a reload (Unix ms): p of the way
// through its TTL, plus its spread over the first half of the rest.
func refreshPoint[V any](ks *keyspace[V], key Key, e *envelope) (int64, bool) {
	p := ks.spec.Refresh
	if p <= 0 {
		return 0, false
	}
	ttl := float64(e.expiresAt - e.storedAt)
	return e.storedAt + int64(ttl*p) + spread(key, e.storedAt, ttl*(1-p)/2), true
}

// expired reports an entry past its TTL and, for a positive one, past stale=.
func expired[V any](ks *keyspace[V], e *envelope, now int64) bool {
	if now < e.expiresAt {
		return false
	}
	st := ks.spec.Stale
	return st <= 0 || e.flags&(flagNil|flagNotFound) != 0 || now >= e.expiresAt+st.Milliseconds()
}

// spread is an entry's offset into the first half of its refresh window
// (width w ms): uniform over [0, w) by an FNV-1a hash of its key and store
// time, so entries filled together are not reloaded together, and every
// process computes the same point for one entry (the lease makes it one
// reload; no per-hit random draw is needed, unlike XFetch's).
func spread(key Key, storedAt int64, w float64) int64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * fnvPrime
	}
	for i := 0; i < 8; i++ {
		h = (h ^ uint64(byte(storedAt>>(8*i)))) * fnvPrime
	}
	h ^= h >> 29 // FNV's low bits mix poorly; the top 53 are used
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	return int64(w * (float64(h>>11) / (1 << 53)))
}

// refresher keeps a process to one reload per key at a time and to
// WithRefreshParallel reloads at once.
type refresher struct {
	mu      sync.Mutex
	keys    map[Key]int64 // a reload running (0), or no new one before this monoNow
	sweepAt int           // the size of keys at which take next sweeps it
	sweeps  int           // sweeps so far (tests: amortized, not one per take)
	running int
}

// begin reports whether one more reload (of one key, or of a batch's keys
// with one source call per chunk) may start now, and counts it; end uncounts it.
func (r *refresher) begin(limit int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running >= limit {
		return false
	}
	r.running++
	return true
}

func (r *refresher) end() {
	r.mu.Lock()
	r.running--
	r.mu.Unlock()
}

// take reports whether this process may reload key now: no reload of it
// runs, and no busy lease was seen for it within the last poll interval.
func (r *refresher) take(key Key) bool {
	now := monoNow()
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.keys[key]; ok && (t == 0 || now < t) {
		return false
	}
	if r.keys == nil {
		r.keys = make(map[Key]int64)
	}
	if len(r.keys) >= max(r.sweepAt, 4096) { // keys that were busy once and never due again
		for k, t := range r.keys {
			if t != 0 && t <= now {
				delete(r.keys, k)
			}
		}
		// Not again before the map has doubled: a batch taking thousands of
		// keys (all running, none to sweep) must not sweep on every take.
		r.sweepAt = 2 * len(r.keys)
		r.sweeps++
	}
	r.keys[key] = 0
	return true
}

// drop ends the reload of a taken key; retry > 0 keeps the key from another
// one before that monoNow (its lease was busy: someone else is loading it).
func (r *refresher) drop(key Key, retry int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if retry > 0 {
		r.keys[key] = retry
	} else {
		delete(r.keys, key)
	}
}

// refreshLater starts the background reload of key, read at clock (inc, n)
// — unless one runs already in this process or the limit is reached. It
// runs under ctx's values, not its cancellation, bounded by the lease TTL.
func refreshLater[V any](ctx context.Context, ks *keyspace[V], key Key, inc, n uint64, l loader[V]) {
	c := ks.c
	if l.Load == nil || inc == 0 || !c.healthy() || !c.refresh.begin(c.cfg.refreshParallel) {
		return
	}
	if !c.refresh.take(key) {
		c.refresh.end()
		return
	}
	rctx := context.WithoutCancel(ctx)
	c.background(func() {
		var retry int64
		defer c.refresh.end()
		defer func() { c.refresh.drop(key, retry) }()
		ctx, cancel := context.WithTimeout(rctx, c.cfg.leaseTTL)
		defer cancel()
		retry = reload(ctx, ks, key, inc, n, l)
	})
}

// retryBusy is when a key whose lease another caller holds may be reloaded
// again by this process: one poll later.
func retryBusy[V any](ks *keyspace[V]) int64 { return monoNow() + int64(pollCap(ks)) }

// retryFailed is when a key whose reload failed (the source's error or
// panic, Redis failing) may be reloaded again by this process: not before
// the longest poll, whatever the loads' average — a source failing fast
// must not get one reload per hit while the old value is served.
func retryFailed[V any](ks *keyspace[V]) int64 { return monoNow() + int64(ks.c.cfg.pollMax) }

// reload is one refresh of key: a look round; if the lease is ours and the
// entry still needs it, the source call and a fill exactly like a miss's. It
// reports busy when another caller holds the lease. A failure (an error, a
// panic: there is no caller to re-panic in) is counted and logged, and the
// old entry is left to be served until its bound. It returns the monoNow
// before which this process is not to reload key again (0: at any time).
func reload[V any](ctx context.Context, ks *keyspace[V], key Key, inc, n uint64, l loader[V]) (retry int64) {
	c := ks.c
	lease := leaseKeyOf(key)
	value := c.leaseValue(inc, n)
	r, err := call(c, ctx, func(ctx context.Context) (lookResult, error) {
		return c.remote.look(ctx, key, lease, value)
	})
	if err != nil {
		return retryFailed(ks)
	}
	if !r.taken {
		return retryBusy(ks)
	}
	if r.hasEntry && !needsReload(ks, key, r.entry) { // another reload filled it
		release(ks, lease, value)
		localDrop(ks, key) // an L1 entry of ours still due would ask again on every hit
		return 0
	}
	finc, fn := laterClock(inc, n, r.clock)
	c.emit(EventRefresh, ks.label, nil)
	defer func() {
		if p := recover(); p != nil {
			refreshFailed(ks, loaderPanic(p))
			retry = retryFailed(ks)
		}
	}()
	res := loadAndFill(ctx, ks, key, lease, value, finc, fn, l)
	switch {
	case res.err != nil && !absentResult(ks, res.v, res.err):
		refreshFailed(ks, res.err)
		return retryFailed(ks)
	case !res.encoded:
		// The source answered with what is not stored (not found or nil
		// with negative=0, a value that cannot be encoded or tagged): the
		// old entry is not what the source holds any more, and left in
		// place it would be served, and reloaded on every hit, until its
		// bound. Deleting an entry is always safe: a miss.
		dropEntries(ctx, ks, []Key{key})
	}
	return 0
}

// dropEntries deletes the entries of keys (and this process's L1 entries).
func dropEntries[V any](ctx context.Context, ks *keyspace[V], keys []Key) {
	c := ks.c
	for _, k := range keys {
		localDrop(ks, k)
	}
	_, _ = call(c, context.WithoutCancel(ctx), func(ctx context.Context) (struct{}, error) {
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Unlink(ctx, string(k))
			}
			return nil
		})
		return struct{}{}, err
	})
}

// localDrop removes key's L1 entry, if any: the next read asks Redis.
func localDrop[V any](ks *keyspace[V], key Key) {
	if l := ks.c.l1.Load(); l != nil && ks.spec.Local > 0 {
		l.store.Invalidate(maphash.String(l.seed, string(key)))
	}
}

// needsReload reports whether an entry found by a reload's look is still
// one to reload: not a newer fresh one another process has filled since.
func needsReload[V any](ks *keyspace[V], key Key, raw string) bool {
	e, ok := decodeEnvelope([]byte(raw))
	return !ok || ageOf(ks, key, &e, ks.c.cfg.now().UnixMilli()) != ageFresh
}

// refreshFailed counts and logs a reload that failed; the old entry stays.
func refreshFailed[V any](ks *keyspace[V], err error) {
	c := ks.c
	c.emit(EventRefreshError, ks.label, err)
	if n, ok := c.allowLog(logRefresh); ok {
		c.cfg.logger.Warn("cachegen: background refresh failed; the cached value is served until its bound", "keyspace", ks.label, "err", err, "suppressed", n)
	}
}

// laterClock is the fill seq of a lease taken in a look: the clock read with
// it when that is later than the read's own (inc, n).
func laterClock(inc, n uint64, clock string) (uint64, uint64) {
	if cinc, cn, ok := parseClock(clock); ok && (cinc != inc || cn > n) {
		return cinc, cn
	}
	return inc, n
}

// refreshManyLater starts the background reload of a batch's due ids (the
// indexes due of br): one look round, one source call per chunk, one fill
// round — the batch protocol without waiting for busy keys.
func refreshManyLater[K comparable, V any](ctx context.Context, ks *keyspace[V], ids []K, br *batchRead[V], due []int, b batch[K, V]) {
	c := ks.c
	if !c.healthy() || !c.refresh.begin(c.cfg.refreshParallel) {
		return
	}
	var slots []*batchSlot[K, V]
	for _, i := range due {
		key := Key(strings.Clone(string(br.keys[i]))) // not the batch's buffer: the refresher may keep it
		if c.refresh.take(key) {
			r := &br.reads[i]
			slots = append(slots, &batchSlot[K, V]{i: i, id: ids[i], key: key, finc: r.dinc, fn: r.dn})
		}
	}
	if len(slots) == 0 {
		c.refresh.end()
		return
	}
	rctx := context.WithoutCancel(ctx)
	c.background(func() {
		retry := make([]int64, len(slots))
		defer c.refresh.end()
		defer func() {
			for j, s := range slots {
				c.refresh.drop(s.key, retry[j])
			}
		}()
		ctx, cancel := context.WithTimeout(rctx, c.cfg.leaseTTL)
		defer cancel()
		reloadMany(ctx, ks, slots, b, retry)
	})
}

// reloadMany is reload for many keys: the slots' (finc, fn) are the clocks
// their reads began at. It marks in retry the keys whose lease was busy.
func reloadMany[K comparable, V any](ctx context.Context, ks *keyspace[V], slots []*batchSlot[K, V], b batch[K, V], retry []int64) {
	c := ks.c
	keys := make([]Key, len(slots))
	leases := make([]string, len(slots))
	values := make([]string, len(slots))
	for j, s := range slots {
		keys[j], leases[j], values[j] = s.key, leaseKeyOf(s.key), c.leaseValue(s.finc, s.fn)
	}
	r, ok := c.lookRound(ctx, keys, leases, values)
	if !ok {
		failed := retryFailed(ks)
		for j := range retry {
			retry[j] = failed
		}
		return // a lease it may have taken expires
	}
	var load []*batchSlot[K, V]
	var at []int // load[k] is slots[at[k]]
	var free []int
	later, failed := retryBusy(ks), retryFailed(ks)
	for j, s := range slots {
		lr := r.res[j]
		switch {
		case r.errs[j] != nil:
			retry[j] = failed
			if lr.taken {
				free = append(free, j)
			}
		case !lr.taken:
			retry[j] = later
		case lr.hasEntry && !needsReload(ks, s.key, lr.entry):
			free = append(free, j)
			localDrop(ks, s.key) // see reload
		default:
			s.lease, s.token = leases[j], values[j]
			s.finc, s.fn = laterClock(s.finc, s.fn, r.clock)
			if b.Tags != nil {
				s.tags = b.Tags(s.id)
			}
			load, at = append(load, s), append(at, j)
		}
	}
	releaseMany(ctx, ks, leases, values, free)
	for lo := 0; lo < len(load); lo += c.cfg.batchChunk {
		hi := min(lo+c.cfg.batchChunk, len(load))
		if !reloadChunk(ctx, ks, load[lo:hi], b) {
			// The source failed: no more calls now. This chunk's leases are
			// freed; the later chunks' are ours too, and nobody loads them.
			var rest []int
			for k := lo; k < len(load); k++ {
				retry[at[k]] = failed
				if k >= hi {
					rest = append(rest, at[k])
				}
			}
			releaseMany(ctx, ks, leases, values, rest)
			return
		}
	}
}

// reloadChunk is one source call of a batch reload and its fills; false
// when the source failed (counted and logged; the old entries stay).
func reloadChunk[K comparable, V any](ctx context.Context, ks *keyspace[V], part []*batchSlot[K, V], b batch[K, V]) (ok bool) {
	c := ks.c
	for range part {
		c.emit(EventRefresh, ks.label, nil)
	}
	defer func() {
		if p := recover(); p != nil { // before any fill: every lease is still held
			for _, s := range part {
				if s.lease != "" {
					release(ks, s.lease, s.token)
				}
			}
			refreshFailed(ks, loaderPanic(p))
			ok = false
		}
	}()
	loadChunk(ctx, ks, part, b)
	var fills []*fillArgs
	var locals []func()
	var drop []Key
	for _, s := range part {
		if s.res != nil && s.res.err != nil && !s.res.absent && !absentResult(ks, s.res.v, s.res.err) {
			refreshFailed(ks, s.res.err) // the whole call failed: loadChunk freed the leases
			return false
		}
		if s.fill != nil {
			fills, locals = append(fills, s.fill), append(locals, s.local)
		} else {
			drop = append(drop, s.key) // an answer that is not stored: see reload
		}
	}
	fillBatchArgs(ctx, ks, fills, locals)
	if len(drop) > 0 {
		dropEntries(ctx, ks, drop)
	}
	return true
}
