package runtime

import (
	"context"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// The two-level cache's L1 (docs/runtime.md, "Two-level cache"): decoded
// values in this process, judged on every read against the same mirror as an
// L2 hit, and made or served only while the invalidation subscription is live.

// l1 is the Cache's in-process store: one otter cache for every local
// keyspace of the Cache (keys carry the namespace, repository and keyspace).
type l1 struct {
	store *otter.Cache[uint64, l1Item] // by the key's hash: a read need not make the key string
	seed  maphash.Seed
	clock *otter.CoarseClock // expiry checks read a variable, not the time
	sub   subscription

	resolving atomic.Bool // one lookup of L1-only markers at a time
}

// l1Resolution is the coarse clock's, which otter's own expiry uses (to
// evict); whether an entry may be served is decided on the precise time.
const l1Resolution = 10 * time.Millisecond

// l1Item is what the store holds: an *l1Entry[V] of the key's keyspace.
type l1Item interface {
	lifetime() time.Duration
	weight() uint32
}

// l1Entry is one value with what its Redis entry depended on.
type l1Entry[V any] struct {
	_        noEqual
	key      Key // two keys of one hash only ever evict each other
	v        V
	err      error    // a cached not-found
	neg      bool     // a negative entry (nil or not-found): absent from a batch read
	inc, f   uint64   // the Redis entry's incarnation and fill seq
	ids      []uint64 // every marker it depends on
	sgen     uint64   // the subscription's generation it was made under
	mgen     uint64   // the mirror's generation it was judged against
	checked  atomic.Uint64
	life     time.Duration
	deadline int64 // monoNow past which it is not served
	due      int64 // monoNow from which a hit starts a reload (refresh=); 0: never
	size     uint32
}

func (e *l1Entry[V]) lifetime() time.Duration { return e.life }
func (e *l1Entry[V]) weight() uint32          { return e.size }

// localOn returns the L1, creating it (and starting its subscription) on the
// first local keyspace.
func (c *Cache) localOn() *l1 {
	c.l1Once.Do(func() {
		l := &l1{clock: otter.NewCoarseClock(l1Resolution), seed: maphash.MakeSeed()}
		l.store = otter.Must(&otter.Options[uint64, l1Item]{
			Clock:         l.clock,
			MaximumWeight: uint64(c.cfg.localBytes),
			Weigher:       func(_ uint64, v l1Item) uint32 { return v.weight() },
			ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[uint64, l1Item]) time.Duration {
				return e.Value.lifetime()
			}),
		})
		l.sub.init(c, l)
		c.l1.Store(l)
		c.background(func() {
			l.sub.run() // until Close
			l.clock.Stop()
			l.store.StopAllGoroutines()
		})
	})
	return c.l1.Load()
}

// l1Start is what a read notes before it asks Redis: the subscription's
// generation while live (0 otherwise: nothing it reads may enter the L1)
// and the mirror's generation.
type l1Start struct{ sgen, mgen uint64 }

func localStart[V any](ks *keyspace[V]) l1Start {
	l := ks.c.l1.Load()
	if l == nil || ks.spec.Local <= 0 {
		return l1Start{}
	}
	return l1Start{sgen: l.sub.liveGen(), mgen: ks.c.mirror.gen.Load()}
}

// localGet serves key from the L1 when its entry is still valid: v is the
// L1's own value, which the typed layer clones for the caller (read.shared). e is the entry it came from (for its error, negative
// mark and refresh point), ok false when there was none to serve.
func localGet[V any](ks *keyspace[V], key Key) (v V, e *l1Entry[V], ok bool) {
	l := ks.c.l1.Load()
	if l == nil || ks.c.brk.open.Load() {
		// An open breaker may hold an invalidation of ours that Redis has
		// not taken yet (pending.go): reads go to the source meanwhile.
		return v, nil, false
	}
	h := maphash.String(l.seed, string(key))
	it, found := l.store.GetIfPresent(h)
	if !found {
		return v, nil, false
	}
	e, isT := it.(*l1Entry[V])
	if !isT || e.key != key || e.sgen == 0 || l.sub.liveGen() != e.sgen {
		return v, nil, false
	}
	// The watchdog ticks every bound/4; this read-time check makes the bound
	// exact, and the entry's own deadline keeps it within its Redis entry's
	// life. Both read the precise time: a coarse clock lags without limit
	// when its goroutine is starved of CPU.
	if now := monoNow(); now-l.sub.fresh() > int64(ks.c.cfg.localBound) || now > e.deadline {
		return v, nil, false
	}
	m := &ks.c.mirror
	if ver := m.ver.Load(); e.checked.Load() != ver {
		if !m.judgeLocal(e.inc, e.f, e.mgen, e.ids) {
			l.store.Invalidate(h)
			return v, nil, false
		}
		e.checked.Store(ver)
	}
	return e.v, e, true
}

