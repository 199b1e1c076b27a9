package runtime

// Fault tolerance (issue 2, guarantee 10): when Redis refuses, errors, or
// accepts and never answers, every call is served from the source within the
// source's latency plus the time budget — with a client built on go-redis
// defaults (ContextTimeoutEnabled false, 3s read timeout) — nothing is written
// back after a failed read, the breaker opens and closes by itself, Redis
// errors never reach the caller, and an invalidation lost while Redis was
// away is replayed before anything is read from it again.
//
// Every server here is a real redis-server on 127.0.0.1 (internal/testenv);
// faults are injected by SIGKILL, by a listener that never answers, by a
// loopback TCP proxy that refuses or black-holes traffic to a live server,
// by CLIENT PAUSE, and by ACL rules that make every command fail.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
)

// Failure-mode bounds, with generous margins for -race on two cores. The
// budget is 50ms; go-redis' own read timeout is 3s, so any call that waited
// for go-redis to give up would blow through both.
const (
	faultBudget    = 50 * time.Millisecond
	faultCooldown  = 200 * time.Millisecond
	faultP99Bound  = time.Second
	faultMaxBound  = 2500 * time.Millisecond // below go-redis' 3s read timeout
	faultSourceLag = 2 * time.Millisecond
)

// defaultsClient is a go-redis client exactly as a user who read no docs
// builds it: ContextTimeoutEnabled false, ReadTimeout 3s, MaxRetries 3.
func defaultsClient(t testing.TB, addr string) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func faultCache(t testing.TB, rdb redis.UniversalClient, opts ...Option) *Cache {
	// Leases left behind by loaders whose release failed during an outage
	// hold later callers up to the lease wait once Redis is back; a short
	// wait keeps the recovery phases quick.
	base := []Option{WithTimeout(faultBudget), WithBreaker(3, faultCooldown), WithLease(time.Second, 500*time.Millisecond)}
	return newTestCache(t, rdb, append(base, opts...)...)
}

// faultRows is the source used by the fault workloads: ids 1..20 exist,
// 21..24 do not (the not-found sentinel, cached negatively when Redis works).
func faultRows() *fakeUsers {
	f := &fakeUsers{rows: map[int64]*user{}, delay: faultSourceLag}
	for id := int64(1); id <= 20; id++ {
		f.rows[id] = &user{ID: id, Name: "user-" + strconv.FormatInt(id, 10), Email: strconv.FormatInt(id, 10) + "@example.com"}
	}
	return f
}

// checkAnswer reports whether (u, err) is what the source answers for id.
func checkAnswer(src *fakeUsers, id int64, u *user, err error) error {
	if want, ok := src.rows[id]; ok {
		if err != nil || u == nil || *u != *want {
			return fmt.Errorf("get %d = (%+v, %v), want (%+v, nil)", id, u, err, want)
		}
		return nil
	}
	if u != nil || !errors.Is(err, errNotFound) || err.Error() != fmt.Sprintf("user %d: user not found", id) {
		return fmt.Errorf("get %d = (%+v, %v), want the source's not-found error", id, u, err)
	}
	return nil
}

// latencies collects call durations of one phase.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// take returns the durations recorded so far, sorted, and starts a new phase.
func (l *latencies) take() []time.Duration {
	l.mu.Lock()
	d := l.d
	l.d = nil
	l.mu.Unlock()
	slices.Sort(d)
	return d
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// workload runs getUser — the generated-code shape — on several goroutines
// and checks every answer against the source.
type workload struct {
	lat   latencies
	calls atomic.Int64
	bad   atomic.Int64
	first atomic.Pointer[string]
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func startWorkload(ks *Keyspace[*user], src *fakeUsers, workers int) *workload {
	return startWorkloadOver(ks, src, workers, 24)
}

// startWorkloadOver reads ids 1..ids (those past 20 are not found).
func startWorkloadOver(ks *Keyspace[*user], src *fakeUsers, workers int, ids int64) *workload {
	w := &workload{stop: make(chan struct{})}
	for g := 0; g < workers; g++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				id := 1 + r.Int64N(ids)
				start := time.Now()
				u, err := getUser(context.Background(), ks, src, id)
				w.lat.add(time.Since(start))
				w.calls.Add(1)
				if e := checkAnswer(src, id, u, err); e != nil {
					w.bad.Add(1)
					msg := e.Error()
					w.first.CompareAndSwap(nil, &msg)
				}
			}
		}()
	}
	return w
}

