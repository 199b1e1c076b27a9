package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// remote is the one seam between the protocol and the topology: every Redis
// command the runtime sends goes through it. On a single node (and Sentinel)
// entries and the invalidation state share one server, so each step is one
// command or one script over all its keys; on Cluster (and Ring) the state
// lives in its own slot and a step that spans both runs as parallel rounds.
// Callers bound every method with the time budget (call, bounded).
type remote interface {
	// hit reads an entry and the clock. found is false when there is no entry;
	// clock is "" when there is no state.
	hit(ctx context.Context, key Key) (entry string, found bool, clock string, err error)
	// look is one look at a missed key, in one round trip of plain
	// commands: try to take the lease (SET NX GET), and read the entry, the
	// hand-off and the clock.
	look(ctx context.Context, key Key, lease, value string) (lookResult, error)
	// fill stores env under the lease (storeScript) and, in the same round,
	// reads the entry's markers; stale reports a marker bumped past f.seq
	// (the entry just stored is then dropped again by unfill).
	fill(ctx context.Context, f *fillArgs) (stored, stale bool, err error)
	// unfill deletes a stale fill's entry and leaves its value as the hand-off.
	unfill(ctx context.Context, f *fillArgs) error
	// store runs storeScript (write-through, or the sharded fill's second step).
	store(ctx context.Context, key Key, lease, token string, env []byte, ttl time.Duration) (int64, error)
	// invalidate runs invalidateScript, deleting keys (and their leases), and
	// waits for replicas when acks > 0.
	invalidate(ctx context.Context, keys []Key, members []string, mode byte, acks int) (stateReply, error)
	// catchUp reads the clock, then every marker bumped after pos.
	catchUp(ctx context.Context, pos uint64, limit int) (clock string, marks []redis.Z, err error)
	// resolve returns the last bump of each id (0: none), and ok=false when
	// the incarnation member inc is missing (the state was lost).
	resolve(ctx context.Context, inc uint64, ids []uint64) (scores []float64, ok bool, err error)
	// rotate replaces the incarnation inc with a new one unless already done.
	rotate(ctx context.Context, inc, next uint64) error
	// hitMany, lookMany, fillMany and unfillMany are the batch forms of hit,
	// look, fill and unfill (remote_batch.go).
	hitMany(ctx context.Context, keys []Key) (manyHit, error)
	lookMany(ctx context.Context, keys []Key, leases, values []string) ([]lookResult, []error, string, error)
	fillMany(ctx context.Context, fs []*fillArgs) ([]fillOutcome, error)
	unfillMany(ctx context.Context, fs []*fillArgs) error
	// replicas is the number of replicas of the state's master, and that
	// master's replication id (it changes when a replica is promoted).
	replicas(ctx context.Context) (int, string, error)
}

// fillArgs is one fill.
type fillArgs struct {
	key          Key
	lease, token string
	env          []byte
	ttl          time.Duration
	seq          uint64
	members      []string // every marker of the entry
	handoff      time.Duration
}

// lookResult is what one look saw. When taken, the caller holds the lease
// (value) and must use or release it.
type lookResult struct {
	taken      bool
	holder     string // the lease's value when another caller holds it
	entry      string
	hasEntry   bool
	handoff    string
	hasHandoff bool
	clock      string
}

