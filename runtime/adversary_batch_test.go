package runtime

// Adversarial tests of batch reads (review h9). Each test FAILS on the
// runtime of 51b5762 because of a real bug unless its comment says
// "passes". Several Cache instances on one namespace stand for processes
// (each has its own flights), except where real OS processes are needed.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// countingBatch is a batch source over ids that all exist, counting the
// loads of every id.
type countingBatch struct {
	mu    sync.Mutex
	loads map[int64]int
	calls int
	delay time.Duration
}

func newCountingBatch() *countingBatch { return &countingBatch{loads: map[int64]int{}} }

func (s *countingBatch) load(ctx context.Context, ids []int64) (map[int64]*user, error) {
	s.mu.Lock()
	s.calls++
	for _, id := range ids {
		s.loads[id]++
	}
	s.mu.Unlock()
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	out := make(map[int64]*user, len(ids))
	for _, id := range ids {
		out[id] = &user{ID: id, Name: "u" + strconv.FormatInt(id, 10)}
	}
	return out, nil
}

func (s *countingBatch) batch() Batch[int64, *user] {
	return Batch[int64, *user]{
		Key:  func(b []byte, id int64) []byte { return AppendInt(append(b, "user:"...), id) },
		Load: s.load,
		Tags: func(id int64) []string { return []string{"user:" + strconv.FormatInt(id, 10)} },
	}
}

func (s *countingBatch) twice() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad []string
	for id, n := range s.loads {
		if n != 1 {
			bad = append(bad, fmt.Sprintf("%d×%d", id, n))
		}
	}
	slices.Sort(bad)
	return bad
}

func leaseHeld(ctx context.Context, rdb redis.UniversalClient, ks *Keyspace[*user], id int64) bool {
	n, err := rdb.Exists(ctx, leaseKeyOf(userKey(ks, id))).Result()
	return err == nil && n == 1
}

// TestAdversaryBatchLeaseCycle: a batch sends the fills of the ids it loaded
// only after every id it *waits for* (a lease another process holds) has
// resolved (loadOwned: wg.Wait() over the chunk loads and the waits, then
// fillBatchArgs). Two batches in two processes that each hold the lease of
// one id and wait for the other's therefore wait on each other in a cycle:
// neither fill is ever sent, both wait out the whole lease wait, then each
// loads the other's id again, alone and without a fill.
//
// The cycle forms whenever a lease a batch waits for is freed without a fill
// (the holder's source failed, its caller gave up, its lease expired) and
// another batch takes it before the waiter's next poll — here forced with a
// single Get whose source fails — and, without any third party, whenever two
// look rounds larger than one socket read of Redis (~16 KB: about 60 ids)
// interleave, which is what TestWarm's two concurrent warm-ups of 1200 ids do
// (it fails on this code: hundreds of ids loaded twice, 10-60 s).
//
// Expected: each of ids 1 and 2 loaded once, both batches done well before
// the lease wait. FAILS (deterministic): both take the full lease wait and
// both ids are loaded twice.
func TestAdversaryBatchLeaseCycle(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		ns := WithNamespace(testNamespace(t))
		lease := WithLease(10*time.Second, 1500*time.Millisecond)
		a := newTestCache(t, rdb, ns, lease)
		defer a.Close()
		b := newTestCache(t, rdb, ns, lease, WithPoll(400*time.Millisecond, 400*time.Millisecond))
		defer b.Close()
		c := newTestCache(t, rdb, ns, lease)
		defer c.Close()
		aks, bks, cks := userSpace(a), userSpace(b), userSpace(c)
		if _, err := a.ensureState(ctx); err != nil {
			t.Fatal(err)
		}
		src := newCountingBatch()

		// Process C holds id 1's lease; its source is about to fail.
		fail := make(chan struct{})
		cdone := make(chan error, 1)
		go func() {
			_, err := loadVia(ctx, cks, userKey(cks, 1), Loader[*user]{
				Load: func(context.Context) (*user, error) { <-fail; return nil, errors.New("db blip") },
			})
			cdone <- err
		}()
		waitFor(t, 5*time.Second, "C's lease on id 1", func() bool { return leaseHeld(ctx, rdb, cks, 1) })

		// Process B: batch [1 2] takes id 2's lease, waits for id 1 (polls every 400ms).
		type res struct {
			m   map[int64]*user
			err error
			d   time.Duration
		}
		bres, ares := make(chan res, 1), make(chan res, 1)
		start := time.Now()
		go func() {
			m, err := GetMany(ctx, bks, []int64{1, 2}, src.batch())
			bres <- res{m, err, time.Since(start)}
		}()
		waitFor(t, 5*time.Second, "B's lease on id 2 (or its fill)", func() bool {
			n, _ := rdb.Exists(ctx, leaseKeyOf(userKey(bks, 2)), string(userKey(bks, 2))).Result()
			return n > 0
		})

		// C's source fails: id 1's lease is free until B's next poll.
		close(fail)
		if err := <-cdone; err == nil {
			t.Fatal("C's load did not fail")
		}
		waitFor(t, 5*time.Second, "C's lease released", func() bool { return !leaseHeld(ctx, rdb, cks, 1) })

		// Process A: batch [1 2] takes id 1's lease, finds id 2 busy (B).
		go func() {
			m, err := GetMany(ctx, aks, []int64{1, 2}, src.batch())
			ares <- res{m, err, time.Since(start)}
		}()
		for _, ch := range []chan res{ares, bres} {
			r := <-ch
			if r.err != nil || len(r.m) != 2 || r.m[1] == nil || r.m[2] == nil {
				t.Fatalf("batch: %v %v", r.m, r.err)
			}
			if r.d >= 1500*time.Millisecond {
				t.Errorf("a batch took %v: it waited out the lease wait (1.5s)", r.d.Round(time.Millisecond))
			}
		}
		if bad := src.twice(); len(bad) > 0 {
			t.Errorf("ids loaded more than once (id×loads): %v; lease timeouts A=%d B=%d",
				bad, a.Stats()[EventLeaseTimeout], b.Stats()[EventLeaseTimeout])
		}
	})
}

