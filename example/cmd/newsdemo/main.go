// Command newsdemo runs the news-site example: it seeds a few thousand
// articles, then runs the same Zipf-distributed workload (concurrent readers,
// about 5 % writes) twice — on the database directly and through the
// repositories cachegen generated — and prints what the cache changed:
// hit rate, database queries, latency percentiles, and a stampede test.
//
//	go run ./example/cmd/newsdemo            # or: make demo
//	go run ./example/cmd/newsdemo -h         # flags
//
// It uses Redis at $REDIS_ADDR (default 127.0.0.1:6379) and PostgreSQL at
// $DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test, schema
// cachegen_news). When either does not answer it runs on the embedded
// default instead: an in-process Redis (miniredis) and an in-memory source
// with a simulated database latency.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/cachegen/cachegen/example/news"
	"github.com/cachegen/cachegen/runtime"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// config is what the flags and the environment set.
type config struct {
	redisAddr   string
	databaseURL string
	schema      string
	embedded    bool // skip the servers, use the embedded default

	articles    int
	requests    int
	concurrency int
	writePct    float64
	zipfS       float64
	stampede    int
	processes   int // simulated application instances in the stampede test
	seed        uint64
	timeout     time.Duration // runtime.WithTimeout; 0 keeps the runtime's default
	warm        int           // articles to warm before a third, warmed cached run (0: none)
	verify      float64       // runtime.WithVerify
	httpAddr    string        // serve the health page and /metrics here after the workload
}