// queueLook adds a look's commands to a pipeline; read turns their replies
// into a lookResult.
func queueLook(ctx context.Context, p redis.Pipeliner, key Key, lease, value string, leaseMs int64, clockKey string) func() (lookResult, error) {
	set := p.Do(ctx, "set", lease, value, "NX", "GET", "PX", leaseMs)
	entry := p.Get(ctx, string(key))
	handoff := p.Get(ctx, handoffKeyOf(key))
	var clock *redis.StringCmd
	if clockKey != "" { // "": the batch look reads one clock for all its keys
		clock = p.Get(ctx, clockKey)
	}
	return func() (lookResult, error) {
		var r lookResult
		old, err := set.Text()
		switch {
		case err == redis.Nil:
			r.taken = true
		case err != nil:
			return r, err
		default:
			r.holder = old
		}
		var e error
		if r.entry, e = entry.Result(); e == nil {
			r.hasEntry = true
		} else if e != redis.Nil && !isReply(e) {
			return r, e
		}
		if r.handoff, e = handoff.Result(); e == nil {
			r.hasHandoff = true
		} else if e != redis.Nil && !isReply(e) {
			return r, e
		}
		if clock == nil {
			return r, nil
		}
		if c, e := clock.Result(); e == nil {
			r.clock = c
		} else if e != redis.Nil && !isReply(e) {
			return r, e
		}
		return r, nil
	}
}

func lookOn(ctx context.Context, rdb redis.UniversalClient, key Key, lease, value string, leaseMs int64, clockKey string) (lookResult, error) {
	var read func() (lookResult, error)
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		read = queueLook(ctx, p, key, lease, value, leaseMs, clockKey)
		return nil
	})
	if err != nil && err != redis.Nil && !isReply(err) {
		return lookResult{}, err
	}
	return read()
}

// fillOn reads the entry's markers and stores it under the lease in one
// pipeline (Redis runs the ZMSCORE first on a single node; on Cluster they
// run on two masters in parallel, and the hit rule covers an invalidation
// that lands in between). Plain ZMSCORE outside the store script keeps the
// script small: Lua costs more than the commands it runs.
func fillOn(ctx context.Context, rdb redis.UniversalClient, st *stateKeys, f *fillArgs) (stored, stale bool, err error) {
	var scores *redis.FloatSliceCmd
	var store *redis.Cmd
	_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		scores = p.ZMScore(ctx, st.marks, f.members...)
		store = storeScript.evalsha(ctx, p, []string{string(f.key), f.lease}, f.token, f.env, f.ttl.Milliseconds())
		return nil
	})
	if err != nil && err != redis.Nil && !isReply(err) {
		return false, false, err
	}
	if e := store.Err(); e != nil && strings.HasPrefix(e.Error(), "NOSCRIPT") {
		store = storeScript.run(ctx, rdb, []string{string(f.key), f.lease}, f.token, f.env, f.ttl.Milliseconds())
	}
	n, err := store.Int64()
	if err != nil {
		return false, false, err
	}
	if scores.Err() != nil { // not a sorted set: the state is gone, so is the entry's incarnation
		return n == 1, true, nil
	}
	for _, s := range scores.Val() {
		if uint64(s) > f.seq {
			return n == 1, true, nil
		}
	}
	return n == 1, false, nil
}

func unfillOn(ctx context.Context, rdb redis.UniversalClient, f *fillArgs) error {
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, string(f.key))
		p.Set(ctx, handoffKeyOf(f.key), f.env, f.handoff)
		return nil
	})
	return err
}

// stateReply is what an invalidation returns.
type stateReply struct{ inc, seq, prev uint64 }

// stateKeys names the two keys of the invalidation state: one hash slot.
type stateKeys struct {
	clock, marks string
	retention    string // the longest retention asked for
	keep         int64  // this process's marker retention, µs
	limit        int    // marker count past which the state starts again
	newInc       func() uint64
	channel      string // where invalidations are published: "<ns>:{<ns>}:inv[:<db>]"
	pub          byte   // 'p' PUBLISH, 's' SPUBLISH (Cluster)
	pubArg       string // the scripts' publish argument: pub, then the channel's ":<db>"
}

func (s *stateKeys) argv(mode byte, members []string) []any {
	args := make([]any, 0, 4+len(members))
	args = append(args, s.newInc(), s.keep, s.limit, string(mode)+s.pubArg)
	for _, m := range members {
		args = append(args, m)
	}
	return args
}

