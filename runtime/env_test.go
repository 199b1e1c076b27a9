package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
)

// redisClient connects to the shared test Redis, skipping when it is not
// there — except under CI=true, where a missing server is a failure.
func redisClient(t testing.TB) *redis.Client {
	t.Helper()
	// ContextTimeoutEnabled, as docs/runtime.md recommends: a call that
	// outlives the budget gives its connection back at once. fault_test.go
	// covers clients built with go-redis defaults.
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t), ContextTimeoutEnabled: true})
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
	// A generous budget: correctness tests run under -race next to other
	// packages on two cores, where a slow reply is not a Redis failure.
	// Fault tests pass their own small budget (later options win).
	base := []Option{WithNamespace(testNamespace(t)), WithLogger(quietLogger()), WithTimeout(2 * time.Second)}
	return New(rdb, append(base, opts...)...)
}

func TestMain(m *testing.M) {
	if ns := os.Getenv("CACHEGEN_STAMPEDE_NS"); ns != "" {
		stampedeChild(ns) // a process of TestStampede, not a test run
		return
	}
	if p := os.Getenv("CACHEGEN_LOCAL_CHILD"); p != "" {
		n, _ := strconv.Atoi(p)
		localChild(n) // a process of TestLocalCoherence
		return
	}
	if p := os.Getenv("CACHEGEN_HISTORY_CHILD"); p != "" {
		n, _ := strconv.Atoi(p)
		historyChild(n) // a process of TestHistories
		return
	}
	if p := os.Getenv("CACHEGEN_BATCH_CHILD"); p != "" {
		n, _ := strconv.Atoi(p)
		batchChild(n) // a process of TestBatchProcesses
		return
	}
	if p := os.Getenv("CACHEGEN_REFRESH_CHILD"); p != "" {
		n, _ := strconv.Atoi(p)
		refreshChild(n) // a process of TestRefreshProcesses
		return
	}
	if p := os.Getenv("CACHEGEN_RF_CHILD"); p != "" {
		n, _ := strconv.Atoi(p)
		rfChild(n) // a process of TestRefreshFaults
		return
	}
	testenv.Main(m)
}

// clusterClient connects to the private 3-master Cluster of this test binary.
func clusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.SharedCluster(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// backends runs f against a single node and against the private Cluster.
func backends(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("single", func(t *testing.T) { f(t, redisClient(t)) })
	t.Run("cluster", func(t *testing.T) { f(t, clusterClient(t)) })
}