func (w *workload) halt() {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
}

func (w *workload) check(t *testing.T) {
	t.Helper()
	if n := w.bad.Load(); n != 0 {
		t.Errorf("%d of %d calls did not return the source's answer; first: %s", n, w.calls.Load(), *w.first.Load())
	}
}

// checkBounded asserts the failure-mode latency bounds over one phase.
func checkBounded(t *testing.T, phase string, d []time.Duration) {
	t.Helper()
	if len(d) < 50 {
		t.Fatalf("%s: only %d calls completed; the workload stalled", phase, len(d))
	}
	p50, p99, mx := quantile(d, .5), quantile(d, .99), d[len(d)-1]
	slow := len(d) - sort.Search(len(d), func(i int) bool { return d[i] > 4*faultBudget })
	t.Logf("%s: %d calls, p50 %v, p99 %v, max %v, %d over %v", phase, len(d), p50, p99, mx, slow, 4*faultBudget)
	if p99 > faultP99Bound {
		t.Errorf("%s: p99 latency %v > %v (source %v + budget %v + slack)", phase, p99, faultP99Bound, faultSourceLag, faultBudget)
	}
	if mx > faultMaxBound {
		t.Errorf("%s: max latency %v > %v: a call waited for go-redis' own timeout", phase, mx, faultMaxBound)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func portOf(t testing.TB, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// (a) A private redis-server SIGKILLed under load, then restarted on the same
// port.
func TestFaultRedisKilledMidRun(t *testing.T) {
	addr, kill := testenv.StartRedis(t)
	c := faultCache(t, defaultsClient(t, addr))
	ks := userSpace(c)
	src := faultRows()
	w := startWorkload(ks, src, 8)
	defer w.halt()

	waitFor(t, 5*time.Second, "hits while Redis is up", func() bool { return c.Stats().Get(EventHit) >= 50 })
	checkBounded(t, "redis up", w.lat.take())

	kill()
	time.Sleep(100 * time.Millisecond) // calls in flight at the kill settle
	killed := c.Stats()
	time.Sleep(1400 * time.Millisecond)
	down := c.Stats()
	checkBounded(t, "redis killed", w.lat.take())
	if down.Get(EventBreakerOpen) == 0 {
		t.Errorf("breaker never opened while Redis was dead: %v", down)
	}
	if down.Get(EventRedisError) == 0 || down.Get(EventBypass) == 0 {
		t.Errorf("no redis errors or bypasses counted while Redis was dead: %v", down)
	}
	if down.Get(EventFill) != killed.Get(EventFill) || down.Get(EventHit) != killed.Get(EventHit) {
		t.Errorf("fills or hits counted with Redis dead: %v then %v", killed, down)
	}
	closed := down.Get(EventBreakerClose)

	testenv.StartRedisAt(t, portOf(t, addr))
	waitFor(t, 10*time.Second, "the breaker to close by itself", func() bool {
		return c.Stats().Get(EventBreakerClose) > closed
	})
	back := c.Stats()
	waitFor(t, 10*time.Second, "cache hits after the restart", func() bool {
		return c.Stats().Get(EventHit) >= back.Get(EventHit)+50
	})
	checkBounded(t, "recovery", w.lat.take())
	w.halt()
	w.check(t)
	t.Logf("stats: %v", c.Stats())
}

// hungListener accepts connections on 127.0.0.1 and never answers; it
// returns what the clients sent.
func hungListener(t testing.TB) (addr string, received func() []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []byte
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 4096)
				for {
					n, err := conn.Read(buf)
					mu.Lock()
					got = append(got, buf[:n]...)
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// respCommands parses the RESP arrays a client sent (as far as complete).
func respCommands(b []byte) [][]string {
	var out [][]string
	r := bufio.NewReader(strings.NewReader(string(b)))
	line := func() (string, bool) {
		s, err := r.ReadString('\n')
		return strings.TrimRight(s, "\r\n"), err == nil
	}
	for {
		h, ok := line()
		if !ok || !strings.HasPrefix(h, "*") {
			return out
		}
		n, err := strconv.Atoi(h[1:])
		if err != nil {
			return out
		}
		var cmd []string
		for i := 0; i < n; i++ {
			h, ok := line()
			if !ok || !strings.HasPrefix(h, "$") {
				return out
			}
			l, err := strconv.Atoi(h[1:])
			if err != nil || l < 0 {
				return out
			}
			arg := make([]byte, l+2)
			if _, err := io.ReadFull(r, arg); err != nil {
				return out
			}
			cmd = append(cmd, string(arg[:l]))
		}
		out = append(out, cmd)
	}
}

// (b) A listener that accepts and never answers, from the first connection on.
func TestFaultListenerNeverAnswers(t *testing.T) {
	addr, received := hungListener(t)
	c := faultCache(t, defaultsClient(t, addr))
	ks := userSpace(c)
	src := faultRows()
	w := startWorkload(ks, src, 8)
	time.Sleep(1500 * time.Millisecond)
	w.halt()
	w.check(t)
	checkBounded(t, "listener never answers", w.lat.take())
	s := c.Stats()
	if s.Get(EventBreakerOpen) == 0 {
		t.Errorf("breaker never opened: %v", s)
	}
	if s.Get(EventHit) != 0 || s.Get(EventFill) != 0 {
		t.Errorf("hits or fills against a server that never answers: %v", s)
	}
	// (c) No write-back: nothing but the connection handshake and the hit
	// check was ever sent.
	for _, cmd := range respCommands(received()) {
		switch strings.ToUpper(cmd[0]) {
		case "HELLO", "CLIENT", "PING", "SELECT", "AUTH":
		case "MGET": // the hit
		default:
			t.Errorf("sent %q to a server that never answered", cmd)
		}
	}
}

// proxyMode is what faultProxy does with traffic.
type proxyMode int32

const (
	proxyPass   proxyMode = iota // forward both ways
	proxyRefuse                  // close every connection at once
	proxyHang                    // keep connections open, forward nothing, never answer
)

// faultProxy is a loopback TCP proxy in front of a real redis-server; it
// fails the path to the server while the server and its data live on.
type faultProxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32
	lag    atomic.Int64 // ns each chunk waits before it is forwarded, either way
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, target string) *faultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

// set switches the mode; leaving pass or hang drops every open connection
// (a hung connection has lost bytes and cannot carry on).
func (p *faultProxy) set(m proxyMode) {
	old := proxyMode(p.mode.Swap(int32(m)))
	if m != proxyHang || old == proxyRefuse {
		p.closeAll()
	}
}

func (p *faultProxy) closeAll() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
}

func (p *faultProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	p.mu.Unlock()
}

func (p *faultProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		switch proxyMode(p.mode.Load()) {
		case proxyRefuse:
			c.Close()
		case proxyHang:
			p.track(c)
			p.wg.Add(1)
			go p.pipe(nil, c)
		default:
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.track(c, s)
			if proxyMode(p.mode.Load()) != proxyPass { // switched meanwhile
				c.Close()
				s.Close()
				continue
			}
			p.wg.Add(2)
			go p.pipe(s, c)
			go p.pipe(c, s)
		}
	}
}

// pipe copies src to dst while the mode is pass and drops the bytes otherwise.
func (p *faultProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if d := p.lag.Load(); n > 0 && d > 0 {
			time.Sleep(time.Duration(d))
		}
		if n > 0 && dst != nil && proxyMode(p.mode.Load()) == proxyPass {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			src.Close()
			if dst != nil {
				dst.Close()
			}
			return
		}
	}
}

