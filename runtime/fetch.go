package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"
)

// Lookup is the hit path: one round trip on a single node (the entry and its
// tag, group, repository and namespace markers are checked by one script), two
// parallel rounds on Cluster. hit is false on a miss, on a stale or corrupt
// entry and whenever Redis is unavailable; the caller then goes on to Load.
// For a cached not-found entry it returns hit=true and the not-found error.
func Lookup[T any](ctx context.Context, ks *Keyspace[T], key Key) (v T, hit bool, err error) {
	c := ks.c
	lc := c.lookups.do(ctx, &ks.space, key)
	if lc.err != nil {
		if lc.err == errBreakerOpen {
			c.emit(EventBypass, ks.label, nil)
		}
		return v, false, nil
	}
	if !lc.found {
		c.emit(EventMiss, ks.label, nil)
		return v, false, nil
	}
	e, _, ok := decodeEnvelope(lc.raw)
	if ok {
		if v, err, ok = ks.decode(e); ok {
			if e.flags&(flagNil|flagNotFound) != 0 {
				c.emit(EventNegativeHit, ks.label, nil)
			} else {
				c.emit(EventHit, ks.label, nil)
			}
			return v, true, err
		}
	}
	lc.corrupt.Do(func() { ks.corrupt(ctx, key) })
	c.emit(EventMiss, ks.label, nil)
	return v, false, nil
}

