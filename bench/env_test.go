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
)

type env struct {
	rdb        *redis.Client // ContextTimeoutEnabled: true — the main comparison
	rdbDefault *redis.Client // go-redis defaults, for the cachegen-defaultopts line
	pool       *pgxpool.Pool
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

func openEnv() (*env, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A plain dial first: go-redis would retry and log every attempt.
	if cn, err := net.DialTimeout("tcp", redisAddr(), time.Second); err != nil {
		return nil, fmt.Errorf("redis at %s unreachable (%v); start it (make services) or set REDIS_ADDR", redisAddr(), err)
	} else {
		_ = cn.Close()
	}
	e := &env{
		rdb:        redis.NewClient(&redis.Options{Addr: redisAddr(), ContextTimeoutEnabled: true}),
		rdbDefault: redis.NewClient(&redis.Options{Addr: redisAddr()}),
	}
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	err := e.rdb.Ping(pctx).Err()
	pcancel()
	if err != nil {
		return nil, fmt.Errorf("redis at %s unreachable (%v); start it (make services) or set REDIS_ADDR", redisAddr(), err)
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

// getEnv connects once per process; it skips the benchmark with the reason
// when a server does not answer.
func getEnv(tb testing.TB) *env {
	tb.Helper()
	envOnce.Do(func() { envVal, envErr = openEnv() })
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

func newCache(rdb redis.UniversalClient) *runtime.Cache {
	return runtime.New(rdb, runtime.WithNamespace(cgNamespace))
}

// makeContender returns the named contender over src, or ok=false when it is
// not available (cachegen before go generate).
func makeContender(e *env, name string, src Users) (c contender, ok bool) {
	switch name {
	case "cachegen":
		if newCachegen == nil {
			return nil, false
		}
		return newCachegen(src, newCache(e.rdb)), true
	case "cachegen-defaultopts":
		if newCachegen == nil {
			return nil, false
		}
		return newCachegen(src, newCache(e.rdbDefault)), true
	case "handwritten":
		return &HandWritten{RDB: e.rdb, Src: src, TTL: ttl, Prefix: hwPrefix}, true
	case "goredis-cache":
		return &GoRedisCache{C: cache.New(&cache.Options{Redis: e.rdb}), Src: src, TTL: ttl, Prefix: grcPrefix}, true
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
