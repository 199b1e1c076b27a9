package runtime

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
)

// TestPendingReplayUnderSteadyWrites: a process keeps writing — far more
// often than one round trip —
// while the invalidations it could not deliver during an outage are being
// replayed. New invalidations must not keep refilling the queue: once
// Redis takes the replay again, the breaker is released within a few
// replay rounds and reads hit the cache again, while the writer is still
// writing. Meanwhile no read returns a row older than a write whose
// invalidation had returned before the read began.
//
// The outage is an ACL rule on a private server (every node of a private
// Cluster) that refuses scripts: every invalidation fails, reads of plain
// keys still work. The Cache reaches each server through a proxy that adds
// 2 ms each way, so a round trip is long against the writer's pace whatever
// the scheduler does (on loopback a round trip is as short as a goroutine's
// time slice, and a writer that happened not to run during one round trip
// hid the bug). The bound is counted in replay rounds, not in time: with
// the queue refilled on every round (the bug), the rounds go on for as long
// as the writer writes.
func TestPendingReplayUnderSteadyWrites(t *testing.T) {
	const lag = 2 * time.Millisecond
	t.Run("single", func(t *testing.T) {
		addr, _ := testenv.StartRedis(t)
		p := startProxy(t, addr)
		p.lag.Store(int64(lag))
		pendingUnderSteadyWrites(t, []*redis.Client{adminClient(t, addr)}, privateClient(t, p.Addr()))
	})
	t.Run("cluster", func(t *testing.T) {
		addrs := testenv.StartCluster(t)
		var admins []*redis.Client
		proxies := map[string]*faultProxy{}
		for _, a := range addrs {
			admins = append(admins, adminClient(t, a))
			proxies[a] = startProxy(t, a)
			proxies[a].lag.Store(int64(lag))
		}
		// Every node, also those a MOVED reply names, is dialled through its proxy.
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true, MaxRedirects: 16,
			Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if p, ok := proxies[addr]; ok {
					addr = p.Addr()
				} else {
					t.Errorf("a node not behind a proxy: %s", addr)
				}
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}})
		t.Cleanup(func() { rdb.Close() })
		pendingUnderSteadyWrites(t, admins, rdb)
	})
}

func pendingUnderSteadyWrites(t *testing.T, admins []*redis.Client, rdb redis.UniversalClient) {
	ctx := context.Background()
	acl := func(rule string) {
		t.Helper()
		for _, a := range admins {
			if err := a.Do(ctx, "ACL", "SETUSER", "default", rule).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		for _, a := range admins {
			_ = a.Do(context.Background(), "ACL", "SETUSER", "default", "+@all").Err()
		}
	})
	c := newTestCache(t, rdb, WithTimeout(500*time.Millisecond), WithBreaker(3, faultCooldown))
	defer c.Close()
	ks := userSpace(c)
	const n = 8 // ids 1..4 are only read, 5..8 also written
	src := &fakeUsers{rows: map[int64]*user{}}
	var mu sync.Mutex // guards src.rows against the writer
	var floor [n + 1]atomic.Int64
	for id := int64(1); id <= n; id++ {
		src.rows[id] = &user{ID: id, Name: "v0"}
	}
	read := func(id int64) (int64, error) {
		before := floor[id].Load()
		key := userKey(ks, id)
		var u *user
		var err error
		if v, hit, e := lookup3(ctx, ks, key); hit {
			u, err = v, e
		} else {
			u, err = loadVia(ctx, ks, key, Loader[*user]{
				Load: func(ctx context.Context) (*user, error) {
					mu.Lock()
					defer mu.Unlock()
					return src.get(ctx, id)
				},
				Tags: []string{"user:" + strconv.FormatInt(id, 10)},
			})
		}
		if err != nil || u == nil {
			return 0, fmt.Errorf("get %d = (%v, %v)", id, u, err)
		}
		v, _ := strconv.ParseInt(u.Name[1:], 10, 64)
		if v < before {
			return v, fmt.Errorf("get %d read v%d after v%d's invalidation had returned", id, v, before)
		}
		return v, nil
	}
	for id := int64(1); id <= n; id++ { // warm: fill, then hit
		for range 2 {
			if _, err := read(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.waitFills()
	if h := c.Stats().Get(EventHit); h < n {
		t.Fatalf("warm-up: %d hits, want %d: %v", h, n, c.Stats())
	}

	// The outage: invalidations fail, and queue.
	acl("-@scripting")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes, delivered atomic.Int64
	var firstBad atomic.Pointer[string]
	bad := func(s string) { firstBad.CompareAndSwap(nil, &s) }
	wg.Add(2)
	go func() { // the writer: commit, invalidate, then the write has returned
		defer wg.Done()
		var next [n + 1]int64
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := int64(5 + i%4)
			next[id]++
			mu.Lock()
			src.rows[id] = &user{ID: id, Name: "v" + strconv.FormatInt(next[id], 10)}
			mu.Unlock()
			err := c.Invalidate(ctx, Invalidation{Tags: []string{"user:" + strconv.FormatInt(id, 10)}})
			if err == nil {
				floor[id].Store(next[id])
				delivered.Add(1)
			}
			writes.Add(1)
			// No pause: a refused invalidation returns at once, so this
			// writer invalidates far more often than a round trip (as do
			// many request goroutines writing at once). A delivered one
			// takes its round trip.
			runtime.Gosched()
		}
	}()
	go func() { // a reader of every id: never an answer older than a returned write
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := read(int64(1 + i%n)); err != nil {
				bad(err.Error())
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	waitFor(t, 20*time.Second, "invalidations to queue", func() bool {
		return replayPending(c) && writes.Load() > 50 && c.pend.rounds.Load() > 1
	})

	// Redis takes invalidations again. The writer goes on writing.
	rounds0, writes0 := c.pend.rounds.Load(), writes.Load()
	acl("+@all")
	const maxRounds = 20 // a few are enough; the bug never stops
	deadline := time.Now().Add(60 * time.Second)
	for replayPending(c) {
		if r := c.pend.rounds.Load() - rounds0; r > maxRounds {
			t.Fatalf("the breaker is still held after %d replay rounds with Redis healthy: each round's new "+
				"invalidations (%d writes since) refill the queue; stats %v", r, writes.Load()-writes0, c.Stats())
		}
		if time.Now().After(deadline) {
			t.Fatalf("the breaker is still held 60s after Redis was back (%d rounds): %v", c.pend.rounds.Load()-rounds0, c.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	rounds := c.pend.rounds.Load() - rounds0
	// Hits again, while the writer still writes.
	hits := c.Stats().Get(EventHit)
	waitFor(t, 30*time.Second, "hits after the replay", func() bool {
		if c.Stats().Get(EventHit) > hits+10 {
			return true
		}
		return false
	})
	if w := writes.Load() - writes0; w < 10 {
		t.Errorf("only %d writes since Redis came back: the writer did not keep writing during the replay", w)
	}
	if p := firstBad.Load(); p != nil {
		t.Errorf("stale or failed read: %s", *p)
	}
	t.Logf("released after %d replay rounds; %d writes (%d delivered at once); stats %v",
		rounds, writes.Load(), delivered.Load(), c.Stats())
}