// TestAdversaryBatchWaitPolls: a batch whose ids another process is
// loading waits for each of them through the single protocol — one
// goroutine and one polling loop per id, each look its own round trip
// (loadShared), every pollMin..pollCap (a quarter of the average load: a
// 30 ms source polls every 7.5 ms). A GetMany of 500 ids that another
// process holds the leases of sends 500 round trips at once and then about
// 500 × 130 a second, for as long as the other load runs: one page view
// becomes a load on Redis that a few concurrent ones turn into budget
// timeouts, an open breaker and a cache outage
// (TestBatchProcesses: thousands of "exceeded the time budget"
// errors per process, each id loaded 8-60 times). A batch must look at all
// the ids it waits for in one round trip per poll, as it does for its
// first look. FAILS (deterministic): over 2000 round trips in 600 ms for
// one batch.
func TestAdversaryBatchWaitPolls(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	hook := &roundTrips{}
	brdb := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, ContextTimeoutEnabled: true})
	defer brdb.Close()
	brdb.AddHook(hook)
	ns := WithNamespace(testNamespace(t))
	a := newTestCache(t, rdb, ns)
	defer a.Close()
	b := newTestCache(t, brdb, ns, WithPoll(2*time.Millisecond, 20*time.Millisecond))
	defer b.Close()
	aks, bks := userSpace(a), userSpace(b)
	ids := make([]int64, 500)
	for i := range ids {
		ids[i] = int64(i)
	}
	srcA, srcB := newCountingBatch(), newCountingBatch()
	srcA.delay = 600 * time.Millisecond
	if _, err := a.ensureState(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // process A loads the 500 ids (slowly)
		defer close(done)
		if _, err := GetMany(ctx, aks, ids, srcA.batch()); err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, 5*time.Second, "A's leases", func() bool { return leaseHeld(ctx, rdb, aks, 499) })
	hook.n.Store(0)
	got, err := GetMany(ctx, bks, ids, srcB.batch())
	if err != nil || len(got) != len(ids) {
		t.Fatalf("%d ids, %v", len(got), err)
	}
	n := hook.n.Load()
	<-done
	srcB.mu.Lock()
	defer srcB.mu.Unlock()
	if srcB.calls != 0 {
		t.Errorf("B called the source %d times (A was loading every id)", srcB.calls)
	}
	// One lookup, one look round, then one look round per poll (≤ 600ms / 2ms).
	if n > 400 {
		t.Fatalf("one batch waiting for 500 ids sent %d round trips to Redis in ~600ms", n)
	}
}

// phaseHook runs fire once, at the first pipeline of the hooked client that
// match picks, before (or after) it is sent.
type phaseHook struct {
	mu    sync.Mutex
	match func(cmds []redis.Cmder) bool
	after bool
	fire  func()
}

func (h *phaseHook) arm(match func([]redis.Cmder) bool, after bool, fire func()) {
	h.mu.Lock()
	h.match, h.after, h.fire = match, after, fire
	h.mu.Unlock()
}

