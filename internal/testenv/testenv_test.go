package testenv

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

func TestDefaultsAndOverrides(t *testing.T) {
	t.Setenv("REDIS_ADDR", "")
	t.Setenv("DATABASE_URL", "")
	if got := RedisAddr(); got != "127.0.0.1:6379" {
		t.Errorf("RedisAddr() = %q, want 127.0.0.1:6379", got)
	}
	if got := DatabaseURL(); got != "postgres://postgres@127.0.0.1:5432/test" {
		t.Errorf("DatabaseURL() = %q", got)
	}
	t.Setenv("REDIS_ADDR", "127.0.0.1:7000")
	t.Setenv("DATABASE_URL", "postgres://u@127.0.0.1:6000/x")
	if got := RedisAddr(); got != "127.0.0.1:7000" {
		t.Errorf("RedisAddr() = %q, want the override", got)
	}
	if got := DatabaseURL(); got != "postgres://u@127.0.0.1:6000/x" {
		t.Errorf("DatabaseURL() = %q, want the override", got)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://postgres@127.0.0.1:5432/test":  "postgres://postgres@127.0.0.1:5432/test",
		"postgres://u:secret@127.0.0.1:5432/test":  "postgres://u:xxxxx@127.0.0.1:5432/test",
		"host=127.0.0.1 user=postgres dbname=test": "host=127.0.0.1 user=postgres dbname=test",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFreePort(t *testing.T) {
	p := FreePort(t)
	if p <= 0 || p > 65535 {
		t.Fatalf("FreePort() = %d", p)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d from FreePort is not bindable: %v", p, err)
	}
	l.Close()
}

func TestNeedRedis(t *testing.T) {
	addr := NeedRedis(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	key := fmt.Sprintf("testenv:%d", time.Now().UnixNano())
	if err := c.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	defer c.Del(ctx, key)
	if got, err := c.Get(ctx, key).Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}
}

func TestNeedPostgres(t *testing.T) {
	url := NeedPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "select 40 + 2").Scan(&n); err != nil || n != 42 {
		t.Fatalf("select = %d, %v", n, err)
	}
}

// recorder is a testing.TB that records Skip/Fatal instead of acting on them.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
}

func TestMissingServerSkipsOrFailsInCI(t *testing.T) {
	// A loopback port with nothing listening.
	dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	t.Setenv("REDIS_ADDR", dead)
	t.Setenv("DATABASE_URL", "postgres://postgres@"+dead+"/test?connect_timeout=2")

	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		for name, need := range map[string]func(testing.TB) string{
			"redis": NeedRedis, "postgres": NeedPostgres,
		} {
			r := &recorder{TB: t}
			need(r)
			if ci == "true" && (!r.failed || r.skipped) {
				t.Errorf("CI=true, %s missing: failed=%v skipped=%v, want a failure", name, r.failed, r.skipped)
			}
			if ci == "" && (!r.skipped || r.failed) {
				t.Errorf("CI unset, %s missing: failed=%v skipped=%v, want a skip", name, r.failed, r.skipped)
			}
			if !strings.Contains(r.msg, dead) {
				t.Errorf("%s message %q does not name the address %s", name, r.msg, dead)
			}
		}
	}
}

func TestStartRedis(t *testing.T) {
	addr, kill := StartRedis(t)
	host, _, _ := net.SplitHostPort(addr)
	if host != "127.0.0.1" {
		t.Fatalf("StartRedis addr %q is not on 127.0.0.1", addr)
	}
	if addr == RedisAddr() {
		t.Fatalf("StartRedis returned the shared Redis %s", addr)
	}
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, "k").Result(); got != "v" {
		t.Fatalf("GET k = %q", got)
	}
	if n, _ := c.DBSize(ctx).Result(); n != 1 {
		t.Fatalf("private server has %d keys, want 1 (is it really private?)", n)
	}

	kill()
	kill() // idempotent
	if err := PingRedis(addr, 500*time.Millisecond); err == nil {
		t.Fatalf("%s still answers after kill", addr)
	}

	// Bring it back on the same address: empty, since nothing is persisted.
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	addr2, _ := StartRedisAt(t, p)
	if addr2 != addr {
		t.Fatalf("StartRedisAt(%d) = %q, want %q", p, addr2, addr)
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("restarted server: DBSIZE = %d, %v; want 0", n, err)
	}
}

func TestStartRedisRejectsForeignServerOnPort(t *testing.T) {
	// A port held by another Redis must not be mistaken for ours.
	addr, _ := StartRedis(t)
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	if _, err := startRedis(t, p); err == nil {
		t.Fatalf("startRedis on a port held by another redis-server succeeded")
	}
}

func TestStartCluster(t *testing.T) {
	var addrs []string
	t.Run("up", func(t *testing.T) {
		addrs = StartCluster(t)
		if len(addrs) != 3 {
			t.Fatalf("StartCluster returned %v, want 3 addresses", addrs)
		}
		for _, a := range addrs {
			if !strings.HasPrefix(a, "127.0.0.1:") {
				t.Fatalf("node %q is not on 127.0.0.1", a)
			}
		}
		ctx := context.Background()
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		defer c.Close()

		// Keys spread over all three masters; each must round-trip.
		for i := 0; i < 100; i++ {
			k := fmt.Sprintf("key-%d", i)
			if err := c.Set(ctx, k, i, 0).Err(); err != nil {
				t.Fatalf("SET %s: %v", k, err)
			}
			if got, err := c.Get(ctx, k).Int(); err != nil || got != i {
				t.Fatalf("GET %s = %d, %v", k, got, err)
			}
		}
		var masters atomic.Int32
		err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			n, err := m.DBSize(ctx).Result()
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("master %s holds no keys", m.Options().Addr)
			}
			masters.Add(1)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := masters.Load(); n != 3 {
			t.Fatalf("%d masters, want 3", n)
		}
		node := redis.NewClient(&redis.Options{Addr: addrs[0]})
		defer node.Close()
		info, err := node.ClusterInfo(ctx).Result()
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			t.Fatalf("CLUSTER INFO = %q, %v", info, err)
		}
	})
	// The subtest's cleanup stopped the cluster: nothing answers any more.
	for _, a := range addrs {
		if err := PingRedis(a, 500*time.Millisecond); err == nil {
			t.Errorf("cluster node %s still answers after cleanup", a)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	if !fileExists(root+"/go.mod") || !fileExists(root+"/scripts/redis-cluster.sh") {
		t.Fatalf("RepoRoot() = %q lacks go.mod or scripts/redis-cluster.sh", root)
	}
}

func TestMain(m *testing.M) { Main(m) }

func TestSharedCluster(t *testing.T) {
	a1 := SharedCluster(t)
	a2 := SharedCluster(t)
	if strings.Join(a1, ",") != strings.Join(a2, ",") || len(a1) != 3 {
		t.Fatalf("SharedCluster: %v then %v, want the same 3 addresses", a1, a2)
	}
	ctx := context.Background()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: a1})
	defer c.Close()
	if err := c.Set(ctx, "{shared}k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "{shared}k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}

	// What Main does after the tests: the nodes go away.
	stopShared()
	for _, a := range a1 {
		if err := PingRedis(a, 500*time.Millisecond); err == nil {
			t.Errorf("shared cluster node %s still answers after stopShared", a)
		}
	}
}