func parseState(v any, err error) (stateReply, error) {
	if err != nil {
		return stateReply{}, err
	}
	vals, ok := v.([]any)
	if !ok || len(vals) != 3 {
		return stateReply{}, fmt.Errorf("cachegen: unexpected reply %v from the invalidation script", v)
	}
	var r stateReply
	for i, p := range []*uint64{&r.inc, &r.seq, &r.prev} {
		s, _ := vals[i].(string)
		if *p, err = strconv.ParseUint(s, 10, 64); err != nil {
			return stateReply{}, fmt.Errorf("cachegen: unexpected reply %v from the invalidation script", v)
		}
	}
	return r, nil
}

// parseClock splits "<inc>:<seq>" without allocating.
func parseClock(s string) (inc, seq uint64, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return 0, 0, false
	}
	inc, err1 := strconv.ParseUint(s[:i], 10, 64)
	seq, err2 := strconv.ParseUint(s[i+1:], 10, 64)
	return inc, seq, err1 == nil && err2 == nil && inc != 0
}

func scoresOf(f []float64, err error) ([]float64, bool, error) {
	if isReply(err) {
		return nil, false, nil // not a sorted set: the state is lost
	}
	if err != nil {
		return nil, false, err
	}
	if len(f) == 0 || f[0] == 0 { // the incarnation member is gone
		return nil, false, nil
	}
	return f[1:], true, nil
}

func resolveArgs(inc uint64, ids []uint64) []string {
	m := make([]string, 0, 1+len(ids))
	m = append(m, incMember(inc))
	for _, id := range ids {
		m = append(m, memberOf(id))
	}
	return m
}

func incMember(inc uint64) string { return "inc:" + strconv.FormatUint(inc, 10) }

// replicasOf parses connected_slaves and master_replid from INFO replication.
func replicasOf(info string) (n int, replid string) {
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "connected_slaves:"); ok {
			n, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(line, "master_replid:"); ok {
			replid = v
		}
	}
	return n, replid
}

// waitReply checks a WAIT reply against the replicas asked for.
func waitReply(cmd *redis.Cmd, acks int) error {
	n, err := cmd.Int64()
	if err != nil {
		return err
	}
	if n < int64(acks) {
		return fmt.Errorf("%w: %d of %d replicas acknowledged", errNotReplicated, n, acks)
	}
	return nil
}

// errNotReplicated: an invalidation ran on the master but no replica has it
// yet, so a failover could lose it; it is replayed like an undelivered one.
var errNotReplicated = errors.New("cachegen: invalidation not acknowledged by replicas")

// errPartial: some keys of a batch step failed (a Cluster master down).
var errPartial = errors.New("cachegen: part of a batch call failed")

// base holds what both topologies do alike: each of these steps touches one
// slot, or pipelines that go-redis sends to every master in parallel.
type base struct {
	rdb     redis.UniversalClient
	st      *stateKeys
	wait    time.Duration
	leaseMs int64
}

func (r *base) look(ctx context.Context, key Key, lease, value string) (lookResult, error) {
	return lookOn(ctx, r.rdb, key, lease, value, r.leaseMs, r.st.clock)
}

func (r *base) fill(ctx context.Context, f *fillArgs) (bool, bool, error) {
	return fillOn(ctx, r.rdb, r.st, f)
}

func (r *base) unfill(ctx context.Context, f *fillArgs) error { return unfillOn(ctx, r.rdb, f) }

func (r *base) store(ctx context.Context, key Key, lease, token string, env []byte, ttl time.Duration) (int64, error) {
	return storeScript.run(ctx, r.rdb, []string{string(key), lease}, token, env, ttl.Milliseconds()).Int64()
}

func (r *base) catchUp(ctx context.Context, pos uint64, limit int) (string, []redis.Z, error) {
	return catchUpOn(ctx, r.rdb, r.st, pos, limit)
}

func (r *base) resolve(ctx context.Context, inc uint64, ids []uint64) ([]float64, bool, error) {
	return scoresOf(r.rdb.ZMScore(ctx, r.st.marks, resolveArgs(inc, ids)...).Result())
}