// isDue reports whether a hit of an entry due then (l1Entry.due) is to
// start a reload (refresh=).
func isDue(due int64) bool { return due != 0 && monoNow() >= due }

// localRead is an L1 hit into rd (zero), counted; false when there was
// none. key may alias the caller's buffer.
func localRead[V any](ks *keyspace[V], key Key, rd *read[V]) bool {
	v, e, ok := localGet(ks, key)
	if !ok {
		return false
	}
	ks.c.emit(EventLocalHit, ks.label, nil)
	rd.v, rd.Err, rd.Hit, rd.shared = v, e.err, true, true
	if isDue(e.due) { // the reload's lease carries the entry's own clock: older than any read's, so waiters judge it safely
		rd.ks, rd.key, rd.inc, rd.clock = ks, e.key, e.inc, e.f
		rd.reload, rd.Background = true, true
	}
	if ks.c.verify.sample() {
		sampledL1(ks, rd, key)
	}
	return true
}

// localPut keeps v (which no caller is given: pass a copy, or hand callers
// clones, read.shared) for key,
// when the read that produced it began with the subscription live (st) and
// nothing was reset since. env is the Redis entry; left is how long it lives.
func localPut[V any](ks *keyspace[V], key Key, st l1Start, env *envelope, v V, err error, left time.Duration) {
	l := ks.c.l1.Load()
	if l == nil || st.sgen == 0 || l.sub.liveGen() != st.sgen {
		return
	}
	life := min(ks.spec.Local, left) - l1Resolution
	if life <= 0 {
		return
	}
	nt := env.numTags()
	ids := make([]uint64, 0, 6+nt)
	ids = append(ids, ks.deps[:]...)
	ids = append(ids, markerID(markKey, string(key)), ks.repo.local, ks.c.nsL1)
	for i := range nt {
		ids = append(ids, env.tagAt(i))
	}
	now := monoNow()
	e := &l1Entry[V]{key: key, v: v, err: err, neg: env.flags&(flagNil|flagNotFound) != 0, inc: env.inc, f: env.seq, ids: ids, sgen: st.sgen, mgen: st.mgen,
		life: life, deadline: now + int64(life), size: uint32(min(len(key)+len(env.payload)+64+8*len(ids), 1<<30))}
	if r, ok := refreshPoint(ks, key, env); ok {
		e.due = max(now+int64(time.UnixMilli(r).Sub(ks.c.cfg.now())), 1)
	}
	e.checked.Store(^uint64(0)) // judged on its first read
	m := &ks.c.mirror
	if !m.judgeLocal(e.inc, e.f, e.mgen, ids) {
		// A bump arrived while the value was on its way — or the entry is
		// older than the mirror and the L1-only markers were never looked
		// up (an L2 hit resolves only its own): look them up for next time.
		if unknown := m.unknownOf(e.inc, e.f, ids[4:6]); len(unknown) > 0 && l.resolving.CompareAndSwap(false, true) {
			ks.c.background(func() {
				defer l.resolving.Store(false)
				_ = ks.c.resolve(context.Background(), e.inc, unknown)
			})
		}
		return
	}
	l.store.Set(maphash.String(l.seed, string(key)), e)
}

// localLeft is how long an entry read from Redis still lives, at the least:
// its envelope carries when its TTL ends, counted from before the SET ran
// (whatever ttl= the process that stored it had).
func localLeft[V any](ks *keyspace[V], env *envelope) time.Duration {
	return time.UnixMilli(env.expiresAt).Sub(ks.c.cfg.now())
}

// clear drops every L1 entry (a gap in the subscription).
func (l *l1) clear() { l.store.InvalidateAll() }