// Load is the miss path. Concurrent callers in this process share one load;
// across processes a Redis lease lets one caller load while the others wait
// (bounded by the lease wait) for its value. The fill is conditional: it is
// dropped when the lease was lost or an invalidation of the key, one of its
// tags, its group, its repository or the namespace came after the load began.
// Redis trouble never fails the call: the source's answer is returned.
func Load[T any](ctx context.Context, ks *Keyspace[T], key Key, l Loader[T]) (T, error) {
	c := ks.c
	res, err := c.flights.do(ctx, flightKey{key, c.epoch.Load()}, func(fctx context.Context) (any, error) {
		if !c.healthy() { // Redis is failing: still one load per key in this process
			return ks.loadOnly(fctx, l), nil
		}
		return ks.loadShared(fctx, key, l), nil
	})
	if err != nil { // this caller's context ended
		var zero T
		return zero, err
	}
	return res.(*loaded[T]).take(ks)
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
type loaded[T any] struct {
	v       T
	err     error
	env     envelope
	encoded bool
	taken   atomic.Bool
}

func (r *loaded[T]) take(ks *Keyspace[T]) (T, error) {
	if !r.encoded || r.taken.CompareAndSwap(false, true) {
		return r.v, r.err
	}
	if v, err, ok := ks.decode(r.env); ok {
		return v, err
	}
	return r.v, r.err
}

// loadShared runs once per flight: take the lease and load, or wait for the
// leaseholder's value, or — past the wait bound or when Redis fails — load
// without filling.
func (ks *Keyspace[T]) loadShared(ctx context.Context, key Key, l Loader[T]) *loaded[T] {
	c := ks.c
	lease := c.leaseKey(key)
	token := c.token()
	deadline := c.cfg.now().Add(c.cfg.leaseWait)
	wait := c.cfg.pollMin
	for waited := false; ; waited = true {
		st, seq, err := ks.acquire(ctx, key, lease, token, false)
		if err == nil && st == leaseEntryExists {
			// Filled since our lookup (the last holder released its lease
			// with the fill): take that value. Only if it is stale or
			// corrupt do we take the lease over it.
			res, ferr := ks.fetchEntry(ctx, key)
			if ferr != nil {
				return ks.loadOnly(ctx, l)
			}
			if res != nil {
				return res
			}
			st, seq, err = ks.acquire(ctx, key, lease, token, true)
		}
		if err != nil {
			return ks.loadOnly(ctx, l)
		}
		if st == leaseTaken {
			return ks.loadAndFill(ctx, key, lease, token, seq, l)
		}
		if !waited {
			c.emit(EventLeaseWait, ks.label, nil)
		}
		left := deadline.Sub(c.cfg.now())
		if left <= 0 {
			c.emit(EventLeaseTimeout, ks.label, nil)
			return ks.loadOnly(ctx, l)
		}
		if !sleep(ctx, min(wait, left)) {
			return ks.loadOnly(ctx, l)
		}
		wait = min(2*wait, c.cfg.pollMax)
		res, err := ks.fetchEntry(ctx, key)
		if err != nil {
			return ks.loadOnly(ctx, l)
		}
		if res != nil {
			return res
		}
	}
}

// fetchEntry returns the key's entry when it passes the marker check and
// decodes; nil when there is none (a corrupt one is deleted).
func (ks *Keyspace[T]) fetchEntry(ctx context.Context, key Key) (*loaded[T], error) {
	raw, found, err := ks.lookupRaw(ctx, key)
	if err != nil || !found {
		return nil, err
	}
	if e, _, ok := decodeEnvelope(raw); ok {
		if _, _, ok := ks.decode(e); ok {
			res := &loaded[T]{env: e, encoded: true}
			res.taken.Store(true) // no source value: every caller decodes
			return res, nil
		}
	}
	ks.corrupt(ctx, key)
	return nil, nil
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

// Outcomes of acquire.
const (
	leaseBusy        = 0 // another caller holds the lease
	leaseTaken       = 1 // ours: load and fill
	leaseEntryExists = 2 // not taken: the key has an entry (check it first)
)

// acquire tries to take the lease and reads the invalidation sequence the
// load starts under, in one round trip. Unless force is set, it does not take
// the lease of a key that has an entry: a fill may have landed (and freed the
// lease) since the caller's lookup, and loading again would be a second
// source call for one miss.
func (ks *Keyspace[T]) acquire(ctx context.Context, key Key, lease, token string, force bool) (st int64, seq uint64, err error) {
	c := ks.c
	type res struct {
		st  int64
		seq uint64
	}
	f := 0
	if force {
		f = 1
	}
	if !c.sharded { // one script reads the sequence too: EVALSHA, no pipeline
		r, err := call(c, ctx, func(ctx context.Context) (res, error) {
			vals, err := acquireSeqScript.run(ctx, c.rdb, []string{string(key), lease, c.seqKey},
				token, c.cfg.leaseTTL.Milliseconds(), f).Slice()
			if err != nil {
				return res{}, err
			}
			st, ok1 := vals[0].(int64)
			seq, ok2 := vals[1].(string)
			if len(vals) != 2 || !ok1 || !ok2 {
				return res{}, fmt.Errorf("cachegen: unexpected reply %v from the lease script", vals)
			}
			n, err := strconv.ParseUint(seq, 10, 64)
			return res{st, n}, err
		})
		return r.st, r.seq, err
	}
	r, err := call(c, ctx, func(ctx context.Context) (res, error) {
		var set *redis.Cmd
		var get *redis.StringCmd
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			// EVAL, not EVALSHA: a pipeline cannot retry NOSCRIPT.
			set = p.Eval(ctx, acquireScript.src, []string{string(key), lease}, token, c.cfg.leaseTTL.Milliseconds(), f)
			get = p.Get(ctx, c.seqKey)
			return nil
		})
		if err != nil && err != redis.Nil {
			return res{}, err
		}
		st, err := set.Int64()
		if err != nil {
			return res{}, err
		}
		s, err := parseSeq(get)
		return res{st, s}, err
	})
	return r.st, r.seq, err
}

