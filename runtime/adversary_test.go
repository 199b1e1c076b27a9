package runtime

// Adversarial tests (review h4). Each test here FAILS on the current runtime
// because of a real bug unless its comment says "passes" — those cover a
// path nothing else exercised. They use several Cache instances on one
// namespace to stand for processes, a source that blocks on a channel, and
// (where needed) a remote wrapper that delays a reply, to force one exact
// interleaving against a real Redis.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
)

// gatedSource is a versioned row whose first read blocks (after reading the
// version) until released: the load that "read the source before the write".
type gatedSource struct {
	versioned
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newGatedSource() *gatedSource {
	g := &gatedSource{entered: make(chan struct{}), release: make(chan struct{})}
	g.version = 1
	g.hook = func(int64) {
		first := false
		g.once.Do(func() { first = true })
		if first {
			close(g.entered)
			select {
			case <-g.release:
			case <-time.After(10 * time.Second):
			}
		}
	}
	return g
}

func waitChan(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestAdversaryDeletePatternLostFill: DeletePattern deletes the entries
// (and the leases of entries that exist) and then bumps only the clock — no
// marker. A load that read the source before the write, and is still
// running (so there is no entry, so its lease is not found by the SCAN and
// survives), fills afterwards: its lease is intact and no marker moved, so
// the fill is accepted and a read that begins after DeletePattern returned
// serves the pre-write row. FAILS (deterministic) on single and sharded code
// paths.
func TestAdversaryDeletePatternLostFill(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprint("sharded=", sharded), func(t *testing.T) {
			ctx := context.Background()
			rdb := redisClient(t)
			ns := testNamespace(t)
			opts := []Option{WithNamespace(ns), WithCluster(sharded)}
			cA, cB, cC := newTestCache(t, rdb, opts...), newTestCache(t, rdb, opts...), newTestCache(t, rdb, opts...)
			defer cA.Close()
			defer cB.Close()
			defer cC.Close()
			ksA, ksB, ksC := userSpace(cA), userSpace(cB), userSpace(cC)
			src := newGatedSource()
			// Make the state exist first (an ordinary namespace in use).
			if err := cB.Invalidate(ctx, Invalidation{Tags: []string{"warm"}}); err != nil {
				t.Fatal(err)
			}

			done := make(chan struct{})
			go func() { // process A: a miss that reads v1 and is slow
				defer close(done)
				_, _ = getRow(ctx, ksA, &src.versioned)
			}()
			waitChan(t, src.entered, "the load to read the source")

			v := src.write() // the write commits v2 ...
			// ... and evicts by pattern in process B.
			if _, err := ksB.core.repo.DeletePattern(ctx, "user:*"); err != nil {
				t.Fatal(err)
			}
			close(src.release)
			waitChan(t, done, "the old load to finish")

			// Process C begins after DeletePattern returned.
			u, err := getRow(ctx, ksC, &src.versioned)
			mustVersion(t, u, err, v)
		})
	}
}

// TestAdversaryNoClockFlightJoinsOldLoad: a caller that read no clock joins
// the flight keyed (key, 0, 0). Load seals such a flight before its source
// call only when it cannot create the state; when ensureState succeeds the
// flight stays open for its whole lease loop and source call. So: the state
// is absent (new namespace, or lost), reader R1 starts a load and reads v1;
// a write commits v2 and its invalidation returns; the clock is then lost
// again (evicted under allkeys-*, a restart, a failover — simulated with
// DEL); reader R2 begins, reads no clock, joins R1's flight and returns v1.
// FAILS (deterministic).
func TestAdversaryNoClockFlightJoinsOldLoad(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	ns := testNamespace(t)
	cA := newTestCache(t, rdb, WithNamespace(ns))
	cW := newTestCache(t, rdb, WithNamespace(ns))
	defer cA.Close()
	defer cW.Close()
	ksA, ksW := userSpace(cA), userSpace(cW)
	src := newGatedSource()
	key := userKey(ksA, 1)

	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = getRow(ctx, ksA, &src.versioned)
	}()
	waitChan(t, src.entered, "R1's load to read the source")

	v := src.write()
	if err := cW.Invalidate(ctx, Invalidation{Keys: []Key{userKey(ksW, 1)}}); err != nil {
		t.Fatal(err)
	}
	// The state is lost after the invalidation returned (eviction of the clock).
	if err := rdb.Del(ctx, cA.state.clock).Err(); err != nil {
		t.Fatal(err)
	}

	type res struct {
		u   *user
		err error
	}
	r2 := make(chan res, 1)
	go func() {
		u, err := getRow(ctx, ksA, &src.versioned) // begins after the write's invalidation returned
		r2 <- res{u, err}
	}()
	// Let R2 reach Load; then let R1's load finish.
	deadline := time.Now().Add(2 * time.Second)
	joined := false
	for time.Now().Before(deadline) && !joined {
		cA.flights.mu.Lock()
		if f := cA.flights.m[flightKey{key, 0, 0}]; f != nil && f.waiters >= 2 {
			joined = true
		}
		cA.flights.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	close(src.release)
	waitChan(t, done, "R1")
	r := <-r2
	if joined {
		t.Logf("R2 joined R1's flight (key, 0, 0), which started before the write")
	}
	mustVersion(t, r.u, r.err, v)
}