func main() {
	cfg := config{
		redisAddr:   envOr("REDIS_ADDR", "127.0.0.1:6379"),
		databaseURL: envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
	}
	flag.StringVar(&cfg.schema, "schema", news.DefaultSchema, "PostgreSQL schema of the example's tables (replaced by the seed)")
	flag.BoolVar(&cfg.embedded, "embedded", false, "use the embedded Redis and in-memory source even when servers answer")
	flag.IntVar(&cfg.articles, "articles", 5000, "articles to seed")
	flag.IntVar(&cfg.requests, "requests", 40000, "requests per run (one run without and one with the cache)")
	flag.IntVar(&cfg.concurrency, "concurrency", 16, "concurrent clients")
	flag.Float64Var(&cfg.writePct, "writes", 5, "percentage of requests that write (Update, Publish, UpdateProfile)")
	flag.Float64Var(&cfg.zipfS, "zipf", 1.35, "Zipf exponent s (>1) of article popularity; higher is more skewed")
	flag.IntVar(&cfg.stampede, "stampede", 200, "goroutines reading one cold key at once in the stampede test")
	flag.IntVar(&cfg.processes, "processes", 4, "simulated application instances (one runtime.Cache each) in the stampede test")
	flag.Uint64Var(&cfg.seed, "seed", 1, "random seed of the workload")
	flag.IntVar(&cfg.warm, "warm", 0, "warm the N most read (newest) articles with WarmByIDs, then run the cached workload once more from there (0: no warmed run)")
	flag.Float64Var(&cfg.verify, "verify", 0.01, "fraction of cache hits the consistency checker re-reads from the source (runtime.WithVerify; 0: off)")
	flag.StringVar(&cfg.httpAddr, "http", "", "after the workload, serve the cache's health page (/), its JSON (/json) and Prometheus metrics (/metrics) on this address, e.g. :8080, until interrupted")
	flag.DurationVar(&cfg.timeout, "redis-timeout", 0, "budget of one Redis call before it is served from the source (0: the runtime's default, 100ms; 1s on the embedded Redis)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: newsdemo [flags]\n\n"+
			"Environment: REDIS_ADDR (default 127.0.0.1:6379), DATABASE_URL (default\n"+
			"postgres://postgres@127.0.0.1:5432/test). Without them reachable it runs on an\n"+
			"in-process Redis and an in-memory source.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "newsdemo:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "newsdemo:", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	switch {
	case c.articles < 100:
		return fmt.Errorf("-articles must be at least 100")
	case c.requests < 1 || c.concurrency < 1 || c.stampede < 1 || c.processes < 1:
		return fmt.Errorf("-requests, -concurrency, -stampede and -processes must be positive")
	case c.writePct < 0 || c.writePct > 100:
		return fmt.Errorf("-writes must be a percentage")
	case c.zipfS <= 1:
		return fmt.Errorf("-zipf must be greater than 1")
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// source is what both implementations of the example offer.
type source interface {
	news.Articles
	news.Users
	Queries() int64
}

// backend is where the demo runs: real servers or the embedded default.
type backend struct {
	describe string
	timeout  time.Duration // Redis budget when -redis-timeout is not set (0: the runtime's default)
	rdb      *redis.Client
	// fresh returns a source holding exactly the seeded dataset.
	fresh func(ctx context.Context) (source, error)
	close func()
}

// connect finds the servers, or falls back to the embedded default and says
// so on one line of out.
func connect(ctx context.Context, cfg config, d *news.Dataset, out io.Writer) (*backend, error) {
	if !cfg.embedded {
		b, err := connectServers(ctx, cfg, d)
		if err == nil {
			return b, nil
		}
		fmt.Fprintf(out, "newsdemo: %v — running on the embedded default instead: in-process Redis (miniredis) and an in-memory source with simulated database latency\n", err)
	} else {
		fmt.Fprintln(out, "newsdemo: -embedded — running on an in-process Redis (miniredis) and an in-memory source with simulated database latency")
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: cfg.concurrency * 2, ContextTimeoutEnabled: true})
	return &backend{
		describe: fmt.Sprintf("embedded: miniredis %s (much slower than Redis: read the query counts, not the latencies), in-memory source (lookup %v, feed %v, write %v)",
			mr.Addr(), news.DefaultLatency.Lookup, news.DefaultLatency.Feed, news.DefaultLatency.Write),
		rdb: rdb,
		// miniredis runs every script in a fresh Lua interpreter, in this
		// process, one command at a time: under 16 clients its queue alone
		// can pass the runtime's 100ms budget, which would turn the demo
		// into a demo of the fail-open path.
		timeout: time.Second,
		fresh: func(context.Context) (source, error) {
			return news.NewMemory(d, news.DefaultLatency), nil
		},
		close: func() { _ = rdb.Close(); mr.Close() },
	}, nil
}

func connectServers(ctx context.Context, cfg config, d *news.Dataset) (*backend, error) {
	// A plain dial first: go-redis would log its own retries of a refused
	// connection, and the fallback is meant to be explained in one line.
	conn, err := net.DialTimeout("tcp", cfg.redisAddr, 500*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("no Redis at %s (%v)", cfg.redisAddr, err)
	}
	_ = conn.Close()
	rdb := redis.NewClient(&redis.Options{Addr: cfg.redisAddr, PoolSize: cfg.concurrency * 2, ContextTimeoutEnabled: true})
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("no Redis at %s (%v)", cfg.redisAddr, err)
	}
	pcfg, err := pgxpool.ParseConfig(cfg.databaseURL)
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("bad DATABASE_URL: %v", err)
	}
	pcfg.MaxConns = int32(max(4, cfg.concurrency)) // one connection per client: the baseline is not pool-starved
	pcfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = pool.Ping(pctx)
		cancel()
		if err != nil {
			pool.Close()
		}
	}
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("no PostgreSQL at %s (%v)", redact(cfg.databaseURL), err)
	}
	if err := news.Migrate(ctx, pool, cfg.schema); err != nil {
		pool.Close()
		_ = rdb.Close()
		return nil, err
	}
	return &backend{
		describe: fmt.Sprintf("PostgreSQL %s (schema %s), Redis %s", redact(cfg.databaseURL), cfg.schema, cfg.redisAddr),
		rdb:      rdb,
		fresh: func(ctx context.Context) (source, error) {
			if err := news.Seed(ctx, pool, cfg.schema, d); err != nil {
				return nil, err
			}
			return news.NewPG(pool, cfg.schema), nil
		},
		close: func() { pool.Close(); _ = rdb.Close() },
	}, nil
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}

