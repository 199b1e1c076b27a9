package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachegen/cachegen/runtime"
)

// The stampede: stampedeProcs OS processes (this test binary, re-executed)
// each start stampedeGoroutines goroutines that read one cold key at the same
// moment. The source is a PostgreSQL lookup that takes stampedeDelay inside the
// server (pg_sleep), like a slow query. Per contender: source calls across all
// processes (source-calls/op) and wall time from "go" to the last answer
// (ns/op). Process start-up and connection set-up are outside the timer.
const (
	stampedeProcs      = 4
	stampedeGoroutines = 1000
	stampedeDelay      = 20 * time.Millisecond
	stampedePGConns    = 10 // per process: 4 × 10 stay under max_connections=100
)

var stampedeContenders = []string{"cachegen", "handwritten", "goredis-cache"}

func BenchmarkStampede(b *testing.B) {
	for _, name := range stampedeContenders {
		b.Run(name, func(b *testing.B) {
			e := getEnv(b)
			c := needContender(b, e, name, &PGUsers{Pool: e.pool})
			ctx := context.Background()
			var calls, wrong, fallbacks, maxCalls int64
			m := e.newMeter(b)
			b.ResetTimer()
			b.StopTimer() // runStampede times only the stampede itself
			for range b.N {
				id := 1 + rand.Int64N(Rows)
				if err := c.Forget(ctx, id); err != nil {
					b.Fatal(err)
				}
				r, err := runStampede(b, m, e.addr, name, id)
				if err != nil {
					b.Fatal(err)
				}
				calls += r.calls
				wrong += r.wrong
				fallbacks += r.fallbacks
				if r.calls > maxCalls {
					maxCalls = r.calls
				}
			}
			m.report(b, b.N, "op")
			b.ReportMetric(float64(calls)/float64(b.N), "source-calls/op")
			b.ReportMetric(float64(maxCalls), "max-source-calls")
			if name == "cachegen" {
				b.ReportMetric(float64(fallbacks)/float64(b.N), "fallbacks/op")
			}
			if wrong > 0 {
				b.Errorf("%s: %d callers got an error or the wrong row", name, wrong)
			}
		})
	}
}

type stampedeResult struct{ calls, wrong, fallbacks int64 }

type worker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// runStampede starts the workers, waits until every one is ready, then
// starts the timer and releases them all.
func runStampede(b *testing.B, m *meter, addr, name string, id int64) (stampedeResult, error) {
	var res stampedeResult
	ws := make([]*worker, 0, stampedeProcs)
	defer func() {
		for _, w := range ws {
			_ = w.stdin.Close()
			_ = w.cmd.Process.Kill()
			_ = w.cmd.Wait()
		}
	}()
	for range stampedeProcs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStampedeWorker$", "-test.bench=^$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			"BENCH_STAMPEDE_WORKER="+name,
			"BENCH_STAMPEDE_ID="+strconv.FormatInt(id, 10),
			"BENCH_PG_CONNS="+strconv.Itoa(stampedePGConns),
			"REDIS_ADDR="+addr, "DATABASE_URL="+databaseURL())
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return res, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return res, err
		}
		if err := cmd.Start(); err != nil {
			return res, err
		}
		ws = append(ws, &worker{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)})
	}
	for _, w := range ws {
		if _, err := expect(w, "STAMPEDE-READY"); err != nil {
			return res, err
		}
	}
	m.start()
	b.StartTimer()
	for _, w := range ws {
		if _, err := io.WriteString(w.stdin, "go\n"); err != nil {
			return res, err
		}
	}
	lines := make([]string, len(ws))
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() { lines[i], errs[i] = expect(w, "STAMPEDE-DONE") })
	}
	wg.Wait()
	b.StopTimer()
	m.stop()
	for i := range ws {
		if errs[i] != nil {
			return res, errs[i]
		}
		var calls, wrong, fallbacks int64
		var rtt, cmds string
		if _, err := fmt.Sscan(lines[i], &calls, &wrong, &fallbacks, &rtt, &cmds); err != nil {
			return res, fmt.Errorf("worker said %q: %v", lines[i], err)
		}
		sent, err := parseClientSample(rtt, cmds)
		if err != nil {
			return res, fmt.Errorf("worker said %q: %v", lines[i], err)
		}
		m.addClient(sent)
		res.calls += calls
		res.wrong += wrong
		res.fallbacks += fallbacks
	}
	return res, nil
}

// expect reads worker lines until one starts with prefix and returns the rest.
func expect(w *worker, prefix string) (string, error) {
	var seen []string
	for w.out.Scan() {
		line := w.out.Text()
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(rest), nil
		}
		seen = append(seen, line)
	}
	return "", fmt.Errorf("stampede worker exited before %s; output: %s", prefix, strings.Join(seen, "\n"))
}

// TestStampedeWorker is one process of the stampede; it does nothing unless
// BenchmarkStampede started it.
func TestStampedeWorker(t *testing.T) {
	name := os.Getenv("BENCH_STAMPEDE_WORKER")
	if name == "" {
		t.Skip("stampede worker: started by BenchmarkStampede only")
	}
	id, err := strconv.ParseInt(os.Getenv("BENCH_STAMPEDE_ID"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	e, err := openEnv(redisAddr())
	if err != nil {
		t.Fatal(err)
	}
	src := &PGUsers{Pool: e.pool, Delay: stampedeDelay}
	var c contender
	var cache *runtime.Cache
	if name == "cachegen" && newCachegen != nil {
		cache = newCache(e.rdb)
		c = newCachegen(src, cache)
	} else {
		var ok bool
		if c, ok = makeContender(e, name, src); !ok {
			t.Fatalf("contender %s not available", name)
		}
	}
	ctx := context.Background()
	// Open the pool's connections now, so the stampede measures queries, not dials.
	var conns sync.WaitGroup
	for range stampedePGConns {
		conns.Go(func() {
			if cn, err := e.pool.Acquire(ctx); err == nil {
				time.Sleep(10 * time.Millisecond)
				cn.Release()
			}
		})
	}
	conns.Wait()
	_ = e.rdb.Ping(ctx).Err()

	start := make(chan struct{})
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for range stampedeGoroutines {
		wg.Go(func() {
			<-start
			u, err := c.Get(ctx, id)
			if err != nil || u == nil || u.ID != id {
				wrong.Add(1)
			}
		})
	}
	fmt.Println("STAMPEDE-READY")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "go" {
		t.Fatalf("stampede worker: no go (%q, %v)", line, err)
	}
	c0 := e.rtt.sample()
	close(start)
	wg.Wait()
	sent := e.rtt.sample().sub(c0) // round trips and commands, for the parent's meter
	// Why cachegen called the source more than once, if it did: Redis calls
	// that failed or outlived the time budget (fail-open), and waiters that
	// gave up after the lease wait.
	var fallbacks uint64
	if cache != nil {
		st := cache.Stats()
		fallbacks = st.Get(runtime.EventRedisError) + st.Get(runtime.EventLeaseTimeout) + st.Get(runtime.EventBypass)
	}
	fmt.Printf("STAMPEDE-DONE %d %d %d %s\n", src.Reads.Load(), wrong.Load(), fallbacks, sent)
}