// pausingRemote delays the first armed resolve reply after Redis answered it,
// the way a descheduled goroutine (or a slow connection next to a fast one)
// would: the reply is older than what the mirror learns meanwhile.
type pausingRemote struct {
	remote
	armed   atomic.Bool
	got     chan struct{}
	release chan struct{}
}

func (p *pausingRemote) resolve(ctx context.Context, inc uint64, ids []uint64) ([]float64, bool, error) {
	s, ok, err := p.remote.resolve(ctx, inc, ids)
	if p.armed.CompareAndSwap(true, false) {
		close(p.got)
		select {
		case <-p.release:
		case <-time.After(10 * time.Second):
		}
	}
	return s, ok, err
}

// TestAdversaryResolveLearnsAcrossReset: resolve learns ZMSCORE replies into
// the mirror without checking that the mirror was not reset (marker limit)
// while the reply was in flight. Its scores predate a bump the mirror had
// learned and then dropped in the reset (whose start is past the bump), so
// the mirror now claims the marker's last bump is the old score, at a
// position past the real bump: a read that begins after the invalidation
// returned is served the stale entry. Interleaving:
//
//  1. entry K (tag "row") filled at seq e; an unrelated bump moves the clock.
//  2. process R, reader R1 (begins before the write): hit on K, mirror
//     adopts the clock at s_o > e, the entry is old, resolve: ZMSCORE
//     answers row = none … and the reply is delayed.
//  3. process W: the write commits, Invalidate(tag row) → s_b, returns.
//  4. process R: a hit on another key catches up to s_b; past the marker
//     limit the mirror resets to start = pos = s_b.
//  5. R1's resolve reply lands: row = 0 is learned.
//  6. reader R3 (begins after step 3): hit on K, pos ≥ clock, row known at
//     0 ≤ e: served — stale.
//
// FAILS (deterministic). The same holds on the default limit whenever a
// reset happens while a resolve is in flight; WithMirrorLimit(1) only makes
// the reset happen on demand.
func TestAdversaryResolveLearnsAcrossReset(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprint("sharded=", sharded), func(t *testing.T) {
			ctx := context.Background()
			rdb := redisClient(t)
			ns := testNamespace(t)
			cR := newTestCache(t, rdb, WithNamespace(ns), WithMirrorLimit(1), WithReplicaAck(0), WithCluster(sharded))
			cW := newTestCache(t, rdb, WithNamespace(ns), WithCluster(sharded))
			defer cR.Close()
			defer cW.Close()
			pr := &pausingRemote{remote: cR.remote, got: make(chan struct{}), release: make(chan struct{})}
			cR.remote = pr // no goroutine of cR reads remote yet (WithReplicaAck(0))
			ksR, ksW := userSpace(cR), userSpace(cW)
			src := &versioned{version: 1}

			// 1. Entries K (id 1, tags row + user:1) and K2 (id 2, tag other), filled by W.
			if u, err := getRow(ctx, ksW, src); err != nil || u.Name != "1" {
				t.Fatal(u, err)
			}
			k2 := userKey(ksW, 2)
			rd := Lookup(ctx, ksW, k2)
			if _, err := Load(ctx, rd, Loader[*user]{
				Load: func(context.Context) (*user, error) { return &user{ID: 2, Name: "two"}, nil },
				Tags: []string{"other"},
			}); err != nil {
				t.Fatal(err)
			}
			if _, hit, _ := lookup3(ctx, ksW, k2); !hit {
				t.Fatal("K2 not cached")
			}
			cW.waitFills() // W's fills run after its callers returned; R must find them
			if err := cW.Invalidate(ctx, Invalidation{Tags: []string{"unrelated"}}); err != nil {
				t.Fatal(err)
			}

			// 2. R1 resolves K's markers; the reply is held.
			pr.armed.Store(true)
			r1 := make(chan Read[*user], 1)
			go func() { r1 <- Lookup(ctx, ksR, userKey(ksR, 1)) }()
			waitChan(t, pr.got, "R1's resolve")

			// 3. The write.
			v := src.write()
			if err := cW.Invalidate(ctx, Invalidation{Tags: []string{"row"}}); err != nil {
				t.Fatal(err)
			}

			// 4. Another hit in R catches up and resets the mirror past the bump.
			if rd := Lookup(ctx, ksR, userKey(ksR, 2)); !rd.Hit {
				t.Logf("K2 was a miss in R (fine; what matters is the catch-up)")
			}
			cR.mirror.mu.RLock()
			t.Logf("mirror after the catch-up: start=%d pos=%d marks=%d", cR.mirror.start, cR.mirror.pos, len(cR.mirror.marks))
			cR.mirror.mu.RUnlock()

			// 5. R1's old reply lands.
			close(pr.release)
			<-r1 // began before the write: may be stale

			// 6. R3 begins after the write's invalidation returned.
			u, err := getRow(ctx, ksR, src)
			mustVersion(t, u, err, v)
		})
	}
}