func run(ctx context.Context, cfg config, out, progress io.Writer) error {
	d := news.NewDataset(cfg.articles)
	b, err := connect(ctx, cfg, d, out)
	if err != nil {
		return err
	}
	defer b.close()
	fmt.Fprintf(out, "newsdemo: %s\n", b.describe)

	start := time.Now()
	if _, err := b.fresh(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "seeded %d articles, %d authors, %d categories in %v\n",
		len(d.Articles), len(d.Users), len(d.Categories), time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(out, "workload: %d requests per run, %d concurrent clients, %.0f%% writes, Zipf s=%.2f over articles (newest hottest)\n\n",
		cfg.requests, cfg.concurrency, cfg.writePct, cfg.zipfS)

	w := newWorkload(cfg, d)

	// Run 1: the database directly.
	src, err := b.fresh(ctx) // reseed: both runs start from the same rows
	if err != nil {
		return err
	}
	direct := w.run(ctx, "without cache", src, src, src, progress)
	direct.stampedeCalls = stampedeDirect(ctx, src, cfg.stampede)

	// Run 2: the generated cached repositories on a fresh namespace.
	src, err = b.fresh(ctx)
	if err != nil {
		return err
	}
	ns := "newsdemo-" + randomHex()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var redisErr atomic.Pointer[string] // the first Redis error, for the report
	opts := []runtime.Option{runtime.WithNamespace(ns), runtime.WithLogger(quiet)}
	if cfg.verify > 0 {
		opts = append(opts, runtime.WithVerify(cfg.verify))
	}
	if cfg.timeout == 0 {
		cfg.timeout = b.timeout
	}
	if cfg.timeout > 0 {
		opts = append(opts, runtime.WithTimeout(cfg.timeout))
	}
	cache := runtime.New(b.rdb, append(opts, runtime.WithObserver(func(e runtime.Event) {
		if e.Kind == runtime.EventRedisError && e.Err != nil {
			msg := e.Err.Error()
			redisErr.CompareAndSwap(nil, &msg)
		}
	}))...)
	arts := news.NewCachedArticles(src, cache)
	users := news.NewCachedUsers(src, cache)
	cached := w.run(ctx, "with cache", arts, users, src, progress)
	snap := cache.Snapshot()
	cached.stats = snap.Totals
	// The checker's re-reads reach the database like loads; they are
	// reported on their own line, not as the workload's queries.
	cached.queries -= int64(snap.VerifyCalls)
	cached.verifyCalls = snap.VerifyCalls
	if p := redisErr.Load(); p != nil {
		cached.redisErr = *p
	}
	cached.stampedeCalls, err = stampedeCached(ctx, b.rdb, opts, src, cfg.stampede, cfg.processes, d)
	if err != nil {
		return err
	}

	if cfg.verify > 0 {
		time.Sleep(1500 * time.Millisecond) // the checker's last re-checks
		cached.stats = cache.Stats()
	}
	var warmed *result
	if cfg.warm > 0 {
		// Run 3: a new, cold namespace, warmed before the workload starts.
		if src, err = b.fresh(ctx); err != nil {
			return err
		}
		wcache := runtime.New(b.rdb, append(slices.Clone(opts), runtime.WithNamespace("newsdemo-"+randomHex()))...)
		defer wcache.Close()
		warts := news.NewCachedArticles(src, wcache)
		took, queries, err := warmArticles(ctx, warts, src, d, cfg.warm, progress)
		if err != nil {
			return err
		}
		warmed = w.run(ctx, "warmed cache", warts, news.NewCachedUsers(src, wcache), src, progress)
		warmed.stats = wcache.Stats()
		warmed.warmTook, warmed.warmQueries = took, queries
	}
	printReport(out, cfg, w, direct, cached, warmed)
	if cfg.httpAddr != "" {
		return serveHealth(ctx, cfg.httpAddr, out, cache)
	}
	return nil
}

func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
