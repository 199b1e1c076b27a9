package runtime

// Resilience tests (docs/runtime.md, "Failures"): the promise that a read
// which begins after a write's invalidation has returned — in any process —
// never returns data older than that write, checked against real
// redis-servers that evict (every maxmemory-policy), are full under
// noeviction, restart empty (a Cluster master), fail over (to a replica
// that has every acknowledged invalidation, to one that lost some, and
// through Sentinel) and migrate slots under load, plus multi-process
// histories against PostgreSQL with connections killed throughout. Every
// server is private (internal/testenv): nothing here touches the shared
// Redis.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/history"
	"github.com/cachegen/cachegen/internal/testenv"
)

// privateClient is a client of a private server, configured as docs/runtime.md
// recommends.
func privateClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// infoInt reads one integer field of INFO section from one server.
func infoInt(t testing.TB, rdb *redis.Client, section, field string) int64 {
	t.Helper()
	s, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatalf("INFO %s: %v", section, err)
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO %s: %s=%q", section, field, v)
			}
			return n
		}
	}
	t.Fatalf("INFO %s has no %s", section, field)
	return 0
}

// eachID runs f for ids 0..n-1 on a few goroutines (the round trips overlap;
// Redis still runs one command at a time).
func eachID(n int64, f func(id int64)) {
	const workers = 8
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				id := next.Add(1) - 1
				if id >= n {
					return
				}
				f(id)
			}
		}()
	}
	wg.Wait()
}

// staleCount tallies reads that returned an older row than the source
// held when they began, keeping the first few for the failure message.
type staleCount struct {
	n, errs atomic.Int64
	mu      sync.Mutex
	first   []string
}

func (s *staleCount) note(format string, args ...any) {
	s.mu.Lock()
	if len(s.first) < 5 {
		s.first = append(s.first, fmt.Sprintf(format, args...))
	}
	s.mu.Unlock()
}

// check reads id through ks and compares with want (the version every
// write that returned before the read began had reached).
func (s *staleCount) check(ctx context.Context, ks *Keyspace[*user], src *table, id int64, want int64, who string) {
	u, err := readRow(ctx, ks, src, id)
	switch {
	case err != nil:
		s.errs.Add(1)
		s.note("%s: read %d: %v", who, id, err)
	case u == nil:
		s.errs.Add(1)
		s.note("%s: read %d: nil row", who, id)
	default:
		got, _ := strconv.ParseInt(u.Name, 10, 64)
		if got < want {
			s.n.Add(1)
			s.note("%s: read %d returned v%d, want ≥ v%d", who, id, got, want)
		}
	}
}

func (s *staleCount) verify(t *testing.T, what string) {
	t.Helper()
	if n, e := s.n.Load(), s.errs.Load(); n != 0 || e != 0 {
		t.Errorf("%s: %d stale reads, %d errors returned to callers; first: %s", what, n, e, strings.Join(s.first, "; "))
	}
}

// acked holds, per row, the highest version whose write's invalidation has
// returned nil: a read that begins later must return at least that version.
type acked []atomic.Int64

func (a acked) set(id, v int64) {
	for {
		old := a[id].Load()
		if v <= old || a[id].CompareAndSwap(old, v) {
			return
		}
	}
}

// writeRow is a write: the row changes, then its invalidation (by key, by
// the parameter tag or by the result tag, as how says) returns; only an
// invalidation that returned nil raises the version reads must see.
func writeRow(ctx context.Context, c *Cache, ks *Keyspace[*user], src *table, done acked, id int64, how int) error {
	v := src.write(id)
	err := invalidateRow(ctx, c, ks, id, how)
	if err == nil {
		done.set(id, v)
	}
	return err
}

// reader is a named keyspace of one Cache (one process's view).
type reader struct {
	who string
	ks  *Keyspace[*user]
}

// readPass reads every row through each reader in turn, checking each read
// against the source, and returns the hits each Cache counted.
func readPass(ctx context.Context, st *staleCount, src *table, rows int64, readers ...reader) []uint64 {
	var hits []uint64
	for _, r := range readers {
		before := r.ks.core.c.Stats().Get(EventHit)
		eachID(rows, func(id int64) { st.check(ctx, r.ks, src, id, src.version(id), r.who) })
		hits = append(hits, r.ks.core.c.Stats().Get(EventHit)-before)
	}
	return hits
}

