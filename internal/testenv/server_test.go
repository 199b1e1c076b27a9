package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// rc is a go-redis client for a test: no retries, short timeouts.
func rc(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStartRedisWith(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, s := StartRedisWith(t, "--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")
	if addr != s.Addr() || !strings.HasPrefix(addr, "127.0.0.1:") || addr == RedisAddr() {
		t.Fatalf("StartRedisWith = %q, Addr() = %q", addr, s.Addr())
	}
	c := rc(t, addr)
	checkConfig := func(when string) {
		t.Helper()
		got, err := c.ConfigGet(ctx, "maxmemory*").Result()
		if err != nil || got["maxmemory"] != "4194304" || got["maxmemory-policy"] != "allkeys-lru" {
			t.Fatalf("%s: CONFIG GET maxmemory* = %v, %v", when, got, err)
		}
	}
	checkConfig("started")
	if pid, err := redisProcessID(addr, time.Second); err != nil || pid != s.Pid() {
		t.Fatalf("process_id %d (%v), Pid() %d", pid, err, s.Pid())
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	// Stop: the server answers nothing until Cont.
	s.Stop()
	if err := PingRedis(addr, 300*time.Millisecond); err == nil {
		t.Fatal("a stopped server answered PING")
	}
	s.Cont()
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("after Cont: GET k = %q, %v", got, err)
	}

	// Kill, then Restart: same address and arguments, new process, no data.
	old := s.Pid()
	s.Kill()
	s.Kill() // idempotent
	if s.Pid() != 0 || PingRedis(addr, 300*time.Millisecond) == nil {
		t.Fatalf("killed server: Pid() = %d, still answering", s.Pid())
	}
	s.Restart()
	if s.Pid() == 0 || s.Pid() == old || s.Addr() != addr {
		t.Fatalf("Restart: pid %d (was %d), addr %s", s.Pid(), old, s.Addr())
	}
	checkConfig("restarted")
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("restarted server: DBSIZE = %d, %v; want 0", n, err)
	}
	// Restart of a running server replaces it.
	mid := s.Pid()
	s.Restart()
	if s.Pid() == mid || PingRedis(addr, time.Second) != nil {
		t.Fatalf("Restart of a running server: pid %d (was %d)", s.Pid(), mid)
	}

	// A bad argument is an error at once, not a port race to retry.
	if _, err := startRedis(t, FreePort(t), "--no-such-directive", "x"); err == nil || portTaken(err) {
		t.Fatalf("startRedis with a bad argument: %v", err)
	}
}

func TestKillClients(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, _ := StartRedisWith(t)
	c := rc(t, addr)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	ps := c.Subscribe(ctx, "ch")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	count := func(typ string) int {
		s, err := c.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		// CLIENT LIST runs on c's normal connection; count by flags.
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
			pubsub := strings.Contains(line, " flags=P ") || strings.Contains(line, " sub=1 ")
			if (typ == "pubsub") == pubsub {
				n++
			}
		}
		return n
	}
	if n := count("pubsub"); n != 1 {
		t.Fatalf("%d pubsub clients before the kill, want 1", n)
	}
	if n, err := KillClients(addr, "pubsub"); err != nil || n != 1 {
		t.Fatalf("KillClients(pubsub) = %d, %v; want 1", n, err)
	}
	if n := count("pubsub"); n != 0 {
		t.Fatalf("%d pubsub clients after the kill", n)
	}
	// c's connection is a normal client.
	if n, err := KillClients(addr, "normal"); err != nil || n < 1 {
		t.Fatalf("KillClients(normal) = %d, %v; want at least 1", n, err)
	}
	if _, err := KillClients(addr, "bogus"); err == nil {
		t.Fatal("KillClients with a bad type: no error")
	}
}
