package runtime

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The batch forms of hit, look and fill (docs/runtime.md, "Batch reads"):
// the same commands as the single-key steps, many keys to one pipeline. On a
// single node that is one round trip; on Cluster go-redis splits a pipeline
// by master and sends the parts in parallel, one round per master.

// mgetChunk bounds the keys of one MGET: a reply of a few hundred entries
// stays well inside one socket read, and Redis stays responsive to others.
const mgetChunk = 512

// manyHit is what a batch lookup read: per key its entry (found) or a failure
// (failed: the key's master did not answer); clock is "" without state.
type manyHit struct {
	vals   []string
	found  []bool
	failed []bool
	clock  string
	clkOK  bool // the clock was read (even if absent)
}

func newManyHit(n int) manyHit {
	return manyHit{vals: make([]string, n), found: make([]bool, n), failed: make([]bool, n)}
}

func (r *single) hitMany(ctx context.Context, keys []Key) (manyHit, error) {
	mh := newManyHit(len(keys))
	cmds := make([]*redis.SliceCmd, 0, 1+len(keys)/mgetChunk)
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for lo := 0; lo < len(keys); lo += mgetChunk {
			hi := min(lo+mgetChunk, len(keys))
			args := make([]string, 0, hi-lo+1)
			if lo == 0 {
				args = append(args, r.st.clock) // first: one clock for every entry
			}
			for _, k := range keys[lo:hi] {
				args = append(args, string(k))
			}
			cmds = append(cmds, p.MGet(ctx, args...))
		}
		return nil
	})
	if len(cmds) == 0 || cmds[0].Err() != nil {
		if err == nil {
			err = cmds[0].Err()
		}
		return mh, err
	}
	i := 0
	for ci, cmd := range cmds {
		vals, cerr := cmd.Result()
		if ci == 0 && cerr == nil && len(vals) > 0 {
			mh.clock, _ = vals[0].(string)
			mh.clkOK = true
			vals = vals[1:]
		}
		hi := min(i+mgetChunk, len(keys))
		for j := i; j < hi; j++ {
			if cerr != nil || j-i >= len(vals) {
				mh.failed[j] = true
				continue
			}
			mh.vals[j], mh.found[j] = vals[j-i].(string)
		}
		i = hi
	}
	return mh, firstFailure(mh, err)
}

func (r *sharded) hitMany(ctx context.Context, keys []Key) (manyHit, error) {
	mh := newManyHit(len(keys))
	var clock *redis.StringCmd
	gets := make([]*redis.StringCmd, len(keys))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		clock = p.Get(ctx, r.st.clock)
		for i, k := range keys {
			gets[i] = p.Get(ctx, string(k))
		}
		return nil
	})
	cv, cerr := clock.Result()
	switch {
	case cerr == nil:
		mh.clock, mh.clkOK = cv, true
	case cerr == redis.Nil || isReply(cerr): // no state, or a foreign key where it belongs
		mh.clkOK = true
	default:
		return mh, cerr
	}
	for i, g := range gets {
		v, e := g.Result()
		switch {
		case e == nil:
			mh.vals[i], mh.found[i] = v, true
		case e == redis.Nil || isReply(e):
		default:
			mh.failed[i] = true
		}
	}
	return mh, firstFailure(mh, err)
}

// firstFailure is the error to feed the breaker with: the pipeline's, when
// some key failed.
func firstFailure(mh manyHit, err error) error {
	for _, f := range mh.failed {
		if f {
			if err == nil || err == redis.Nil {
				return errPartial
			}
			return err
		}
	}
	return nil
}

// lookMany is one look per key (lease, entry, hand-off) and then one clock
// read, in one pipeline. errs[i] is key i's failure; clock is the clock read
// after every SET ran (on a single node: pipelines run in order).
func (r *base) lookMany(ctx context.Context, keys []Key, leases, values []string) (res []lookResult, errs []error, clock string, err error) {
	reads := make([]func() (lookResult, error), len(keys))
	var clk *redis.StringCmd
	_, perr := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			reads[i] = queueLook(ctx, p, k, leases[i], values[i], r.leaseMs, "")
		}
		clk = p.Get(ctx, r.st.clock)
		return nil
	})
	c, cerr := clk.Result()
	if cerr != nil && cerr != redis.Nil && !isReply(cerr) {
		err = cerr
	}
	res, errs = make([]lookResult, len(keys)), make([]error, len(keys))
	for i, read := range reads {
		res[i], errs[i] = read()
	}
	if err == nil && perr != nil && perr != redis.Nil && !isReply(perr) {
		for _, e := range errs {
			if e != nil {
				err = errPartial
				break
			}
		}
	}
	return res, errs, c, err
}

// fillOutcome is one fill's result (see fillOn).
type fillOutcome struct {
	stored, stale bool
	err           error
}

// fillMany is fillOn for many entries in one pipeline.
func (r *base) fillMany(ctx context.Context, fs []*fillArgs) ([]fillOutcome, error) {
	scores := make([]*redis.FloatSliceCmd, len(fs))
	stores := make([]*redis.Cmd, len(fs))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, f := range fs {
			scores[i] = p.ZMScore(ctx, r.st.marks, f.members...)
			stores[i] = storeScript.evalsha(ctx, p, []string{string(f.key), f.lease}, f.token, f.env, f.ttl.Milliseconds())
		}
		return nil
	})
	out := make([]fillOutcome, len(fs))
	for i, f := range fs {
		st := stores[i]
		if e := st.Err(); e != nil && strings.HasPrefix(e.Error(), "NOSCRIPT") {
			st = storeScript.run(ctx, r.rdb, []string{string(f.key), f.lease}, f.token, f.env, f.ttl.Milliseconds())
		}
		n, serr := st.Int64()
		if serr != nil {
			out[i].err = serr
			continue
		}
		out[i].stored = n == 1
		if scores[i].Err() != nil { // not a sorted set (or its master failed): treat as raced
			out[i].stale = true
			continue
		}
		for _, s := range scores[i].Val() {
			if uint64(s) > f.seq {
				out[i].stale = true
				break
			}
		}
	}
	if err == redis.Nil || isReply(err) {
		err = nil
	}
	return out, err
}

// unfillMany is unfillOn for many stale fills in one pipeline.
func (r *base) unfillMany(ctx context.Context, fs []*fillArgs) error {
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, f := range fs {
			p.Del(ctx, string(f.key))
			p.Set(ctx, handoffKeyOf(f.key), f.env, f.handoff)
		}
		return nil
	})
	return err
}