// TestEvictionPolicies: under every maxmemory-policy, with maxmemory just
// above the working set, every row updated and invalidated and then memory
// pushed over the limit by other keys (with and without a TTL, so the
// volatile policies evict too), no read — by the writer's Cache or a fresh
// one, another process's view — returns an old row. Every old entry that
// survives the eviction is stale, so only the markers (or the loss of the
// whole state, a new incarnation) keep it from being served.
func TestEvictionPolicies(t *testing.T) {
	policies := []string{"allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"}
	const rows = 1500
	for _, policy := range policies {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			addr, _ := testenv.StartRedisWith(t, "--maxmemory-policy", policy)
			rdb := privateClient(t, addr)
			ns := WithNamespace(testNamespace(t))
			src := newTable(rows)
			writer := newTestCache(t, rdb, ns)
			wks := userSpace(writer)
			// The other process's client, connected before memory is
			// measured: Redis counts client buffers in used_memory, and a
			// pool opening connections later would evict by itself.
			frdb := privateClient(t, addr)
			eachID(64, func(int64) {
				_ = rdb.Ping(ctx).Err()
				_ = frdb.Ping(ctx).Err()
			})
			base := infoInt(t, rdb, "memory", "used_memory")
			var st staleCount
			eachID(rows, func(id int64) { st.check(ctx, wks, src, id, 1, "fill") })
			writer.waitFills()
			if fills := writer.Stats().Get(EventFill); fills != rows {
				t.Fatalf("%d fills of %d rows", fills, rows)
			}
			used := infoInt(t, rdb, "memory", "used_memory")
			ws := used - base
			limit := used + ws/20
			if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(limit, 10)).Err(); err != nil {
				t.Fatal(err)
			}
			// Every row is written and its invalidation returns (by key, by
			// the parameter tag, by the result tag, in turn).
			var invErrs atomic.Int64
			eachID(rows, func(id int64) {
				src.write(id)
				if err := invalidateRow(ctx, writer, wks, id, int(id)); err != nil {
					invErrs.Add(1)
					st.note("invalidate %d: %v", id, err)
				}
			})
			if n := invErrs.Load(); n != 0 {
				t.Fatalf("%d invalidations failed: %s", n, strings.Join(st.first, "; "))
			}
			inc0 := currentState(writer).inc
			// Other keys push memory over the limit by a third of the
			// working set, half of them volatile (TTLs from 10s to an
			// hour, so volatile-ttl has a choice to make).
			val := strings.Repeat("x", 512)
			filler := int(ws/3/512) + 1
			var oom int
			for i := 0; i < filler; i += 100 {
				cmds, _ := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
					for j := i; j < min(i+100, filler); j++ {
						ttl := time.Duration(0)
						if j%2 == 0 {
							ttl = time.Duration(10+j%3600) * time.Second
						}
						p.Set(ctx, "filler:"+strconv.Itoa(j), val, ttl)
					}
					return nil
				})
				for _, c := range cmds {
					if err := c.Err(); err != nil {
						if !isOOM(err) {
							t.Fatalf("filler: %v", err)
						}
						oom++
					}
				}
			}
			evicted := infoInt(t, rdb, "stats", "evicted_keys")
			if evicted == 0 {
				t.Fatalf("nothing evicted (maxmemory %d, used %d)", limit, infoInt(t, rdb, "memory", "used_memory"))
			}
			old := 0
			for _, k := range namespaceKeys(t, rdb, writer) {
				if strings.HasPrefix(k, writer.ns+"e:") {
					old++
				}
			}
			stateLeft := rdb.Exists(ctx, writer.state.clock, writer.state.marks).Val()
			fresh := newTestCache(t, frdb, ns)
			readers := []reader{{"writer", wks}, {"fresh", userSpace(fresh)}}
			hits := readPass(ctx, &st, src, rows, readers...)
			// Then the pressure goes (maxmemory lifted): caching must resume
			// in both processes — a Cache whose mirror lost track of the
			// incarnation would stay at zero hits.
			if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
				t.Fatal(err)
			}
			second := readPass(ctx, &st, src, rows, readers...)
			third := readPass(ctx, &st, src, rows/10, readers[0])
			st.verify(t, policy)
			incs := "kept"
			if inc := currentState(writer).inc; inc != inc0 {
				incs = "new incarnation"
			}
			t.Logf("%s: working set %d B, maxmemory %d B, %d filler keys (%d refused: OOM), %d keys evicted before the reads (%d by the end); "+
				"%d stale entries and %d of 2 state keys survived; state after the reads: %s; "+
				"hits under pressure: writer %d, fresh %d (of %d rows each); without: writer %d, fresh %d, writer again %d of %d; %d stale reads of %d",
				policy, ws, limit, filler, oom, evicted, infoInt(t, rdb, "stats", "evicted_keys"),
				old, stateLeft, incs, hits[0], hits[1], rows, second[0], second[1], third[0], rows/10, st.n.Load(), 4*rows+rows/10)
			if second[1] < rows*9/10 || third[0] < rows/10*9/10 {
				t.Errorf("caching did not resume once memory was free: fresh %d hits of %d reads, writer %d of %d; writer %v, fresh %v",
					second[1], rows, third[0], rows/10, writer.Stats(), fresh.Stats())
			}
		})
	}
}

// fillUntilOOM writes 1 KiB keys (prefix, no TTL) until Redis refuses one
// with OOM, and returns how many it stored. It gives up after limit keys.
func fillUntilOOM(t *testing.T, rdb *redis.Client, prefix string, limit int) int {
	t.Helper()
	ctx := context.Background()
	val := strings.Repeat("y", 1024)
	for i := 0; i < limit; i++ {
		err := rdb.Set(ctx, prefix+strconv.Itoa(i), val, 0).Err()
		if isOOM(err) {
			return i
		}
		if err != nil {
			t.Fatalf("filling: %v", err)
		}
	}
	t.Fatalf("no OOM after %d KiB", limit)
	return 0
}

// TestNoevictionFull: under maxmemory-policy noeviction, Redis filled until
// writes are refused (OOM). Invalidations still run (allow-oom scripts) and
// return nil; every later read, by the writer's Cache or a fresh one,
// returns the new row; the refused fills (the lease's SET fails with OOM)
// are not Redis failures: no redis_error event, the breaker stays closed and
// the Cache healthy. Once memory is free again, caching resumes.
func TestNoevictionFull(t *testing.T) {
	ctx := context.Background()
	addr, _ := testenv.StartRedisWith(t, "--maxmemory-policy", "noeviction")
	rdb := privateClient(t, addr)
	frdb := privateClient(t, addr)
	eachID(64, func(int64) { // connect both pools before memory is measured
		_ = rdb.Ping(ctx).Err()
		_ = frdb.Ping(ctx).Err()
	})
	ns := WithNamespace(testNamespace(t))
	const rows, more = 500, 100 // rows are cached before Redis fills up; more are not
	src := newTable(rows + more)
	writer := newTestCache(t, rdb, ns)
	wks := userSpace(writer)
	var st staleCount
	eachID(rows, func(id int64) { st.check(ctx, wks, src, id, 1, "fill") })
	writer.waitFills()
	if n := writer.Stats().Get(EventFill); n != rows {
		t.Fatalf("%d fills of %d rows", n, rows)
	}
	used := infoInt(t, rdb, "memory", "used_memory")
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used+64<<10, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	stored := fillUntilOOM(t, rdb, "full:a:", 10000)
	// used_memory moves by tens of KiB as Redis resizes client buffers, so
	// a Redis filled to the byte takes a write now and then; the limit goes
	// 256 KiB below what is used, and Redis stays full.
	full := func() {
		t.Helper()
		used := infoInt(t, rdb, "memory", "used_memory")
		if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used-256<<10, 10)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Set(ctx, "full:probe", "x", 0).Err(); !isOOM(err) {
			t.Fatalf("Redis not full: SET = %v", err)
		}
	}
	full()
	before := writer.Stats()

	// Fills are refused while Redis is full: the source answers, nothing is
	// stored, and the Cache does not count Redis as failing.
	eachID(more, func(i int64) { st.check(ctx, wks, src, rows+i, 1, "full, uncached row") })
	mid := writer.Stats()
	if !writer.healthy() {
		t.Fatalf("refused fills opened the breaker: %v", mid)
	}
	if d := mid.Get(EventFill) - before.Get(EventFill); d != 0 {
		t.Fatalf("%d fills stored while Redis was full", d)
	}

	// Every cached row is written and invalidated: each Invalidate returns
	// nil although Redis refuses writes.
	var invErrs atomic.Int64
	eachID(rows, func(id int64) {
		src.write(id)
		if err := invalidateRow(ctx, writer, wks, id, int(id)); err != nil {
			invErrs.Add(1)
			st.note("invalidate %d: %v", id, err)
		}
	})
	if n := invErrs.Load(); n != 0 {
		t.Fatalf("%d of %d invalidations failed on a full Redis: %s", n, rows, strings.Join(st.first, "; "))
	}
	// Deleting the key-invalidated entries freed some memory.
	full()
	fresh := newTestCache(t, frdb, ns)
	readers := []reader{{"writer", wks}, {"fresh", userSpace(fresh)}}
	readPass(ctx, &st, src, rows+more, readers...)
	st.verify(t, "full")
	after, fafter := writer.Stats(), fresh.Stats()
	errstats := rdb.Info(ctx, "errorstats").Val()
	t.Logf("noeviction: %d KiB of other keys to fill Redis; writer %v (before the full phase %v), fresh %v; Redis %s",
		stored, after, before, fafter, strings.TrimSpace(strings.ReplaceAll(errstats, "\r\n", " ")))
	if !strings.Contains(errstats, "errorstat_OOM:") {
		t.Errorf("Redis refused nothing with OOM (INFO errorstats %q): the test proved nothing", errstats)
	}
	for _, c := range []struct {
		who string
		c   *Cache
		s   Stats
	}{{"writer", writer, after}, {"fresh", fresh, fafter}} {
		if !c.c.healthy() || c.s.Get(EventBreakerOpen) != 0 {
			t.Errorf("%s: the breaker opened on a full Redis: %v", c.who, c.s)
		}
		if c.s.Get(EventRedisError) != 0 {
			t.Errorf("%s: %d redis errors counted for refused fills, want 0: %v", c.who, c.s.Get(EventRedisError), c.s)
		}
	}
	if d := after.Get(EventFill) - before.Get(EventFill) + fafter.Get(EventFill); d != 0 {
		t.Errorf("%d fills stored while Redis was full", d)
	}

	// Memory is freed: caching resumes, for both processes.
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	hits := readPass(ctx, &st, src, rows+more, readers...)
	st.verify(t, "after the memory was freed")
	if hits[1] < (rows+more)*9/10 {
		t.Errorf("caching did not resume: fresh %d hits of %d rows the writer had just filled", hits[1], rows+more)
	}
	t.Logf("after freeing memory: writer %d hits, fresh %d hits of %d rows", hits[0], hits[1], rows+more)
}