// (b) The same server goes silent mid-run: established, pooled connections
// stop answering (go-redis would wait out its 3s read timeout, and retry),
// new ones are accepted and never answered. Then it comes back.
func TestFaultServerGoesSilentMidRun(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ctxTimeout bool
		workers    int
		ids        int64
	}{
		{"defaults", false, 8, 24},
		{"ctxtimeout", true, 8, 24},
		// More concurrent callers on distinct keys than the pool has
		// connections (10 per CPU): the budget must also bound the wait for a
		// connection, not only the round trip.
		{"defaults/crowd", false, 100, 300},
		{"ctxtimeout/crowd", true, 100, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := testenv.StartRedis(t)
			p := startProxy(t, addr)
			rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: tc.ctxTimeout})
			t.Cleanup(func() { rdb.Close() })
			c := faultCache(t, rdb)
			ks := userSpace(c)
			src := faultRows()
			w := startWorkloadOver(ks, src, tc.workers, tc.ids)
			defer w.halt()

			waitFor(t, 30*time.Second, "hits while Redis answers", func() bool { return c.Stats().Get(EventHit) >= 50 })
			w.lat.take()

			p.set(proxyHang)
			time.Sleep(1500 * time.Millisecond)
			silent := c.Stats()
			checkBounded(t, "redis silent", w.lat.take())
			if silent.Get(EventBreakerOpen) == 0 {
				t.Errorf("breaker never opened while Redis was silent: %v", silent)
			}

			p.set(proxyPass)
			waitFor(t, 10*time.Second, "the breaker to close by itself", func() bool {
				return c.Stats().Get(EventBreakerClose) > silent.Get(EventBreakerClose)
			})
			back := c.Stats()
			waitFor(t, 10*time.Second, "cache hits after Redis answers again", func() bool {
				return c.Stats().Get(EventHit) >= back.Get(EventHit)+50
			})
			checkBounded(t, "recovery", w.lat.take())
			w.halt()
			w.check(t)
			t.Logf("stats: %v", c.Stats())
		})
	}
}

