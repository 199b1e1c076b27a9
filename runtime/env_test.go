package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// The Cluster backend: one private 3-master cluster per test binary, started
// on first use with scripts/redis-cluster.sh and stopped by TestMain.
var cluster struct {
	once  sync.Once
	dir   string
	addrs []string
	err   error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster.dir != "" {
		_ = exec.Command("bash", filepath.Join(repoRoot(), "scripts", "redis-cluster.sh"), "stop", cluster.dir).Run()
	}
	os.Exit(code)
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "."
		}
		dir = parent
	}
}

// freeClusterPort finds a loopback port p with p and its cluster bus p+10000 free.
func freeClusterPort(taken map[int]bool) (int, error) {
	for i := 0; i < 200; i++ {
		p := 20000 + mrand.IntN(25000)
		if taken[p] {
			continue
		}
		ok := true
		for _, q := range []int{p, p + 10000} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			taken[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port pair found")
}

func clusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	if os.Getenv("CACHEGEN_CLUSTER_ADDRS") != "" { // a child process of the stampede test
		cluster.addrs = strings.Split(os.Getenv("CACHEGEN_CLUSTER_ADDRS"), ",")
	}
	cluster.once.Do(func() {
		if cluster.addrs != nil {
			return
		}
		if _, err := exec.LookPath("redis-server"); err != nil {
			cluster.err = err
			return
		}
		dir, err := os.MkdirTemp("", "cachegen-cluster-")
		if err != nil {
			cluster.err = err
			return
		}
		taken := map[int]bool{}
		args := []string{filepath.Join(repoRoot(), "scripts", "redis-cluster.sh"), "start", dir}
		for i := 0; i < 3; i++ {
			p, err := freeClusterPort(taken)
			if err != nil {
				cluster.err = err
				return
			}
			args = append(args, strconv.Itoa(p))
			cluster.addrs = append(cluster.addrs, "127.0.0.1:"+strconv.Itoa(p))
		}
		out, err := exec.Command("bash", args...).CombinedOutput()
		if err != nil {
			cluster.err = fmt.Errorf("%v: %s", err, out)
			cluster.addrs = nil
			return
		}
		cluster.dir = dir
	})
	if cluster.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis cluster: %v", cluster.err)
		}
		t.Skipf("redis cluster not available: %v", cluster.err)
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.addrs})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// backends runs f against a single node and against the private Cluster.
func backends(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("single", func(t *testing.T) { f(t, redisClient(t)) })
	t.Run("cluster", func(t *testing.T) { f(t, clusterClient(t)) })
}