// privateCluster is a client of a private Cluster from testenv.StartCluster
// that honours context deadlines and follows up to maxRedirects redirections
// (MOVED and ASK are followed at once; other retries back off).
func privateCluster(t testing.TB, addrs []string, maxRedirects int) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true, MaxRedirects: maxRedirects})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// masterOf is the address of the master that holds key's slot.
func masterOf(t testing.TB, rdb *redis.ClusterClient, key string) string {
	t.Helper()
	m, err := rdb.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return m.Options().Addr
}

// TestClusterRestartEmpty: on a private 3-master Cluster, each master in
// turn is restarted empty (same node id and slots, no data) after the rows
// were cached; then every row is written and invalidated. No read — by the
// writer's Cache, by another process's Cache that had read before the
// restart, or by a fresh one — returns an old row or an error, and caching
// resumes: a second pass hits. One of the restarts loses the invalidation
// state (its slot's master): every entry of the other masters becomes a
// miss, by incarnation.
func TestClusterRestartEmpty(t *testing.T) {
	// A restart moves no slot, so redirections are not needed; go-redis's
	// own retries (a refused dial, CLUSTERDOWN while the node rejoins) back
	// off without regard to the Cache's deadline, so their number is what
	// bounds a read that meets the restart: the default, 3.
	const restartRedirects = 3
	ctx := context.Background()
	addrs := testenv.StartCluster(t)
	ns := WithNamespace(testNamespace(t))
	const rows = 300
	src := newTable(rows)
	done := make(acked, rows)
	for id := range done {
		done[id].Store(1)
	}
	writer := newTestCache(t, privateCluster(t, addrs, restartRedirects), ns)
	other := newTestCache(t, privateCluster(t, addrs, restartRedirects), ns)
	wks, oks := userSpace(writer), userSpace(other)
	admin := privateCluster(t, addrs, restartRedirects)
	stateAt := masterOf(t, admin, writer.state.clock)
	var st staleCount
	for i, addr := range addrs {
		// Cached everywhere: the writer fills, the other process hits.
		readPass(ctx, &st, src, rows, reader{"writer", wks}, reader{"other", oks})
		perNode := map[string]int{}
		for _, k := range namespaceKeys(t, admin, writer) {
			if strings.HasPrefix(k, writer.ns+"e:") {
				perNode[masterOf(t, admin, k)]++
			}
		}
		inc := currentState(writer).inc
		// The other process keeps reading while the master is down and
		// rejoins, and while the rows are written: fail-open, never an
		// error or a row older than an acknowledged write.
		stop := make(chan struct{})
		var during atomic.Int64
		var slowest atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := int64(0); ; id = (id + 7) % rows {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				st.check(ctx, oks, src, id, done[id].Load(), "other, during the restart")
				if d := int64(time.Since(start)); d > slowest.Load() {
					slowest.Store(d)
				}
				during.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
		testenv.RestartNodeEmpty(t, addrs, i)
		var invErrs atomic.Int64
		eachID(rows, func(id int64) {
			if err := writeRow(ctx, writer, wks, src, done, id, int(id)+i); err != nil {
				invErrs.Add(1)
				st.note("invalidate %d after restarting %s: %v", id, addr, err)
			}
		})
		close(stop)
		wg.Wait()
		fresh := newTestCache(t, privateCluster(t, addrs, restartRedirects), ns)
		readers := []reader{{"writer", wks}, {"other", oks}, {"fresh", userSpace(fresh)}}
		first := readPass(ctx, &st, src, rows, readers...)
		// A Cache whose breaker opened during the restart probes Redis once
		// per cooldown (1s): reads bring it back.
		recovered := time.Now()
		for _, r := range readers {
			for id := int64(0); !r.ks.core.c.healthy(); id = (id + 1) % rows {
				if time.Since(recovered) > 5*time.Second {
					t.Fatalf("restart of %s: %s's breaker still open 5s after the cluster recovered: %v", addr, r.who, r.ks.core.c.Stats())
				}
				st.check(ctx, r.ks, src, id, src.version(id), r.who+", recovering")
				time.Sleep(5 * time.Millisecond)
			}
		}
		second := readPass(ctx, &st, src, rows, readers...)
		st.verify(t, "restart of "+addr)
		if n := invErrs.Load(); n != 0 {
			t.Errorf("restart of %s: %d invalidations returned errors", addr, n)
		}
		newInc := currentState(writer).inc
		t.Logf("restarted master %d (%s, state master: %v): it held %d of %d entries; %d reads during the restart and the writes (slowest %v); incarnation %s; hits after the writes %v, second pass %v (of %d rows each, writer/other/fresh; breakers closed after %v); writer %v, other %v",
			i, addr, addr == stateAt, perNode[addr], rows, during.Load(), time.Duration(slowest.Load()).Round(time.Millisecond), map[bool]string{true: "new", false: "kept"}[newInc != inc],
			first, second, rows, time.Since(recovered).Round(time.Millisecond), writer.Stats(), other.Stats())
		if (newInc != inc) != (addr == stateAt) {
			t.Errorf("restart of %s (state master %v): incarnation %d -> %d", addr, addr == stateAt, inc, newInc)
		}
		for j, h := range second {
			if h < rows*9/10 {
				t.Errorf("restart of %s: %s hit %d of %d rows in the second pass: caching did not resume", addr, readers[j].who, h, rows)
			}
		}
	}
}

// movable is a client whose connections go to whatever address it is
// pointed at, the way a Sentinel-aware client follows a failover: the
// same process, the same Cache (and its mirror), a new master.
type movable struct {
	*redis.Client
	to atomic.Pointer[string]
}

func movableClient(t testing.TB, addr string) *movable {
	t.Helper()
	m := &movable{}
	m.to.Store(&addr)
	m.Client = redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true,
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, *m.to.Load())
		}})
	t.Cleanup(func() { m.Client.Close() })
	return m
}