func parseSeq(cmd *redis.StringCmd) (uint64, error) {
	s, err := cmd.Result()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// loadOnly calls the source and stores nothing.
func (ks *Keyspace[T]) loadOnly(ctx context.Context, l Loader[T]) *loaded[T] {
	v, err := ks.callSource(ctx, l)
	return &loaded[T]{v: v, err: err}
}

func (ks *Keyspace[T]) callSource(ctx context.Context, l Loader[T]) (T, error) {
	start := time.Now()
	v, err := l.Load(ctx)
	ks.c.stats[EventLoad].Add(1)
	if o := ks.c.cfg.observer; o != nil {
		o(Event{Kind: EventLoad, Keyspace: ks.label, Err: err, Duration: time.Since(start)})
	}
	return v, err
}

// loadAndFill calls the source as the leaseholder and stores what it returned,
// if the lease is still ours and nothing was invalidated meanwhile.
func (ks *Keyspace[T]) loadAndFill(ctx context.Context, key Key, lease, token string, seq uint64, l Loader[T]) *loaded[T] {
	c := ks.c
	settled := false
	defer func() {
		if !settled { // source error, nothing to store, or a panic: free the lease now
			ks.release(lease, token)
		}
	}()
	v, err := ks.callSource(ctx, l)
	res := &loaded[T]{v: v, err: err}
	flags, payload, ttl, tags, ok := ks.entry(v, err, l.ResultTags)
	if !ok {
		return res
	}
	deps := ks.depsWith(l.Tags, tags)
	env := appendEnvelope(nil, flags, c.cfg.now().UnixMilli(), seq, deps, payload)
	res.env, _, res.encoded = decodeEnvelope(env)
	settled = true
	ks.fill(ctx, key, lease, token, seq, deps, env, ttl)
	return res
}

// depsWith lists the markers of an entry: the keyspace's own (namespace,
// repository, group) and those of its tags.
func (s *space) depsWith(tagLists ...[]string) []string {
	n := len(s.deps)
	for _, ts := range tagLists {
		n += len(ts)
	}
	deps := append(make([]string, 0, n), s.deps...)
	for _, ts := range tagLists {
		for _, t := range ts {
			deps = append(deps, s.c.tagKey(t))
		}
	}
	return deps
}

// fill stores env if the lease still holds and no marker moved past seq. On
// Cluster the markers live in other slots, so they are checked first, in
// parallel; the hit check catches an invalidation that lands in between.
func (ks *Keyspace[T]) fill(ctx context.Context, key Key, lease, token string, seq uint64, deps []string, env []byte, ttl time.Duration) {
	c := ks.c
	args := []any{token, env, ttl.Milliseconds(), seq}
	if c.sharded {
		stale, err := c.staleSince(ctx, seq, deps)
		if err != nil || stale {
			ks.release(lease, token)
			if stale {
				c.emit(EventFillRejected, ks.label, nil)
			}
			return
		}
	} else {
		for _, d := range deps {
			args = append(args, d)
		}
	}
	n, err := call(c, ctx, func(ctx context.Context) (int64, error) {
		return fillScript.run(ctx, c.rdb, []string{string(key), lease}, args...).Int64()
	})
	switch {
	case err != nil:
		ks.release(lease, token)
	case n == 1:
		c.emit(EventFill, ks.label, nil)
	default:
		c.emit(EventFillRejected, ks.label, nil)
	}
}

// release frees a lease we hold, on a context of its own: it must happen even
// when the load's context was cancelled.
func (ks *Keyspace[T]) release(lease, token string) {
	c := ks.c
	_, err := call(c, context.Background(), func(ctx context.Context) (int64, error) {
		return releaseScript.run(ctx, c.rdb, []string{lease}, token).Int64()
	})
	if err != nil && err != redis.Nil {
		c.pend.addRelease(c, lease, token)
	}
}

// entry decides what to store for a source result: flags, payload and TTL, the
// result's tags, and ok=false when nothing may be stored.
func (ks *Keyspace[T]) entry(v T, err error, resultTags func(T) ([]string, bool)) (flags byte, payload []byte, ttl time.Duration, tags []string, ok bool) {
	c, sp := ks.c, &ks.spec
	neg := sp.Jitter.ttl(sp.Negative, c.cfg.maxTTL, c.cfg.rand())
	switch {
	case err != nil:
		if sp.Negative > 0 && sp.NotFound != nil && errors.Is(err, sp.NotFound) {
			return flagNotFound, []byte(err.Error()), neg, nil, true
		}
		return 0, nil, 0, nil, false
	case sp.IsNil != nil && sp.IsNil(v):
		if sp.Negative > 0 {
			return flagNil, nil, neg, nil, true
		}
	case resultTags != nil:
		if tags, ok = resultTags(v); !ok {
			return 0, nil, 0, nil, false
		}
	}
	payload, merr := msgpack.Marshal(v)
	if merr == nil && !validMsgpack(payload) { // e.g. nested deeper than reads accept
		merr = errors.New("encoding fails the bounded decoder's checks")
	}
	if merr != nil {
		c.cfg.logger.Error("cachegen: cannot encode result; not cached", "keyspace", ks.label, "err", merr)
		return 0, nil, 0, nil, false
	}
	return 0, payload, sp.Jitter.ttl(sp.TTL, c.cfg.maxTTL, c.cfg.rand()), tags, true
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
	c.cfg.logger.Warn("cachegen: corrupt cache entry deleted", "keyspace", ks.label, "key", string(key))
	_, _ = call(c, ctx, func(ctx context.Context) (int64, error) {
		return c.rdb.Del(ctx, string(key)).Result()
	})
}

// lookupRaw fetches an entry that passes the marker check. The bytes alias
// the reply string and must not be modified.
func (s *space) lookupRaw(ctx context.Context, key Key) (raw []byte, found bool, err error) {
	c := s.c
	if !c.sharded {
		r, err := s.hitSingle(ctx, key)
		if err == errCorrupt {
			return nil, true, nil // decoding nil fails: the caller counts and logs it
		}
		if err != nil {
			if err == redis.Nil {
				err = nil
			}
			return nil, false, err
		}
		return unsafe.Slice(unsafe.StringData(r), len(r)), true, nil
	}
	r, err := call(c, ctx, func(ctx context.Context) (string, error) {
		return c.rdb.Get(ctx, string(key)).Result()
	})
	if err != nil {
		if err == redis.Nil {
			err = nil
		}
		return nil, false, err
	}
	raw = unsafe.Slice(unsafe.StringData(r), len(r))
	e, deps, ok := decodeEnvelope(raw)
	if !ok {
		return raw, true, nil // let the caller reject and delete it
	}
	var names []string
	eachDep(deps, func(d string) { names = append(names, d) })
	stale, err := c.staleSince(ctx, e.seq, names)
	switch {
	case err == errCorrupt:
		return nil, true, nil // as above
	case err != nil || stale:
		return nil, false, err
	}
	return raw, true, nil
}

// hitSingle runs the hit script within the budget. It is call() unrolled
// for the hottest path: no closure when the client honours deadlines.
func (s *space) hitSingle(ctx context.Context, key Key) (string, error) {
	c := s.c
	if !c.brk.allow() {
		return "", errBreakerOpen
	}
	var r string
	var err error
	if c.ctxTO {
		dctx := c.budget(ctx)
		r, err = hitScript.hit(dctx, c.rdb, key)
		err = dctx.timedOut(err)
	} else {
		r, err = bounded(c, ctx, func(ctx context.Context) (string, error) { return hitScript.hit(ctx, c.rdb, key) })
	}
	c.settle(ctx, err)
	return r, err
}

// staleSince reports whether any marker was bumped past seq (Cluster: one
// pipelined round, run on the markers' nodes in parallel). A marker that is
// not a number — a foreign key named by a hostile entry — is errCorrupt, not a
// Redis failure.
func (c *Cache) staleSince(ctx context.Context, seq uint64, markers []string) (bool, error) {
	return call(c, ctx, func(ctx context.Context) (bool, error) {
		cmds := make([]*redis.StringCmd, len(markers))
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, m := range markers {
				cmds[i] = p.Get(ctx, m)
			}
			return nil
		})
		var reply redis.Error
		if err != nil && err != redis.Nil && !errors.As(err, &reply) {
			return false, err
		}
		corrupt := false
		for _, cmd := range cmds {
			at, err := parseSeq(cmd)
			if err != nil {
				corrupt = true
				continue
			}
			if at > seq {
				return true, nil
			}
		}
		if corrupt {
			return true, errCorrupt
		}
		return false, nil
	})
}

func (c *Cache) tagKey(tag string) string { return c.ns + "t:" + tag }
