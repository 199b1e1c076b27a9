// Package testenv is what every server-backed test in this project uses to
// reach real servers: the shared local Redis and PostgreSQL (started by
// `make services`), private throwaway redis-server processes, and private
// 3-master Redis Clusters. Nothing here mocks a server, and every address it
// hands out is on loopback.
//
// A private server started with StartRedisWith is a *Server, for fault
// injection: it can be killed, frozen (SIGSTOP) and thawed, and restarted
// empty on the same port. It is a child of the test process with a death
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
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
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

// StartCluster starts a private 3-master Redis Cluster on loopback with
// scripts/redis-cluster.sh, waits until every node reports cluster_state:ok,
// and stops it (and removes its files) in t.Cleanup. It returns the three
// node addresses. Starting one takes about two seconds; tests that can share
// a cluster use SharedCluster.
func StartCluster(t testing.TB) []string {
	t.Helper()
	script := clusterPrereqs(t)
	base := t.TempDir()
	addrs, err := startCluster(script, base, func(dir string) {
		t.Cleanup(func() { stopCluster(t, script, dir) })
	})
	if err != nil {
		t.Fatalf("testenv: StartCluster: %v", err)
	}
	return addrs
}

var shared struct {
	mu     sync.Mutex
	script string
	base   string
	dirs   []string
	addrs  []string
	err    error
}

// SharedCluster returns the addresses of one private 3-master Redis Cluster
// shared by every test of this test binary, started on first use. Tests that
// share it must keep their keys apart (e.g. a random namespace). Call Main
// from the package's TestMain so the cluster is stopped when the tests end;
// without it the nodes outlive the test binary.
func SharedCluster(t testing.TB) []string {
	t.Helper()
	script := clusterPrereqs(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.addrs == nil && shared.err == nil {
		shared.script = script
		shared.base, shared.err = os.MkdirTemp("", "cachegen-testenv-cluster-")
		if shared.err == nil {
			shared.addrs, shared.err = startCluster(script, shared.base, func(dir string) {
				shared.dirs = append(shared.dirs, dir)
			})
		}
	}
	if shared.err != nil {
		t.Fatalf("testenv: SharedCluster: %v", shared.err)
	}
	return append([]string(nil), shared.addrs...)
}

// Main runs the tests and then stops what SharedCluster started. Use it as
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	stopShared()
	os.Exit(code)
}

func stopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, dir := range shared.dirs {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = exec.CommandContext(ctx, "bash", shared.script, "stop", dir).Run()
		cancel()
	}
	if shared.base != "" {
		_ = os.RemoveAll(shared.base)
	}
	shared.dirs, shared.addrs, shared.base, shared.err = nil, nil, "", nil
}

// clusterPrereqs checks for redis-server and redis-cli (skipping, or failing
// under CI, without them) and returns the path of scripts/redis-cluster.sh.
func clusterPrereqs(t testing.TB) string {
	t.Helper()
	redisServer(t)
	if _, err := exec.LookPath("redis-cli"); err != nil {
		unavailable(t, "testenv: redis-cli not found in PATH")
	}
	return filepath.Join(RepoRoot(t), "scripts", "redis-cluster.sh")
}

// startCluster runs `redis-cluster.sh start` in a fresh directory under base
// (onDir is told each directory before its nodes start, so the caller can
// stop them), retrying on new ports when one was taken in the meantime.
func startCluster(script, base string, onDir func(dir string)) ([]string, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := clusterPorts()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(base, fmt.Sprintf("cluster%d", attempt))
		onDir(dir)
		args := []string{script, "start", dir}
		addrs := make([]string, len(ports))
		for i, p := range ports {
			args = append(args, strconv.Itoa(p))
			addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, "bash", args...).CombinedOutput()
		cancel()
		if err == nil {
			return addrs, nil
		}
		lastErr = fmt.Errorf("scripts/redis-cluster.sh start failed: %v\n%s", err, out)
		if !strings.Contains(string(out), "already in use") {
			break // not a port race: retrying would not help
		}
	}
	return nil, lastErr
}

func stopCluster(t testing.TB, script, dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "bash", script, "stop", dir).CombinedOutput(); err != nil {
		t.Logf("testenv: stopping cluster in %s: %v\n%s", dir, err, out)
	}
}

// clusterPorts picks three distinct ports P in [20000, 30000) such that P and
// its cluster bus port P+10000 are free on 127.0.0.1. The range lies below
// Linux's ephemeral range, so outgoing connections do not take them.
func clusterPorts() ([]int, error) {
	var ports []int
	seen := map[int]bool{}
	for tries := 0; len(ports) < 3; tries++ {
		if tries > 1000 {
			return nil, errors.New("no free port pairs for a cluster in 20000-39999")
		}
		p := 20000 + rand.IntN(10000)
		if seen[p] {
			continue
		}
		seen[p] = true
		if portFree(p) && portFree(p+10000) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
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