// point sends every new connection to addr. The old master is dead: the
// pooled connections to it fail their health check and are dropped.
func (m *movable) point(addr string) { m.to.Store(&addr) }

// replayPending reports whether the Cache still holds invalidations it could
// not deliver (its breaker held open until they are replayed).
func replayPending(c *Cache) bool {
	c.pend.mu.Lock()
	defer c.pend.mu.Unlock()
	return c.pend.held
}

// waitReplicas waits until the Cache has checked the replicas of its state's
// master (a background check that New starts) and found n.
func waitReplicas(t *testing.T, c *Cache, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, "the Cache's replica check", func() bool {
		c.acks.mu.Lock()
		defer c.acks.mu.Unlock()
		return !c.acks.checked.IsZero() && c.acks.count == n
	})
}

// TestFailover: a master with one replica fails over.
//
//   - acknowledged: invalidations return once the replica has them (WAIT);
//     the master dies, the replica is promoted: no process — the writer, one
//     that read before, a fresh one — reads an old row.
//   - lost: the replica is frozen and cut off while the rows are written, so
//     the writer's invalidations are not acknowledged: Invalidate returns an
//     error (the first one ran on the master, WAIT failed; the later ones
//     were not sent, the breaker being held), the writer serves from the
//     source and replays them to the new master. The writer, and a process
//     that had seen a bump, never read an old row; after the replay every
//     Cache reads the new rows. Other reads of those rows may return the old
//     row until a replay attempt reaches the master (the documented
//     window): counted and logged.
//   - sentinel: the same as acknowledged through redis.NewFailoverClient and
//     a real Sentinel, with a reader running through the failover.
func TestFailover(t *testing.T) {
	const rows = 100
	t.Run("acknowledged", func(t *testing.T) {
		ctx := context.Background()
		r := testenv.StartReplicated(t)
		ns := WithNamespace(testNamespace(t))
		src := newTable(rows)
		wc, oc := movableClient(t, r.Master.Addr()), movableClient(t, r.Master.Addr())
		writer, other := newTestCache(t, wc, ns), newTestCache(t, oc, ns)
		wks, oks := userSpace(writer), userSpace(other)
		waitReplicas(t, writer, 1)
		var st staleCount
		readPass(ctx, &st, src, rows, reader{"writer", wks}, reader{"other", oks})
		eachID(rows, func(id int64) {
			src.write(id)
			if err := invalidateRow(ctx, writer, wks, id, int(id)); err != nil {
				st.errs.Add(1)
				st.note("invalidate %d: %v", id, err)
			}
		})
		// The other process reads the new rows from the old master (its
		// mirror moves to the last invalidation) and fills them.
		readPass(ctx, &st, src, rows/2, reader{"other", oks})
		r.Master.Kill()
		testenv.Promote(t, r.Replica.Addr())
		wc.point(r.Replica.Addr())
		oc.point(r.Replica.Addr())
		fresh := newTestCache(t, privateClient(t, r.Replica.Addr()), ns)
		readers := []reader{{"writer", wks}, {"other", oks}, {"fresh", userSpace(fresh)}}
		first := readPass(ctx, &st, src, rows, readers...)
		waitFor(t, 5*time.Second, "the breakers to close", func() bool {
			for _, r := range readers {
				if !r.ks.core.c.healthy() {
					_, _ = readRow(ctx, r.ks, src, 0)
					return false
				}
			}
			return true
		})
		second := readPass(ctx, &st, src, rows, readers...)
		st.verify(t, "failover")
		t.Logf("after the failover: hits %v, then %v (writer/other/fresh, of %d rows each); writer %v", first, second, rows, writer.Stats())
		for i, h := range second {
			if h < rows*9/10 {
				t.Errorf("%s: %d hits of %d in the second pass after the failover", readers[i].who, h, rows)
			}
		}
	})

	t.Run("lost", func(t *testing.T) {
		ctx := context.Background()
		r := testenv.StartReplicated(t)
		ns := WithNamespace(testNamespace(t))
		src := newTable(rows)
		wc, oc := movableClient(t, r.Master.Addr()), movableClient(t, r.Master.Addr())
		// A 400ms budget: an unacknowledged invalidation waits 200ms for
		// the frozen replica. A 200ms breaker cooldown paces the replays.
		writer := newTestCache(t, wc, ns, WithTimeout(400*time.Millisecond), WithBreaker(5, 200*time.Millisecond))
		other := newTestCache(t, oc, ns)
		wks, oks := userSpace(writer), userSpace(other)
		waitReplicas(t, writer, 1)
		var st, window staleCount
		readPass(ctx, &st, src, rows, reader{"writer", wks}, reader{"other", oks})
		// Rows 0..9 are written while the replica cannot have them. Row 0's
		// invalidation runs on the master and is not acknowledged; the
		// writer's breaker is then held, so rows 1..9's are not even sent:
		// all ten wait for the replay.
		const lost = 10
		var sent, queued []int64
		r.FailoverLosingWrites(t, func(string) {
			for id := range int64(lost) {
				src.write(id)
				switch err := invalidateRow(ctx, writer, wks, id, int(id)); {
				case errors.Is(err, errNotReplicated):
					sent = append(sent, id)
				case err != nil:
					queued = append(queued, id)
				default:
					t.Errorf("row %d: an invalidation returned nil with the replica frozen and cut off", id)
				}
			}
			if writer.healthy() {
				t.Errorf("the writer's breaker is closed with unacknowledged invalidations")
			}
			// Both processes read the rows before the master dies: the
			// writer from the source; the other process sees the bump of
			// the invalidation that ran, and the old entries of the others.
			for id := range int64(lost) {
				st.check(ctx, wks, src, id, src.version(id), "writer, on the old master")
				if slices.Contains(sent, id) {
					st.check(ctx, oks, src, id, src.version(id), "other, on the old master, invalidation ran")
				} else {
					window.check(ctx, oks, src, id, src.version(id), "other, on the old master, invalidation queued")
				}
			}
		})
		if len(sent)+len(queued) != lost || len(sent) == 0 {
			t.Fatalf("invalidations: %v ran on the master unacknowledged, %v queued; want all %d to fail, the first to run", sent, queued, lost)
		}
		before := window.n.Load()
		failover := time.Now()
		wc.point(r.Replica.Addr())
		oc.point(r.Replica.Addr())
		// The promoted replica holds the old entries of rows 0..9 and none
		// of their invalidations. Until the replay lands the writer reads
		// from the source, and the other process judges the rows whose
		// bumps it saw by its mirror: both must read the new rows. The
		// other rows, and every row for a fresh process, are the
		// documented window: counted, not failed.
		fresh := newTestCache(t, privateClient(t, r.Replica.Addr()), ns)
		fks := userSpace(fresh)
		var windowReads int
		for replayPending(writer) {
			if time.Since(failover) > 15*time.Second {
				t.Fatalf("the lost invalidations were not replayed within 15s: writer %v", writer.Stats())
			}
			for id := range int64(lost) {
				st.check(ctx, wks, src, id, src.version(id), "writer, before the replay")
				if slices.Contains(sent, id) {
					st.check(ctx, oks, src, id, src.version(id), "other, before the replay, bump seen")
				} else {
					window.check(ctx, oks, src, id, src.version(id), "other, before the replay")
				}
				window.check(ctx, fks, src, id, src.version(id), "fresh, before the replay")
				windowReads += 2
			}
			time.Sleep(20 * time.Millisecond)
		}
		replayed := time.Since(failover)
		latest := newTestCache(t, privateClient(t, r.Replica.Addr()), ns)
		readers := []reader{{"writer", wks}, {"other", oks}, {"fresh", fks}, {"latest", userSpace(latest)}}
		readPass(ctx, &st, src, rows, readers...)
		st.verify(t, "lost invalidations")
		if e := window.errs.Load(); e != 0 {
			t.Errorf("fresh Cache before the replay: %d errors: %s", e, strings.Join(window.first, "; "))
		}
		t.Logf("invalidations of rows %v ran unacknowledged, of rows %v were queued; on the old master the other process read %d old rows "+
			"of the queued ones; the replay landed %v after the failover; before it, %d reads of rows without a seen bump (other, fresh) returned %d old rows; writer %v",
			sent, queued, before, replayed.Round(time.Millisecond), windowReads, window.n.Load()-before, writer.Stats())
	})

	t.Run("sentinel", func(t *testing.T) {
		ctx := context.Background()
		r := testenv.StartReplicated(t)
		sen := r.StartSentinel(t)
		ns := WithNamespace(testNamespace(t))
		src := newTable(rows)
		done := make(acked, rows)
		for id := range done {
			done[id].Store(1)
		}
		failover := func() *redis.Client {
			rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: sen.MasterName,
				SentinelAddrs: []string{sen.Addr()}, ContextTimeoutEnabled: true})
			t.Cleanup(func() { rdb.Close() })
			return rdb
		}
		writer, other := newTestCache(t, failover(), ns), newTestCache(t, failover(), ns)
		wks, oks := userSpace(writer), userSpace(other)
		waitReplicas(t, writer, 1)
		var st staleCount
		readPass(ctx, &st, src, rows, reader{"writer", wks}, reader{"other", oks})
		// The other process reads throughout: the writes, the master's
		// death, Sentinel's failover and after.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var during atomic.Int64
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := int64(0); ; id = (id + 3) % rows {
				select {
				case <-stop:
					return
				default:
				}
				st.check(ctx, oks, src, id, done[id].Load(), "other, through the failover")
				during.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
		var invErrs atomic.Int64
		eachID(rows, func(id int64) {
			if err := writeRow(ctx, writer, wks, src, done, id, int(id)); err != nil {
				invErrs.Add(1)
				st.note("invalidate %d: %v", id, err)
			}
		})
		killed := time.Now()
		r.Master.Kill()
		sen.WaitMaster(t, r.Replica.Addr())
		switched := time.Since(killed)
		readers := []reader{{"writer", wks}, {"other", oks}}
		waitFor(t, 10*time.Second, "the breakers to close after the failover", func() bool {
			for _, r := range readers {
				if !r.ks.core.c.healthy() {
					st.check(ctx, r.ks, src, 0, done[0].Load(), r.who+", recovering")
					return false
				}
			}
			return true
		})
		close(stop)
		wg.Wait()
		fresh := newTestCache(t, failover(), ns)
		readers = append(readers, reader{"fresh", userSpace(fresh)})
		first := readPass(ctx, &st, src, rows, readers...)
		second := readPass(ctx, &st, src, rows, readers...)
		st.verify(t, "sentinel failover")
		if n := invErrs.Load(); n != 0 {
			t.Errorf("%d acknowledged-mode invalidations failed before the failover", n)
		}
		t.Logf("sentinel: failover %v after the kill; %d reads by the other process through it; hits after %v, then %v (writer/other/fresh, of %d rows)",
			switched.Round(time.Millisecond), during.Load(), first, second, rows)
		for i, h := range second {
			if h < rows*9/10 {
				t.Errorf("%s: %d hits of %d in the second pass after the failover", readers[i].who, h, rows)
			}
		}
	})
}