// monitor records what a real redis-server executes (MONITOR).
type monitor struct {
	mu    sync.Mutex
	lines []string
	conn  net.Conn
}

func startMonitor(t testing.TB, addr string) *monitor {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m := &monitor{conn: conn}
	r := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Fatalf("MONITOR: %q %v", l, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			m.mu.Lock()
			m.lines = append(m.lines, strings.TrimRight(l, "\r\n"))
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return m
}

// commands returns everything executed until now: it sends a marker through
// admin and waits for MONITOR to report it, then parses the lines before it.
func (m *monitor) commands(t testing.TB, admin *redis.Client) []monitorLine {
	t.Helper()
	mark := fmt.Sprintf("monitor-mark-%d", rand.Uint64())
	if err := admin.Echo(context.Background(), mark).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		i := slices.IndexFunc(m.lines, func(l string) bool { return strings.Contains(l, mark) })
		var lines []string
		if i >= 0 {
			lines = slices.Clone(m.lines[:i])
		}
		m.mu.Unlock()
		if i >= 0 {
			out := make([]monitorLine, 0, len(lines))
			for _, l := range lines {
				out = append(out, parseMonitorLine(l))
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatal("MONITOR did not report the marker")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type monitorLine struct {
	lua  bool     // run by a script
	args []string // command name (lower case) and arguments
}

// parseMonitorLine parses `+1700000000.000000 [0 127.0.0.1:5555] "get" "k"`.
func parseMonitorLine(l string) monitorLine {
	var ml monitorLine
	i := strings.Index(l, "] ")
	if i < 0 {
		return ml
	}
	ml.lua = strings.HasSuffix(l[:i], " lua")
	s := l[i+2:]
	for {
		j := strings.IndexByte(s, '"')
		if j < 0 {
			break
		}
		s = s[j+1:]
		var b strings.Builder
		k := 0
		for ; k < len(s) && s[k] != '"'; k++ {
			if s[k] != '\\' || k+1 >= len(s) {
				b.WriteByte(s[k])
				continue
			}
			k++ // sdscatrepr escapes
			switch s[k] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'x':
				if k+2 < len(s) {
					if v, err := strconv.ParseUint(s[k+1:k+3], 16, 8); err == nil {
						b.WriteByte(byte(v))
						k += 2
						continue
					}
				}
				b.WriteByte('x')
			default:
				b.WriteByte(s[k])
			}
		}
		ml.args = append(ml.args, b.String())
		if k >= len(s) {
			break
		}
		s = s[k+1:]
	}
	if len(ml.args) > 0 {
		ml.args[0] = strings.ToLower(ml.args[0])
	}
	return ml
}

// onlyReads fails the test for any command in cmds other than the hit check
// and connection chatter: no SET, no lease, no fill, no DEL.
func onlyReads(t *testing.T, cmds []monitorLine) (hitChecks int) {
	t.Helper()
	for _, c := range cmds {
		if c.lua || len(c.args) == 0 {
			continue // commands run by the hit script are its reads
		}
		switch c.args[0] {
		case "hello", "client", "ping", "select", "echo", "info", "config":
		case "mget": // the hit
			hitChecks++
		default:
			t.Errorf("after a failed read, Redis executed %q", c.args)
		}
	}
	return hitChecks
}

// (c) No write-back after a failed read, on a real server that stays up:
// the read fails, the source answers, and Redis sees no lease and no fill —
// checked with MONITOR, which also shows the late read arriving.
func TestFaultNoWriteBackAfterFailedRead(t *testing.T) {
	t.Run("read errors", func(t *testing.T) {
		addr, _ := testenv.StartRedis(t)
		admin := adminClient(t, addr)
		c := faultCache(t, defaultsClient(t, addr))
		ks := userSpace(c)
		src := faultRows()
		ctx := context.Background()
		key := userKey(ks, 7)
		// The cache's user may not read: its hit (MGET) fails with NOPERM,
		// while a lease or a fill would still be allowed.
		if err := admin.Do(ctx, "ACL", "SETUSER", "default", "-mget").Err(); err != nil {
			t.Fatal(err)
		}
		mon := startMonitor(t, addr)
		for i := 0; i < 2; i++ {
			u, err := getUser(ctx, ks, src, 7)
			if e := checkAnswer(src, 7, u, err); e != nil {
				t.Fatal(e)
			}
		}
		onlyReads(t, mon.commands(t, admin))
		if n := admin.Exists(ctx, string(key), leaseKeyOf(key)).Val(); n != 0 {
			t.Errorf("entry or lease written after a failed read (%d keys)", n)
		}
		if n := src.calls.Load(); n != 2 {
			t.Errorf("source calls = %d, want 2", n)
		}
		if s := c.Stats(); s.Get(EventRedisError) == 0 || s.Get(EventFill) != 0 {
			t.Errorf("stats %v: want redis errors and no fill", s)
		}
	})

	t.Run("read times out", func(t *testing.T) {
		addr, _ := testenv.StartRedis(t)
		admin := defaultsClient(t, addr)
		rdb := defaultsClient(t, addr)
		c := faultCache(t, rdb)
		ks := userSpace(c)
		src := faultRows()
		ctx := context.Background()
		if err := rdb.Ping(ctx).Err(); err != nil { // a pooled connection, past its handshake
			t.Fatal(err)
		}
		mon := startMonitor(t, addr)
		// Redis stalls every client for 300ms: the hit check outlives the
		// budget but is executed later; a fill sent after it would succeed.
		if err := admin.Do(ctx, "CLIENT", "PAUSE", 300, "ALL").Err(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		u, err := getUser(ctx, ks, src, 8)
		if e := checkAnswer(src, 8, u, err); e != nil {
			t.Fatal(e)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("call took %v while Redis was paused; budget %v", d, faultBudget)
		}
		time.Sleep(400 * time.Millisecond) // the pause ends, late commands run
		cmds := mon.commands(t, admin)
		if n := onlyReads(t, cmds); n == 0 {
			t.Errorf("MONITOR never saw the late hit check: the test observed nothing")
		}
		if n := admin.Exists(ctx, string(userKey(ks, 8)), leaseKeyOf(userKey(ks, 8))).Val(); n != 0 {
			t.Errorf("entry or lease written after a failed read (%d keys)", n)
		}
		if s := c.Stats(); s.Get(EventRedisError) == 0 || s.Get(EventFill) != 0 {
			t.Errorf("stats %v: want a timeout and no fill", s)
		}
	})
}

// adminClient connects to a private server as a user of its own, so ACL
// changes to the default user (the cache's) do not lock the test out.
func adminClient(t testing.TB, addr string) *redis.Client {
	setup := defaultsClient(t, addr)
	if err := setup.Do(context.Background(), "ACL", "SETUSER", "admin", "on", ">admin", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: addr, Username: "admin", Password: "admin"})
	t.Cleanup(func() { admin.Close() })
	return admin
}

// errBoom is a source error that is not the not-found sentinel.
var errBoom = errors.New("database is on fire")

// (d) Whatever Redis does — refuse, never answer, answer every command with
// an error — Lookup, Load (via getUser), Put and Invalidate return within the
// bound, and what reaches the caller is the source's answer: its value, its
// not-found error, its other errors, identical.
func TestFaultRedisErrorsNeverReturned(t *testing.T) {
	faults := []struct {
		name       string
		fail, heal func(t *testing.T, p *faultProxy, admin *redis.Client)
	}{
		{"refused",
			func(t *testing.T, p *faultProxy, _ *redis.Client) { p.set(proxyRefuse) },
			func(t *testing.T, p *faultProxy, _ *redis.Client) { p.set(proxyPass) }},
		{"never answers",
			func(t *testing.T, p *faultProxy, _ *redis.Client) { p.set(proxyHang) },
			func(t *testing.T, p *faultProxy, _ *redis.Client) { p.set(proxyPass) }},
		{"every command errors", // NOPERM for the cache's user; the admin has its own
			func(t *testing.T, _ *faultProxy, admin *redis.Client) {
				if err := admin.Do(context.Background(), "ACL", "SETUSER", "default", "-@all", "+hello", "+ping").Err(); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, _ *faultProxy, admin *redis.Client) {
				if err := admin.Do(context.Background(), "ACL", "SETUSER", "default", "+@all").Err(); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			addr, _ := testenv.StartRedis(t)
			ctx := context.Background()
			admin := adminClient(t, addr)
			p := startProxy(t, addr)
			c := faultCache(t, defaultsClient(t, p.Addr()))
			ks := userSpace(c)
			src := faultRows()

			// Redis works: id 1 is cached, a failing source is not.
			for i := 0; i < 2; i++ {
				u, err := getUser(ctx, ks, src, 1)
				if e := checkAnswer(src, 1, u, err); e != nil {
					t.Fatal(e)
				}
			}
			if _, err := loadVia(ctx, ks, userKey(ks, 2), Loader[*user]{
				Load: func(context.Context) (*user, error) { return nil, errBoom },
			}); err != errBoom {
				t.Fatalf("source error with Redis up: got %v, want the source's error itself", err)
			}

			f.fail(t, p, admin)
			defer f.heal(t, p, admin)
			timed := func(what string, fn func()) {
				t.Helper()
				start := time.Now()
				fn()
				if d := time.Since(start); d > faultP99Bound {
					t.Errorf("%s took %v with Redis failing", what, d)
				}
			}
			for round := 0; round < 3; round++ { // before and after the breaker opens
				timed("Lookup", func() {
					v, hit, err := lookup3(ctx, ks, userKey(ks, 1))
					if v != nil || hit || err != nil {
						t.Errorf("Lookup = (%v, %v, %v), want a plain miss", v, hit, err)
					}
				})
				for _, id := range []int64{1, 3, 22} {
					timed("get", func() {
						u, err := getUser(ctx, ks, src, id)
						if e := checkAnswer(src, id, u, err); e != nil {
							t.Error(e)
						}
					})
				}
				timed("Load with a failing source", func() {
					u, err := loadVia(ctx, ks, userKey(ks, 2), Loader[*user]{
						Load: func(context.Context) (*user, error) { return nil, errBoom },
					})
					if u != nil || err != errBoom {
						t.Errorf("Load = (%v, %v), want the source's error itself", u, err)
					}
				})
				timed("Put", func() {
					Put(ctx, ks, userKey(ks, 4), &user{ID: 4, Name: "new"}, []string{"user:4"},
						Invalidation{Tags: []string{"user:4"}})
				})
				timed("Invalidate", func() {
					// Documented to return the delivery error for callers who
					// want it; it must come back in time and not panic.
					_ = c.Invalidate(ctx, Invalidation{Keys: []Key{userKey(ks, 5)}, Tags: []string{"user:5"}})
				})
			}
			s := c.Stats()
			if s.Get(EventRedisError) == 0 && s.Get(EventBypass) == 0 {
				t.Errorf("no redis error or bypass counted: %v", s)
			}
			if s.Get(EventBreakerOpen) == 0 {
				t.Errorf("breaker never opened: %v", s)
			}

			f.heal(t, p, admin)
			waitFor(t, 10*time.Second, "the breaker to close", func() bool {
				s := c.Stats()
				return s.Get(EventBreakerClose) > 0 && c.healthy()
			})
			hits := c.Stats().Get(EventHit)
			for i := 0; i < 3; i++ {
				u, err := getUser(ctx, ks, src, 1)
				if e := checkAnswer(src, 1, u, err); e != nil {
					t.Fatal(e)
				}
			}
			if c.Stats().Get(EventHit) == hits {
				t.Errorf("no hit after recovery: %v", c.Stats())
			}
		})
	}
}

// (e) An invalidation that fails while Redis is unreachable is kept: the
// breaker stays open (reads go to the source, never to the stale entries
// still sitting in Redis), and when Redis is back the invalidation is
// replayed before the breaker closes, so the stale entries are never served.
func TestFaultPendingInvalidationReplayed(t *testing.T) {
	addr, _ := testenv.StartRedis(t)
	admin := adminClient(t, addr)
	p := startProxy(t, addr)
	c := faultCache(t, defaultsClient(t, p.Addr()))
	ks := userSpace(c)
	// A second keyspace, invalidated through its pattern group.
	ks2 := NewKeyspace(c.Repo("accounts", 1), Spec[*user]{Template: "user:{}", Schema: "s1", TTL: time.Minute})
	src := faultRows()
	ctx := context.Background()
	type target struct {
		ks *Keyspace[*user]
		id int64
	}
	targets := []target{{ks, 1}, {ks, 2}, {ks2, 3}} // by key, by tag, by group
	get := func(tg target) {
		t.Helper()
		u, err := getUser(ctx, tg.ks, src, tg.id)
		if e := checkAnswer(src, tg.id, u, err); e != nil {
			t.Fatal(e)
		}
	}
	for _, tg := range targets {
		get(tg)
		get(tg)
	}
	if s := c.Stats(); s.Get(EventHit) != 3 || s.Get(EventFill) != 3 {
		t.Fatalf("warm-up stats %v: want 3 fills and 3 hits", s)
	}

	p.set(proxyRefuse)
	// The writes: the source changes, the invalidations cannot be delivered.
	for _, id := range []int64{1, 2, 3} {
		src.rows[id] = &user{ID: id, Name: "renamed-" + strconv.FormatInt(id, 10)}
	}
	for _, inv := range []Invalidation{
		{Keys: []Key{userKey(ks, 1)}},
		{Tags: []string{"user:2"}},
		{Groups: []Group{ks2.Group()}},
	} {
		if err := c.Invalidate(ctx, inv); err == nil {
			t.Fatalf("Invalidate(%+v) reported success with Redis unreachable", inv)
		}
	}
	if s := c.Stats(); s.Get(EventBreakerOpen) == 0 {
		t.Fatalf("breaker not open after a lost invalidation: %v", s)
	}
	for _, tg := range targets {
		get(tg)
	}
	// The stale entries are still in Redis, as after any network partition:
	// only the replay can make them unreadable.
	if n := admin.Exists(ctx, string(userKey(ks, 1)), string(userKey(ks, 2)), string(userKey(ks2, 3))).Val(); n != 3 {
		t.Fatalf("stale entries in Redis = %d, want 3 (the test would prove nothing)", n)
	}

	closes := c.Stats().Get(EventBreakerClose)
	// Redis comes back for reads but still refuses the writes the replay
	// needs (as when it is out of memory, or a read-only replica answers):
	// the breaker must stay open and every read keep coming from the source.
	if err := admin.Do(ctx, "ACL", "SETUSER", "default", "-del", "-unlink", "-incr").Err(); err != nil {
		t.Fatal(err)
	}
	p.set(proxyPass)
	for end := time.Now().Add(4 * faultCooldown); time.Now().Before(end); {
		for _, tg := range targets {
			get(tg)
		}
		time.Sleep(time.Millisecond)
	}
	if c.Stats().Get(EventBreakerClose) != closes || c.healthy() {
		t.Fatalf("breaker closed while the invalidations were still undelivered: %v", c.Stats())
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "default", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	// From the moment Redis takes writes, hammer the keys: no read may see a
	// stale entry, whether it runs before, during or after the replay.
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Get(EventBreakerClose) == closes {
		if time.Now().After(deadline) {
			t.Fatalf("breaker did not close after Redis came back: %v", c.Stats())
		}
		for _, tg := range targets {
			get(tg)
		}
	}
	hits := c.Stats().Get(EventHit)
	for i := 0; i < 3; i++ {
		for _, tg := range targets {
			get(tg)
		}
	}
	if n := c.Stats().Get(EventHit) - hits; n < 6 {
		t.Errorf("%d hits after the replay, want at least 6: %v", n, c.Stats())
	}
	t.Logf("stats: %v", c.Stats())
}
