package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisClient connects to the shared test Redis, skipping when it is not
// there — except under CI=true, where a missing server is a failure.
func redisClient(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s: %v (CI=true: a missing server is a failure)", addr, err)
		}
		t.Skipf("redis at %s not reachable (%v); run `make services` or set REDIS_ADDR", addr, err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// testNamespace isolates a test's keys on the shared server.
func testNamespace(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:])
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestCache(t testing.TB, rdb redis.UniversalClient, opts ...Option) *Cache {
	t.Helper()
	base := []Option{WithNamespace(testNamespace(t)), WithLogger(quietLogger())}
	return New(rdb, append(base, opts...)...)
}