// migrateSplit migrates one slot like testenv.MigrateSlots, but key by key
// with a pause after each, and another before the slot changes hands: for
// that long the slot is half moved (multi-key commands get TRYAGAIN, the
// rest ASK to the importing node).
func migrateSplit(t *testing.T, from, to string, slot int, keys []string, pause time.Duration) {
	t.Helper()
	ctx := context.Background()
	src, dst := privateClient(t, from), privateClient(t, to)
	srcID, dstID := src.ClusterMyID(ctx).Val(), dst.ClusterMyID(ctx).Val()
	host, port, _ := net.SplitHostPort(to)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("migrating slot %d %s -> %s: %v", slot, from, to, err)
		}
	}
	must(dst.Do(ctx, "cluster", "setslot", slot, "importing", srcID).Err())
	must(src.Do(ctx, "cluster", "setslot", slot, "migrating", dstID).Err())
	for _, k := range keys {
		if err := src.Do(ctx, "migrate", host, port, k, 0, 5000).Err(); err != nil && !strings.Contains(err.Error(), "NOKEY") {
			must(err)
		}
		time.Sleep(pause)
	}
	if rest := src.ClusterGetKeysInSlot(ctx, slot, 100).Val(); len(rest) > 0 {
		args := []any{"migrate", host, port, "", 0, 5000, "keys"}
		for _, k := range rest {
			args = append(args, k)
		}
		must(src.Do(ctx, args...).Err())
	}
	must(dst.Do(ctx, "cluster", "setslot", slot, "node", dstID).Err())
	must(src.Do(ctx, "cluster", "setslot", slot, "node", dstID).Err())
	nodes, err := src.ClusterSlots(ctx).Result()
	must(err)
	seen := map[string]bool{from: true, to: true}
	for _, r := range nodes {
		if a := r.Nodes[0].Addr; !seen[a] {
			seen[a] = true
			must(privateClient(t, a).Do(ctx, "cluster", "setslot", slot, "node", dstID).Err())
		}
	}
}