// take returns the fire func when cmds match at this point (once).
func (h *phaseHook) take(cmds []redis.Cmder, after bool) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.match == nil || h.after != after || !h.match(cmds) {
		return nil
	}
	f := h.fire
	h.match = nil
	return f
}

func (h *phaseHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *phaseHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *phaseHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if f := h.take(cmds, false); f != nil {
			f()
		}
		err := next(ctx, cmds)
		if f := h.take(cmds, true); f != nil {
			f()
		}
		return err
	}
}

func hasCmd(cmds []redis.Cmder, name string, arg string) bool {
	for _, c := range cmds {
		if strings.EqualFold(c.Name(), name) {
			if arg == "" {
				return true
			}
			for _, a := range c.Args() {
				if s, ok := a.(string); ok && strings.EqualFold(s, arg) {
					return true
				}
			}
		}
	}
	return false
}

// TestAdversaryBatchWriteAtEveryPhase: a write (the row changes, then its
// invalidation returns, from another process) lands at each step of a batch
// read — after its lookup, after its look round, during its source call,
// before its fill round — as a key, a tag, a group, InvalidateAll,
// DeletePattern or a put. Every read that begins after the write returned
// (a batch and a single get in the batch's process, a batch in a third)
// must see the new row. Passes.
func TestAdversaryBatchWriteAtEveryPhase(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		var hooked redis.UniversalClient
		switch r := rdb.(type) {
		case *redis.Client:
			hooked = redis.NewClient(&redis.Options{Addr: r.Options().Addr, ContextTimeoutEnabled: true})
		case *redis.ClusterClient:
			hooked = redis.NewClusterClient(&redis.ClusterOptions{Addrs: r.Options().Addrs, ContextTimeoutEnabled: true})
		}
		defer hooked.Close()
		hook := &phaseHook{}
		hooked.AddHook(hook)
		type phase struct {
			name  string
			match func([]redis.Cmder) bool
			after bool
		}
		phases := []phase{
			{"after lookup", func(c []redis.Cmder) bool {
				return hasCmd(c, "mget", "") || (hasCmd(c, "get", "") && !hasCmd(c, "set", "") && !hasCmd(c, "zrangebyscore", ""))
			}, true},
			{"after look", func(c []redis.Cmder) bool { return hasCmd(c, "set", "NX") }, true},
			{"during load", nil, false},
			{"before fill", func(c []redis.Cmder) bool { return hasCmd(c, "zmscore", "") }, false},
		}
		writes := []string{"key", "tag", "group", "all", "pattern", "put"}
		ctx := context.Background()
		for _, ph := range phases {
			for _, w := range writes {
				ns := WithNamespace(testNamespace(t))
				rc := newTestCache(t, hooked, ns)
				wc := newTestCache(t, rdb, ns)
				oc := newTestCache(t, rdb, ns)
				rks, wks, oks := userSpace(rc), userSpace(wc), userSpace(oc)
				src := newBatchUsers(10)
				ids := []int64{3, 7, 8}
				// id 3 warm (hit in the lookup), 7 and 8 cold.
				if _, err := getOne(ctx, rks, src, 3); err != nil {
					t.Fatal(err)
				}
				rc.waitFills()
				var returned atomic.Bool
				write := func() {
					for _, id := range []int64{3, 7} {
						src.set(id, "new")
					}
					var err error
					switch w {
					case "key":
						err = wc.Invalidate(ctx, Invalidation{Keys: []Key{userKey(wks, 3), userKey(wks, 7)}})
					case "tag":
						err = wc.Invalidate(ctx, Invalidation{Tags: []string{"user:3", "user:7"}})
					case "group":
						err = wc.Invalidate(ctx, Invalidation{Groups: []Group{wks.Group()}})
					case "all":
						err = wks.core.repo.InvalidateAll(ctx)
					case "pattern":
						_, err = wks.core.repo.DeletePattern(ctx, "user:*")
					case "put":
						Put(ctx, wks, userKey(wks, 3), &user{ID: 3, Name: "new"}, []string{"user:3"}, Invalidation{})
						Put(ctx, wks, userKey(wks, 7), &user{ID: 7, Name: "new"}, []string{"user:7"}, Invalidation{})
					}
					if err != nil {
						t.Error(err)
					}
					returned.Store(true)
				}
				b := userBatch(src)
				if ph.match == nil {
					load := b.Load
					b.Load = func(ctx context.Context, ids []int64) (map[int64]*user, error) {
						m, err := load(ctx, ids) // read before the write
						if !returned.Load() {
							write()
						}
						return m, err
					}
				} else {
					hook.arm(ph.match, ph.after, write)
				}
				if _, err := GetMany(ctx, rks, ids, b); err != nil {
					t.Fatal(err)
				}
				rc.waitFills()
				if !returned.Load() {
					t.Fatalf("%s/%s: the write never ran", ph.name, w)
				}
				hook.arm(nil, false, nil)
				rc.waitFills()
				check := func(who string, u *user) {
					if u == nil || u.Name != "new" {
						t.Errorf("%s, %s write: %s read %+v after the write returned", ph.name, w, who, u)
					}
				}
				for _, id := range []int64{3, 7} {
					m, err := GetMany(ctx, rks, ids, userBatch(src))
					if err != nil {
						t.Fatal(err)
					}
					check("the batch's process (batch)", m[id])
					u, _ := getOne(ctx, rks, src, id)
					check("the batch's process (single)", u)
					m, _ = GetMany(ctx, oks, ids, userBatch(src))
					check("a third process (batch)", m[id])
				}
				rc.Close()
				wc.Close()
				oc.Close()
			}
		}
	})
}