func (r *base) rotate(ctx context.Context, inc, next uint64) error {
	return rotateScript.run(ctx, r.rdb, []string{r.st.clock, r.st.marks}, inc, next, r.st.pubArg).Err()
}

// single is a single Redis server (or a Sentinel-managed master).
type single struct {
	base
	clock any // st.clock boxed once for the hit's MGET
}

func (r *single) hit(ctx context.Context, key Key) (string, bool, string, error) {
	cmd := r.rdb.Do(ctx, "mget", string(key), r.clock)
	vals, err := cmd.Slice()
	if err != nil {
		return "", false, "", err
	}
	if len(vals) != 2 {
		return "", false, "", fmt.Errorf("cachegen: unexpected MGET reply %v", vals)
	}
	e, found := vals[0].(string)
	c, _ := vals[1].(string)
	return e, found, c, nil
}

func (r *single) invalidate(ctx context.Context, keys []Key, members []string, mode byte, acks int) (stateReply, error) {
	ks := make([]string, 0, 3+3*len(keys))
	ks = append(ks, r.st.clock, r.st.marks, r.st.retention)
	for _, k := range keys {
		ks = append(ks, string(k), leaseKeyOf(k), handoffKeyOf(k))
	}
	args := r.st.argv(mode, members)
	if acks == 0 {
		return parseState(invalidateScript.run(ctx, r.rdb, ks, args...).Result())
	}
	// WAIT covers the writes of its own connection: one pipeline.
	var inv, wait *redis.Cmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		inv = invalidateScript.eval(ctx, p, ks, args...)
		wait = p.Do(ctx, "wait", acks, r.wait.Milliseconds())
		return nil
	})
	if err != nil && inv.Err() == nil && wait.Err() == nil {
		return stateReply{}, err
	}
	if inv.Err() != nil && refusedShebang(inv.Err()) {
		invalidateScript.noShebang.Store(true)
		return r.invalidate(ctx, keys, members, mode, acks)
	}
	rep, err := parseState(inv.Result())
	if err != nil {
		return rep, err
	}
	return rep, waitReply(wait, acks)
}

func catchUpOn(ctx context.Context, rdb redis.UniversalClient, st *stateKeys, pos uint64, limit int) (string, []redis.Z, error) {
	var clock *redis.StringCmd
	var marks *redis.ZSliceCmd
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		clock = p.Get(ctx, st.clock) // first: every bump up to it is in the range below
		marks = p.ZRangeByScoreWithScores(ctx, st.marks, &redis.ZRangeBy{
			Min: "(" + strconv.FormatUint(pos, 10), Max: "+inf", Count: int64(limit) + 1})
		return nil
	})
	if err != nil && err != redis.Nil && !isReply(err) {
		return "", nil, err
	}
	c, err := clock.Result()
	if err == redis.Nil || isReply(err) {
		return "", nil, nil // no usable state
	}
	if err != nil {
		return "", nil, err
	}
	z, err := marks.Result()
	if isReply(err) {
		return c, nil, nil // the marker set is not a sorted set: treated as lost
	}
	return c, z, err
}

func (r *single) replicas(ctx context.Context) (int, string, error) {
	info, err := r.rdb.Info(ctx, "replication").Result()
	n, id := replicasOf(info)
	return n, id, err
}

// sharded is a Redis Cluster (or Ring): the state's slot has its own master.
type sharded struct{ base }

func (r *sharded) hit(ctx context.Context, key Key) (string, bool, string, error) {
	var e, c *redis.StringCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		e = p.Get(ctx, string(key))
		c = p.Get(ctx, r.st.clock)
		return nil
	})
	if err != nil && err != redis.Nil {
		return "", false, "", err
	}
	ev, eerr := e.Result()
	cv, cerr := c.Result()
	if eerr != nil && eerr != redis.Nil {
		return "", false, "", eerr
	}
	if cerr != nil && cerr != redis.Nil && !isReply(cerr) {
		return "", false, "", cerr
	}
	if cerr != nil { // no state (or a foreign key where it belongs, which the next invalidation replaces)
		cv = ""
	}
	return ev, eerr == nil, cv, nil
}