// TestClusterReshard: on a private Cluster, three processes (Caches with
// their own clients) read and write rows while hash slots migrate between
// masters — the slots of entries and, back and forth, the slot of the
// invalidation state. A read that begins after a write's invalidation
// returned must return that version or a later one; no call may return an
// error (fail-open is allowed), nor may an invalidation, except one that
// begins while the state's slot is split: its second move goes key by key,
// 300ms apart, and meanwhile the invalidation script gets TRYAGAIN. Such an
// invalidation may outlast its budget: then it is replayed, like any
// undelivered one, and every process reads the last versions afterwards. A
// process that joins between migrations reads every row too.
func TestClusterReshard(t *testing.T) {
	ctx := context.Background()
	addrs := testenv.StartCluster(t)
	admin := privateCluster(t, addrs, 16)
	ns := WithNamespace(testNamespace(t))
	const rows = 64
	src := newTable(rows)
	done := make(acked, rows)
	for id := range done {
		done[id].Store(1)
	}
	var spaces []*Keyspace[*user]
	for range 3 {
		spaces = append(spaces, userSpace(newTestCache(t, privateCluster(t, addrs, 16), ns)))
	}
	var st staleCount
	readPass(ctx, &st, src, rows, reader{"p0", spaces[0]}, reader{"p1", spaces[1]}, reader{"p2", spaces[2]})
	clock := spaces[0].core.c.state.clock
	stateSlot := int(admin.ClusterKeySlot(ctx, clock).Val())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, writes, invErrs, splitErrs, spuriousErrs atomic.Int64
	var splitFrom, splitTo atomic.Int64 // UnixNano: when the state's slot was half moved
	for p, ks := range spaces {
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(p), uint64(g)))
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := r.Int64N(rows)
					if g == 0 { // one writer per process
						start := time.Now().UnixNano()
						err := writeRow(ctx, ks.core.c, ks, src, done, id, i)
						from, to := splitFrom.Load(), splitTo.Load()
						split := from != 0 && time.Now().UnixNano() >= from && (to == 0 || start <= to)
						switch {
						case err == nil:
						case !split && strings.HasPrefix(err.Error(), "TRYAGAIN"):
							// A runtime bug, reproduced on branch h3-repro
							// (TestReproInvalidateDelTryagain): the script
							// ran, but the DEL of entry and lease (two keys)
							// in a migrating slot got TRYAGAIN, and Invalidate
							// reports the invalidation as undelivered. Safe
							// (replayed, breaker held); counted and logged.
							spuriousErrs.Add(1)
						case split || errors.Is(err, errBreakerOpen) && replayPending(ks.core.c):
							// Begun while the state's slot was split (TRYAGAIN
							// until it is whole: go-redis backs off, the
							// budget may run out), or refused by the breaker
							// that such a failure holds: undelivered, replayed.
							splitErrs.Add(1)
						default:
							invErrs.Add(1)
							st.note("p%d: invalidate %d: %v", p, id, err)
						}
						writes.Add(1)
						time.Sleep(2 * time.Millisecond)
						continue
					}
					st.check(ctx, ks, src, id, done[id].Load(), fmt.Sprintf("p%d", p))
					reads.Add(1)
					time.Sleep(200 * time.Microsecond) // leave the two cores some room for the migrations
				}
			}()
		}
	}

	// Who owns a slot, as the masters see it now (not a client's cached
	// map), and the slots of the rows' entries (with their leases) on one.
	node0 := privateClient(t, addrs[0])
	owners := func() func(slot int) string {
		t.Helper()
		ranges, err := node0.ClusterSlots(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return func(slot int) string {
			for _, r := range ranges {
				if int(r.Start) <= slot && slot <= int(r.End) {
					return r.Nodes[0].Addr
				}
			}
			t.Fatalf("slot %d has no owner", slot)
			return ""
		}
	}
	var rowSlots []int
	for id := range int64(rows) {
		rowSlots = append(rowSlots, int(admin.ClusterKeySlot(ctx, string(userKey(spaces[0], id))).Val()))
	}
	entrySlots := func(master string) []int {
		owner := owners()
		var slots []int
		for _, s := range rowSlots {
			if owner(s) == master && !slices.Contains(slots, s) {
				slots = append(slots, s)
			}
		}
		return slots
	}
	var moves []string
	for round := range 3 {
		time.Sleep(200 * time.Millisecond)
		from, to := addrs[round%3], addrs[(round+1)%3]
		slots := entrySlots(from)
		testenv.MigrateSlots(t, from, to, slots...)
		time.Sleep(200 * time.Millisecond)
		stateFrom := owners()(stateSlot)
		stateTo := addrs[(slices.Index(addrs, stateFrom)+1+round%2)%3]
		how := "at once"
		if round == 1 {
			how = "split"
			splitFrom.Store(time.Now().UnixNano())
			migrateSplit(t, stateFrom, stateTo, stateSlot, []string{clock, spaces[0].core.c.state.marks}, 300*time.Millisecond)
			splitTo.Store(time.Now().UnixNano())
		} else {
			testenv.MigrateSlots(t, stateFrom, stateTo, stateSlot)
		}
		moves = append(moves, fmt.Sprintf("%d entry slots %s→%s, state slot %d %s→%s (%s)", len(slots), from, to, stateSlot, stateFrom, stateTo, how))
		// A process that joins now reads every row.
		joined := userSpace(newTestCache(t, privateCluster(t, addrs, 16), ns))
		for id := range int64(rows) {
			st.check(ctx, joined, src, id, done[id].Load(), fmt.Sprintf("joined after round %d", round))
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	// Every invalidation held back is replayed; then every process reads
	// every row at its last version.
	for p, ks := range spaces {
		waitFor(t, 10*time.Second, fmt.Sprintf("p%d's replays", p), func() bool { return !replayPending(ks.core.c) })
	}
	readPass(ctx, &st, src, rows, reader{"p0", spaces[0]}, reader{"p1", spaces[1]}, reader{"p2", spaces[2]})
	st.verify(t, "reshard")
	if n := invErrs.Load(); n != 0 {
		t.Errorf("%d of %d invalidations returned an error during the reshard; first: %s", n, writes.Load(), strings.Join(st.first, "; "))
	}
	var hits, redisErrs uint64
	for _, ks := range spaces {
		hits += ks.core.c.Stats().Get(EventHit)
		redisErrs += ks.core.c.Stats().Get(EventRedisError)
	}
	// What the masters answered with: the redirections go-redis followed.
	redirects := map[string]int64{}
	for _, a := range addrs {
		for _, line := range strings.Split(privateClient(t, a).Info(ctx, "errorstats").Val(), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":count=")
			if name, found := strings.CutPrefix(k, "errorstat_"); ok && found {
				n, _ := strconv.ParseInt(v, 10, 64)
				redirects[name] += n
			}
		}
	}
	t.Logf("reshard: %s; %d reads (%d hits in all), %d writes (%d invalidations undelivered while the state's slot was split, "+
		"%d delivered but reported failed by the entry DEL's TRYAGAIN, replayed), %d redis errors absorbed, %d stale reads; error replies of the masters %v",
		strings.Join(moves, "; "), reads.Load(), hits, writes.Load(), splitErrs.Load(), spuriousErrs.Load(), redisErrs, st.n.Load(), redirects)
	if redirects["ASK"] == 0 || redirects["MOVED"] == 0 {
		t.Errorf("no ASK or MOVED replies: the migrations never met the traffic")
	}
	if hits == 0 {
		t.Error("no hits during the reshard: the test proved nothing")
	}
}

// History test parameters: processes × goroutines operate on historyRows
// rows for historyRun.
const (
	historyProcs      = 4
	historyGoroutines = 4
	historyRows       = 8
	historyRun        = 4 * time.Second
)

// writeInitialRows sets every row 0…rows-1 to version 1 with set and records
// those writes (as process) in the history at path: the initial versions
// are writes too.
func writeInitialRows(t *testing.T, path string, process, rows int, set func(id int64) error) {
	t.Helper()
	initial, err := history.Create(path, process)
	if err != nil {
		t.Fatal(err)
	}
	for id := range int64(rows) {
		invoke := time.Now().UnixNano()
		if err := set(id); err != nil {
			t.Fatal(err)
		}
		if err := initial.Append(history.Op{Key: "row" + strconv.FormatInt(id, 10), Kind: history.Write, Value: 1,
			Invoke: invoke, Return: time.Now().UnixNano()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := initial.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestHistories: several OS processes (this test binary re-executed; see
// historyChild) read rows by id and by name through their own Cache and
// write them (UPDATE in PostgreSQL, then invalidate by key and result tag)
// concurrently, recording every operation in a history, while the
// connections of a private redis-server are killed every ~250ms. Every
// history must be free of stale reads (a read that began after a write's
// invalidation returned nil saw an older version); porcupine then checks the
// merged history for linearizability, which the design does not promise
// (docs/runtime.md): its verdict is logged.
func TestHistories(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.NeedPostgres(t)
	addr, _ := testenv.StartRedisWith(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	table := strings.ReplaceAll(testNamespace(t), "-", "_")
	if _, err := pool.Exec(ctx, "CREATE TABLE "+table+" (id bigint PRIMARY KEY, name text UNIQUE NOT NULL, v bigint NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+table); err != nil {
			t.Errorf("dropping %s: %v", table, err)
		}
	})
	dir := t.TempDir()
	writeInitialRows(t, filepath.Join(dir, "init.jsonl"), historyProcs, historyRows, func(id int64) error {
		_, err := pool.Exec(ctx, "INSERT INTO "+table+" VALUES ($1, $2, 1)", id, "n"+strconv.FormatInt(id, 10))
		return err
	})

	ns := testNamespace(t)
	start := time.Now().Add(time.Second) // every child is up by then
	paths := []string{filepath.Join(dir, "init.jsonl")}
	for p := range historyProcs {
		paths = append(paths, filepath.Join(dir, fmt.Sprintf("p%d.jsonl", p)))
	}
	// The fault: every normal connection to Redis killed every ~250ms, until
	// every child has exited (bounded: the children run for historyRun).
	kills, killed := 0, 0
	outs, childErrs := runChildren(t, historyProcs, func(p int) []string {
		return []string{
			"CACHEGEN_HISTORY_CHILD=" + strconv.Itoa(p),
			"CACHEGEN_HISTORY_DIR=" + dir,
			"CACHEGEN_HISTORY_REDIS=" + addr,
			"CACHEGEN_HISTORY_DB=" + dbURL,
			"CACHEGEN_HISTORY_TABLE=" + table,
			"CACHEGEN_HISTORY_NS=" + ns,
			"CACHEGEN_HISTORY_START=" + strconv.FormatInt(start.UnixNano(), 10)}
	}, time.Until(start)+historyRun+20*time.Second, 250*time.Millisecond, func() {
		if time.Now().After(start) {
			n, err := testenv.KillClients(addr, "normal")
			if err != nil {
				t.Fatal(err)
			}
			kills++
			killed += n
		}
	})
	var summary []string
	for p, out := range outs {
		line := lastLine(out, "history:")
		if line == "" || len(childErrs) > 0 {
			t.Fatalf("process %d (%v):\n%s", p, childErrs, out)
		}
		summary = append(summary, fmt.Sprintf("p%d %s", p, strings.TrimPrefix(line, "history: ")))
		if !strings.Contains(line, " readErrs=0 ") {
			t.Errorf("process %d: reads returned errors: %s", p, line)
		}
	}
	ops, err := history.Load(paths...)
	if err != nil {
		t.Fatal(err)
	}
	reads, writes, unknown := history.Tally(ops)
	t.Logf("histories: %d ops (%d reads, %d writes, %d unknown: a write whose invalidation returned an error, or a failed read); "+
		"%d CLIENT KILLs closed %d connections\n%s", len(ops), reads, writes, unknown, kills, killed, strings.Join(summary, "\n"))
	if reads == 0 || writes == 0 {
		t.Fatal("no reads or writes recorded")
	}
	if stale := history.CheckNoStaleRead(ops); len(stale) > 0 {
		for _, s := range stale[:min(len(stale), 5)] {
			t.Errorf("%v", s)
		}
		t.Errorf("%d stale reads", len(stale))
	}
	// Porcupine, key by key within a bounded budget: a non-linearizable
	// history can take it arbitrarily long to decide.
	byKey := map[string][]history.Op{}
	for _, op := range ops {
		byKey[op.Key] = append(byKey[op.Key], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	verdicts := map[string][]string{}
	budget := time.Now().Add(6 * time.Second)
	for _, k := range keys {
		left := time.Until(budget)
		if left <= 0 {
			verdicts["not checked (budget spent)"] = append(verdicts["not checked (budget spent)"], k)
			continue
		}
		lin, err := history.CheckLinearizable(byKey[k], min(500*time.Millisecond, left), "")
		if err != nil {
			t.Fatal(err)
		}
		verdicts[fmt.Sprint(lin.Result)] = append(verdicts[fmt.Sprint(lin.Result)], k)
	}
	t.Logf("porcupine, per key (linearizability is not promised, docs/runtime.md): %v", verdicts)
}

// historyChild is one process of TestHistories: TestMain runs it instead of
// the tests when CACHEGEN_HISTORY_CHILD is set. Each goroutine reads a row
// by id (key user:{id}, tags row:{id} and u:{id}), reads it by name (key
// user-by-name:{name}, result tag u:{id}) or writes it (UPDATE … RETURNING,
// then Invalidate by the key of the id read and the tag u:{id}), and
// records each operation in the process's history.
func historyChild(p int) {
	fail := func(err error) {
		fmt.Println("history child:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	dir, table := os.Getenv("CACHEGEN_HISTORY_DIR"), os.Getenv("CACHEGEN_HISTORY_TABLE")
	startNs, _ := strconv.ParseInt(os.Getenv("CACHEGEN_HISTORY_START"), 10, 64)
	pool, err := pgxpool.New(ctx, os.Getenv("CACHEGEN_HISTORY_DB"))
	if err != nil {
		fail(err)
	}
	defer pool.Close()
	// Odd processes do not let go-redis retry a command whose connection
	// was killed: the kills reach the Cache as failed calls (fail-open,
	// breaker, undelivered invalidations replayed). Even ones retry (the
	// default), so a killed connection is mostly invisible.
	retries := 0
	if p%2 == 1 {
		retries = -1
	}
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("CACHEGEN_HISTORY_REDIS"), ContextTimeoutEnabled: true, MaxRetries: retries})
	defer rdb.Close()
	// A budget that -race on a loaded machine keeps, a quick breaker.
	c := New(rdb, WithNamespace(os.Getenv("CACHEGEN_HISTORY_NS")), WithLogger(quietLogger()),
		WithTimeout(500*time.Millisecond), WithBreaker(5, 200*time.Millisecond))
	defer c.Close()
	byID := userSpace(c)
	byName := NewKeyspace(c.Repo("users", 1), Spec[*user]{Template: "user-by-name:{}", Schema: "s1", TTL: time.Minute,
		NotFound: errNotFound, IsNil: func(u *user) bool { return u == nil }})
	rec, err := history.Create(filepath.Join(dir, fmt.Sprintf("p%d.jsonl", p)), p)
	if err != nil {
		fail(err)
	}
	resultTag := func(u *user) ([]string, bool) { return []string{"u:" + strconv.FormatInt(u.ID, 10)}, true }
	getByID := func(id int64) (*user, error) {
		rd := Lookup(ctx, byID, userKey(byID, id))
		if rd.Hit {
			return rd.Value, rd.Err
		}
		return Load(ctx, rd, Loader[*user]{
			Load: func(ctx context.Context) (*user, error) {
				u := &user{ID: id}
				err := pool.QueryRow(ctx, "SELECT name, v FROM "+table+" WHERE id = $1", id).Scan(&u.Email, &u.Name)
				return u, err
			},
			Tags: []string{"row:" + strconv.FormatInt(id, 10)}, ResultTags: resultTag,
		})
	}
	getByName := func(name string) (*user, error) {
		key := byName.Key(AppendString(append(byName.AppendPrefix(nil), "user-by-name:"...), name))
		rd := Lookup(ctx, byName, key)
		if rd.Hit {
			return rd.Value, rd.Err
		}
		return Load(ctx, rd, Loader[*user]{
			Load: func(ctx context.Context) (*user, error) {
				u := &user{Email: name}
				err := pool.QueryRow(ctx, "SELECT id, v FROM "+table+" WHERE name = $1", name).Scan(&u.ID, &u.Name)
				return u, err
			},
			Tags: []string{"name:" + name}, ResultTags: resultTag,
		})
	}
	version := func(u *user, err error) (int64, error) {
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(u.Name, 10, 64)
	}
	time.Sleep(time.Until(time.Unix(0, startNs)))
	until := time.Now().Add(historyRun)
	var nops, nreads, nwrites, readErrs, invErrs atomic.Int64
	var lat latencies
	var wg sync.WaitGroup
	for g := range historyGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(p), uint64(g)))
			for i := 0; time.Now().Before(until); i++ {
				id := r.Int64N(historyRows)
				key := "row" + strconv.FormatInt(id, 10)
				opStart := time.Now()
				switch op := r.IntN(4); op {
				case 0, 1, 2: // read by id, or by name
					call := rec.Invoke(g, key, history.Read, 0)
					var v int64
					var err error
					if op < 2 {
						v, err = version(getByID(id))
					} else {
						v, err = version(getByName("n" + strconv.FormatInt(id, 10)))
					}
					call.Return(v, err)
					nreads.Add(1)
					if err != nil {
						readErrs.Add(1)
						fmt.Println("read error:", err)
					}
				default: // write: UPDATE, then the invalidation
					invoke := time.Now().UnixNano()
					var v int64
					if err := pool.QueryRow(ctx, "UPDATE "+table+" SET v = v + 1 WHERE id = $1 RETURNING v", id).Scan(&v); err != nil {
						fail(err)
					}
					inv := Invalidation{Keys: []Key{userKey(byID, id)}, Tags: []string{"u:" + strconv.FormatInt(id, 10)}}
					if i%2 == 1 { // or by both tags
						inv = Invalidation{Tags: []string{"row:" + strconv.FormatInt(id, 10), "u:" + strconv.FormatInt(id, 10)}}
					}
					err := c.Invalidate(ctx, inv)
					op := history.Op{Client: g, Key: key, Kind: history.Write, Value: v, Invoke: invoke, Return: time.Now().UnixNano()}
					if err != nil {
						op.Err = err.Error()
						invErrs.Add(1)
					}
					if err := rec.Append(op); err != nil {
						fail(err)
					}
					nwrites.Add(1)
				}
				nops.Add(1)
				lat.add(time.Since(opStart))
				time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if err := rec.Close(); err != nil {
		fail(err)
	}
	d := lat.take()
	fmt.Printf("history: ops=%d reads=%d writes=%d readErrs=%d invErrs=%d latency p50 %v p99 %v max %v stats=%v\n",
		nops.Load(), nreads.Load(), nwrites.Load(), readErrs.Load(), invErrs.Load(),
		quantile(d, .5).Round(time.Microsecond), quantile(d, .99).Round(time.Microsecond), quantile(d, 1).Round(time.Microsecond), c.Stats())
}