// TestAdversaryDeletePatternNotReplayed: Invalidate keeps an undelivered
// invalidation and replays it; DeletePattern does not. When its SCAN/UNLINK
// cannot reach Redis (a dropped connection), it returns an error and its
// deferred clock bump is queued with no keys and no markers, so the replay
// delivers nothing and releases the breaker: the pre-write entries stay in
// Redis and every process (this one too, after one cooldown) serves them
// until their TTL. A lost write because Redis misbehaved. FAILS
// (deterministic).
func TestAdversaryDeletePatternNotReplayed(t *testing.T) {
	addr, _ := testenv.StartRedis(t)
	p := startProxy(t, addr)
	ns := testNamespace(t)
	c := faultCache(t, defaultsClient(t, p.Addr()), WithNamespace(ns))
	other := newTestCache(t, redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true}), WithNamespace(ns))
	defer c.Close()
	defer other.Close()
	ks, ksO := userSpace(c), userSpace(other)
	src := &versioned{version: 1}
	ctx := context.Background()
	if u, err := getRow(ctx, ks, src); err != nil || u.Name != "1" {
		t.Fatal(u, err)
	}
	c.waitFills()
	if _, hit, _ := lookup3(ctx, ksO, userKey(ksO, 1)); !hit {
		t.Fatal("entry not cached")
	}

	v := src.write()
	p.set(proxyRefuse)
	if _, err := ks.core.repo.DeletePattern(ctx, "user:*"); err == nil {
		t.Fatal("DeletePattern succeeded with Redis unreachable")
	}
	p.set(proxyPass)
	waitFor(t, 5*time.Second, "the breaker to close", func() bool { return c.healthy() && c.brk.allow() })
	time.Sleep(3 * faultCooldown)

	u, err := getRow(ctx, ksO, src) // another process, long after the write
	if err != nil || u.Name != fmt.Sprint(v) {
		t.Errorf("other process: read %+v, %v; want version %d", u, err, v)
	}
	u, err = getRow(ctx, ks, src) // the writer's process
	if err != nil || u.Name != fmt.Sprint(v) {
		t.Errorf("writer's process: read %+v, %v; want version %d", u, err, v)
	}
}