// TestAdversaryBatchAbsentL1: a keyspace of a value type without a
// not-found error, with local=. An id the batch source does not return is
// stored in Redis as a nil entry, which a single get from Redis serves as
// (zero value, nil error); but settleSlot hands the L1 (and the flight: a
// get that joined it and wins the first take) the result's error errAbsent,
// "cachegen: not returned by the batch source", so a single get served by
// the L1 returns an error the source never returned — and a different
// answer from the same entry's L2 hit. FAILS (deterministic).
func TestAdversaryBatchAbsentL1(t *testing.T) {
	ctx := context.Background()
	c := newTestCache(t, redisClient(t))
	defer c.Close()
	ks := NewKeyspace(c.Repo("scores", 1), Spec[score]{Template: "score:{}", Schema: "v1", TTL: time.Minute,
		Negative: time.Minute, Local: time.Minute})
	if _, err := c.ensureState(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the L1's subscription", func() bool { return localStart(&ks.core).sgen != 0 })
	b := Batch[int64, score]{
		Key: func(b []byte, id int64) []byte { return AppendInt(append(b, "score:"...), id) },
		Load: func(_ context.Context, ids []int64) (map[int64]score, error) {
			return map[int64]score{1: {ID: 1, Value: 10}}, nil // 3 does not exist
		},
	}
	if _, err := GetMany(ctx, ks, []int64{1, 3}, b); err != nil {
		t.Fatal(err)
	}
	c.waitFills()
	key3 := ks.Key(AppendInt(append(ks.AppendPrefix(nil), "score:"...), 3))
	l1 := Lookup(ctx, ks, key3) // the L1 entry the fill made
	var l2 Read[score]          // the Redis entry
	lookup(ctx, &ks.core, key3, false, &l2.read)
	ks.typed(&l2)
	if !l1.Hit || !l2.Hit || l1.Err != nil || l2.Err != nil || l1.Value != l2.Value {
		t.Fatalf("id 3 from the L1: hit %v (%v, %v); from Redis: hit %v (%v, %v)", l1.Hit, l1.Value, l1.Err, l2.Hit, l2.Value, l2.Err)
	}
}

// TestAdversaryBatchCancelledJoinedGet: the batch's caller gives up while a
// single get in its process has joined the batch's flight for one id: the
// get still gets its value, and the batch returns its context's error.
// Passes.
func TestAdversaryBatchCancelledJoinedGet(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := newTestCache(t, rdb)
		defer c.Close()
		ks := userSpace(c)
		if _, err := c.ensureState(ctx); err != nil {
			t.Fatal(err)
		}
		src := newBatchUsers(10)
		src.delay = 300 * time.Millisecond
		bctx, cancel := context.WithCancel(ctx)
		berr := make(chan error, 1)
		go func() {
			_, err := GetMany(bctx, ks, []int64{1, 2, 3}, userBatch(src))
			berr <- err
		}()
		time.Sleep(50 * time.Millisecond)
		gres := make(chan error, 1)
		go func() {
			u, err := getOne(ctx, ks, src, 2)
			if err == nil && (u == nil || u.Name != "u2") {
				err = fmt.Errorf("got %+v", u)
			}
			gres <- err
		}()
		time.Sleep(50 * time.Millisecond)
		cancel()
		if err := <-berr; !errors.Is(err, context.Canceled) {
			t.Errorf("the cancelled batch returned %v", err)
		}
		if err := <-gres; err != nil {
			t.Fatalf("the joined get: %v", err)
		}
		if n := len(src.single); n != 0 {
			t.Fatalf("the get loaded id 2 itself (%d single loads)", n)
		}
	})
}