func (r *sharded) invalidate(ctx context.Context, keys []Key, members []string, mode byte, acks int) (stateReply, error) {
	sk := []string{r.st.clock, r.st.marks, r.st.retention}
	args := r.st.argv(mode, members)
	if acks == 0 {
		// One parallel round: the script on the state's master, the deletes
		// on theirs.
		var inv *redis.Cmd
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			inv = invalidateScript.eval(ctx, p, sk, args...)
			for _, k := range keys {
				// One key per DEL: a multi-key DEL in a migrating slot gets
				// TRYAGAIN when only some of the keys moved.
				p.Del(ctx, string(k))
				p.Del(ctx, leaseKeyOf(k))
				p.Del(ctx, handoffKeyOf(k))
			}
			return nil
		})
		if inv.Err() != nil && refusedShebang(inv.Err()) {
			invalidateScript.noShebang.Store(true)
			return r.invalidate(ctx, keys, members, mode, acks)
		}
		// The deletes only free memory and void leases early; the key
		// markers the script moved are what invalidates. A failed delete
		// does not fail a delivered invalidation.
		_ = err
		return parseState(inv.Result())
	}
	cl, ok := r.rdb.(*redis.ClusterClient)
	if !ok {
		return stateReply{}, errors.New("cachegen: replica acknowledgement needs a ClusterClient")
	}
	master, err := cl.MasterForKey(ctx, r.st.clock)
	if err != nil {
		return stateReply{}, err
	}
	s := &single{base: base{rdb: master, st: r.st, wait: r.wait}}
	rep, err := s.invalidate(ctx, nil, members, mode, acks)
	if err != nil || len(keys) == 0 {
		return rep, err
	}
	_, _ = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, string(k))
			p.Del(ctx, leaseKeyOf(k))
			p.Del(ctx, handoffKeyOf(k))
		}
		return nil
	})
	return rep, nil
}

func (r *sharded) replicas(ctx context.Context) (int, string, error) {
	cl, ok := r.rdb.(*redis.ClusterClient)
	if !ok {
		return 0, "", nil
	}
	master, err := cl.MasterForKey(ctx, r.st.clock)
	if err != nil {
		return 0, "", err
	}
	info, err := master.Info(ctx, "replication").Result()
	n, id := replicasOf(info)
	return n, id, err
}

// leaseKeyOf derives the lease key from an entry key: same hash slot, 'l'
// for 'e' (the namespace is escaped, so the first '{' is the runtime's).
func leaseKeyOf(k Key) string { return siblingOf(k, 'l') }

// handoffKeyOf derives the key of a rejected fill's hand-off: 'h' for 'e'.
func handoffKeyOf(k Key) string { return siblingOf(k, 'h') }

func siblingOf(k Key, kind byte) string {
	b := []byte(k)
	if i := strings.IndexByte(string(k), '{'); i >= 2 {
		b[i-2] = kind
	}
	return string(b)
}

// isReply reports an error reply from Redis (WRONGTYPE and the like), as
// opposed to a failed connection or a timeout.
func isReply(err error) bool {
	var re redis.Error
	return err != nil && err != redis.Nil && errors.As(err, &re) && !isOOM(err) &&
		!strings.HasPrefix(err.Error(), "NOPERM") && !strings.HasPrefix(err.Error(), "LOADING") &&
		!strings.HasPrefix(err.Error(), "MOVED") && !strings.HasPrefix(err.Error(), "ASK") &&
		!strings.HasPrefix(err.Error(), "CLUSTERDOWN") && !strings.HasPrefix(err.Error(), "TRYAGAIN") &&
		!strings.HasPrefix(err.Error(), "READONLY") && !strings.HasPrefix(err.Error(), "BUSY")
}
