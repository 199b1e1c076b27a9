// Package testenv is what every server-backed test in this project uses to
// reach real servers: the shared local Redis and PostgreSQL (started by
// `make services`), private throwaway redis-server processes, private
// 3-master Redis Clusters, and private master/replica pairs with an optional
// Sentinel. Nothing here mocks a server, and every address it hands out is
// on loopback.
//
// Private servers are for fault injection: a *Server can be killed, frozen
// (SIGSTOP) and thawed, and restarted empty on the same port; a replica can
// be made to miss the last writes before it is promoted, or a Sentinel can
// fail over to it; a cluster node can be restarted empty with its identity
// and slots, slots can be migrated under load, and client connections can be
// killed by type. Every process is a child of the test process with a death
// signal (it dies with the test binary even when no cleanup runs) and is
// killed, and its files removed, in t.Cleanup.
//
// A test that needs a server which is not there is skipped with a message
// saying how to start it — except when CI=true, where a skipped server-backed
// test would hide a gap, so it fails instead.
package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Defaults used when REDIS_ADDR / DATABASE_URL are not set.
const (
	DefaultRedisAddr   = "127.0.0.1:6379"
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test"
)

// RedisAddr is $REDIS_ADDR, or 127.0.0.1:6379.
func RedisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return DefaultRedisAddr
}

// DatabaseURL is $DATABASE_URL, or postgres://postgres@127.0.0.1:5432/test.
func DatabaseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// InCI reports whether CI=true, where missing servers fail tests instead of
// skipping them.
func InCI() bool { return os.Getenv("CI") == "true" }

// unavailable skips the test (fails it under CI=true) because a server it
// needs is not there.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: a server-backed test must not be skipped)", msg)
		return
	}
	t.Skipf("%s; run `make services` (scripts/services.sh) to start the local servers", msg)
}

// NeedRedis returns the address of the shared Redis after checking that it
// answers PING; if it does not, the test is skipped (failed under CI=true).
func NeedRedis(t testing.TB) string {
	t.Helper()
	addr := RedisAddr()
	if err := PingRedis(addr, 3*time.Second); err != nil {
		unavailable(t, "testenv: no Redis at %s (REDIS_ADDR): %v", addr, err)
	}
	return addr
}

// NeedPostgres returns the URL of the shared PostgreSQL after checking that
// it accepts a connection and a ping (with pgx); if not, the test is skipped
// (failed under CI=true).
func NeedPostgres(t testing.TB) string {
	t.Helper()
	url := DatabaseURL()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err == nil {
		err = conn.Ping(ctx)
		_ = conn.Close(context.Background())
	}
	if err != nil {
		unavailable(t, "testenv: no PostgreSQL at %s (DATABASE_URL): %v", redactURL(url), err)
	}
	return url
}

// redactURL hides a password in a connection URL for messages.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return u
	}
	if user, _, hasPW := strings.Cut(userinfo, ":"); hasPW {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return u
}

// PingRedis sends one PING over a fresh connection and expects +PONG (or a
// NOAUTH error, which also proves a Redis is answering) within timeout.
func PingRedis(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimSpace(line)
	if line == "+PONG" || strings.HasPrefix(line, "-NOAUTH") {
		return nil
	}
	return fmt.Errorf("unexpected reply to PING: %q", line)
}

// redisProcessID asks the server at addr for INFO server's process_id.
func redisProcessID(addr string, timeout time.Duration) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	header, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(header, "$") {
		return 0, fmt.Errorf("unexpected reply to INFO: %q", strings.TrimSpace(header))
	}
	n, err := strconv.Atoi(strings.TrimSpace(header[1:]))
	if err != nil || n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("bad INFO reply length %q", strings.TrimSpace(header))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: FreePort: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// redisServer finds the redis-server binary, or skips (fails under CI).
func redisServer(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "testenv: redis-server not found in PATH")
	}
	return bin
}

// StartRedis starts a private redis-server (nothing persisted) on a free
// loopback port with its files in a t.TempDir(), and waits until it answers.
// kill sends SIGKILL and waits for the process to exit; it is idempotent and
// also registered with t.Cleanup. StartRedisWith gives the *Server instead,
// for more faults than a kill.
func StartRedis(t testing.TB) (addr string, kill func()) {
	t.Helper()
	addr, s := StartRedisWith(t)
	return addr, s.Kill
}

// StartRedisAt is StartRedis on a given loopback port, e.g. to bring a
// killed private server back at the same address.
func StartRedisAt(t testing.TB, port int) (addr string, kill func()) {
	t.Helper()
	s, err := startRedis(t, port)
	if err != nil {
		t.Fatalf("testenv: StartRedisAt(%d): %v", port, err)
	}
	return s.Addr(), s.Kill
}

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory (a test's package directory) that holds go.mod and
// scripts/redis-cluster.sh; failing that, the one this source file lives in.
func RepoRoot(t testing.TB) string {
	t.Helper()
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		if root, err := findRoot(dir); err == nil {
			return root
		}
	}
	t.Fatalf("testenv: repository root (go.mod + scripts/redis-cluster.sh) not found above %v", starts)
	return ""
}

func findRoot(dir string) (string, error) {
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "scripts", "redis-cluster.sh")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not found")
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
