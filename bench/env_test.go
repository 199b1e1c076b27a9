package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachegen/cachegen/runtime"
	"github.com/go-redis/cache/v9"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Servers: everything runs on loopback by default.
func redisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

func databaseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test"
}

const ttl = 10 * time.Minute

// Key prefixes of the contenders, so they never see each other's entries nor
// anything another program keeps on the same Redis.
const (
	cgNamespace = "cgbench"
	hwPrefix    = "benchhw:user:"
	grcPrefix   = "benchgrc:user:"
	setPrefix   = "benchset:"
	rawPrefix   = "benchraw:" // Hit/raw-get
)

type env struct {
	addr       string        // the Redis every contender uses
	rdb        *redis.Client // ContextTimeoutEnabled: true — the main comparison
	rdbDefault *redis.Client // go-redis defaults, for the cachegen-defaultopts line
	pool       *pgxpool.Pool
	rtt        *rttCounter // hooked into rdb and rdbDefault

	// The private redis-server the contenders use (BENCH_REDIS unset or
	// "private"), and a connection to it of the meter's own (no hook, so
	// INFO is never counted as a contender's round trip); nil when the
	// benchmarks run on the shared Redis, noServerStats then says why.
	srv           *redisProc
	admin         *redis.Client
	noServerStats string
}

var (
	envOnce sync.Once
	envVal  *env
	envErr  error
)

// poolConns is the pgx pool size of one process (the stampede runs 4 of them
// against one PostgreSQL).
func poolConns() int32 {
	if s := os.Getenv("BENCH_PG_CONNS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return int32(n)
		}
	}
	return 16
}

// openBenchEnv is the benchmark process's environment: a private
// redis-server started for it (so INFO commandstats, CPU and memory figures
// are the contenders' alone), or with BENCH_REDIS=shared the Redis at
// REDIS_ADDR; PostgreSQL at DATABASE_URL either way.
func openBenchEnv() (*env, error) {
	addr := redisAddr()
	var srv *redisProc
	why := ""
	switch mode := os.Getenv("BENCH_REDIS"); mode {
	case "shared":
		why = "BENCH_REDIS=shared: the contenders use the shared Redis at " + addr + ", whose INFO counts other programs too"
	case "", "private":
		var err error
		if srv, err = startRedisServer(); err != nil {
			if mode == "private" {
				return nil, err
			}
			why = fmt.Sprintf("no private redis-server (%v); the contenders use the shared Redis at %s", err, addr)
		} else {
			addr = srv.Addr
		}
	default:
		return nil, fmt.Errorf("BENCH_REDIS=%q: want private (the default) or shared", mode)
	}
	e, err := openEnv(addr)
	if err != nil {
		if srv != nil {
			srv.stop()
		}
		return nil, err
	}
	e.noServerStats = why
	if srv != nil {
		e.srv = srv
		e.admin = redis.NewClient(&redis.Options{Addr: addr})
	}
	return e, nil
}

// openEnv connects to the Redis at addr and to PostgreSQL. Stampede workers
// call it directly with the address their parent uses.
func openEnv(addr string) (*env, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A plain dial first: go-redis would retry and log every attempt.
	if cn, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		return nil, fmt.Errorf("redis at %s unreachable (%v); start it (make services) or set REDIS_ADDR", addr, err)
	} else {
		_ = cn.Close()
	}
	e := &env{
		addr:       addr,
		rdb:        redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true}),
		rdbDefault: redis.NewClient(&redis.Options{Addr: addr}),
		rtt:        &rttCounter{},
	}
	e.rdb.AddHook(e.rtt)
	e.rdbDefault.AddHook(e.rtt)
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	err := e.rdb.Ping(pctx).Err()
	pcancel()
	if err != nil {
		return nil, fmt.Errorf("redis at %s unreachable (%v); start it (make services) or set REDIS_ADDR", addr, err)
	}
	cfg, err := pgxpool.ParseConfig(databaseURL())
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %v", err)
	}
	cfg.MaxConns = poolConns()
	cfg.MinConns = 0
	e.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err = e.pool.Ping(pctx)
		pcancel()
	}
	if err != nil {
		return nil, fmt.Errorf("postgresql at %s unreachable (%v); start it (make services) or set DATABASE_URL", redactURL(databaseURL()), err)
	}
	if err := Setup(ctx, e.pool); err != nil {
		return nil, err
	}
	return e, nil
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}

// getEnv connects once per process (TestMain stops the private server); it
// skips the benchmark with the reason when a server does not answer.
func getEnv(tb testing.TB) *env {
	tb.Helper()
	envOnce.Do(func() { envVal, envErr = openBenchEnv() })
	if envErr != nil {
		tb.Skipf("bench: skipped: %v", envErr)
	}
	return envVal
}

// contender is one way of caching Users.Get.
type contender interface {
	Get(ctx context.Context, id int64) (*User, error)
	Touch(ctx context.Context, id int64) error
	Forget(ctx context.Context, id int64) error // make id cold (outside the timer)
}

// cachegenRepo is what the benchmarks use of the generated CachedUsers.
type cachegenRepo interface {
	Users
	contender
	Reset(ctx context.Context) error // InvalidateAll: every entry cold, O(1)
}

// newCachegen builds the generated repository; cachegen_test.go sets it, so
// the rest of the suite builds (and skips the cachegen lines) without it.
var newCachegen func(src Users, c *runtime.Cache) cachegenRepo

// newCachegenLocal is the generated CachedLocalUsers (local=1m: the L1).
var newCachegenLocal func(src Users, c *runtime.Cache) cachegenRepo

func newCache(rdb redis.UniversalClient) *runtime.Cache {
	return runtime.New(rdb, runtime.WithNamespace(cgNamespace))
}

// makeContender returns the named contender over src, or ok=false when it is
// not available (cachegen before go generate).
func makeContender(e *env, name string, src Users) (c contender, ok bool) {
	if name == "cachegen-defaultopts" {
		return contenderOn(e.rdbDefault, name, src)
	}
	return contenderOn(e.rdb, name, src)
}

// contenderOn is the named contender over the client rdb.
func contenderOn(rdb *redis.Client, name string, src Users) (c contender, ok bool) {
	switch name {
	case "cachegen", "cachegen-defaultopts":
		if newCachegen == nil {
			return nil, false
		}
		return newCachegen(src, newCache(rdb)), true
	case "cachegen-local":
		if newCachegenLocal == nil {
			return nil, false
		}
		return newCachegenLocal(src, newCache(rdb)), true
	case "handwritten":
		return &HandWritten{RDB: rdb, Src: src, TTL: ttl, Prefix: hwPrefix}, true
	case "goredis-cache":
		return &GoRedisCache{C: cache.New(&cache.Options{Redis: rdb}), Src: src, TTL: ttl, Prefix: grcPrefix}, true
	case "nocache":
		return noCache{src}, true
	}
	panic("unknown contender " + name)
}

func needContender(b *testing.B, e *env, name string, src Users) contender {
	c, ok := makeContender(e, name, src)
	if !ok {
		b.Skipf("bench: %s skipped: the generated repository (users_cache.go) is missing; run `go generate` in bench/", name)
	}
	return c
}

type noCache struct{ Users }

func (noCache) Forget(context.Context, int64) error { return nil }

// TestMain stops the private redis-server once every benchmark has run (on
// Linux the kernel also kills it if the process dies first).
func TestMain(m *testing.M) {
	code := m.Run()
	if envVal != nil && envVal.srv != nil {
		envVal.srv.stop()
	}
	os.Exit(code)
}
