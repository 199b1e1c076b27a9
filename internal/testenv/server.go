package testenv

import (
	"context"
	"errors"
	"fmt"
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

// A Server is one private redis-server process (a plain node, a cluster
// node or a Sentinel) on a fixed loopback port, for fault injection: it can
// be killed, frozen, thawed and restarted at the same address. Its methods
// are safe for concurrent use. The process gets a death signal (it is
// SIGKILLed when the test process dies without cleaning up) and is killed
// in the t.Cleanup of the test that started it.
type Server struct {
	t       testing.TB // for Restart's failures; nil for the shared cluster's nodes
	bin     string
	port    int
	dir     string
	logPath string
	argv    []string // everything after the binary

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil when not running
	exited chan struct{} // closed when cmd has exited
}

// Addr is the server's address, 127.0.0.1:PORT. It does not change across
// Restart.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// Dir is the server's working directory (log, pid and cluster config).
func (s *Server) Dir() string { return s.dir }

// Pid is the process id of the running server, or 0 when it is not running.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill sends SIGKILL (which also ends a stopped process) and waits for the
// process to exit. It is idempotent.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// Stop freezes the server with SIGSTOP and waits until the kernel reports it
// stopped: it then answers nothing (connections still open, data sent to it
// queues in its socket buffers). Cont thaws it.
func (s *Server) Stop() {
	s.signal("Stop", stopProcess)
}

// Cont resumes a server frozen by Stop (SIGCONT).
func (s *Server) Cont() {
	s.signal("Cont", contProcess)
}

func (s *Server) signal(what string, f func(pid int) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.cmd == nil {
		err = errors.New("not running")
	} else {
		err = f(s.cmd.Process.Pid)
	}
	if err != nil {
		s.fatalf("testenv: %s %s: %v", what, s.Addr(), err)
	}
}

// Restart kills the server if it still runs and starts it again, empty (its
// dump.rdb and append-only files are removed; a cluster node's nodes.conf is
// kept), on the same port with the same arguments, and waits until it
// answers. Failures end the test that started the server.
func (s *Server) Restart() {
	if err := s.restart(); err != nil {
		s.fatalf("testenv: Restart %s: %v", s.Addr(), err)
	}
}

func (s *Server) restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
	for _, pattern := range []string{"dump.rdb", "appendonly*", "appendonlydir", "temp-*.rdb"} {
		matches, _ := filepath.Glob(filepath.Join(s.dir, pattern))
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	return s.startLocked()
}

func (s *Server) fatalf(format string, args ...any) {
	if s.t == nil {
		panic(fmt.Sprintf(format, args...))
	}
	s.t.Helper()
	s.t.Fatalf(format, args...)
}

// startLocked starts the process and waits (15s at most) until the server
// answering on the port is this very process, never some other server that
// happened to hold the port while ours failed to bind.
func (s *Server) startLocked() error {
	if s.cmd != nil {
		return errors.New("already running")
	}
	cmd := exec.Command(s.bin, s.argv...)
	cmd.Dir = s.dir
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			s.cmd, s.exited = nil, nil
			return &startError{addr: s.Addr(), log: tail(s.logPath, 20)}
		default:
		}
		if pid, err := redisProcessID(s.Addr(), 500*time.Millisecond); err == nil && pid == cmd.Process.Pid {
			return nil
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("redis-server on %s did not answer within 15s:\n%s", s.Addr(), tail(s.logPath, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startError is a redis-server that exited while starting.
type startError struct{ addr, log string }

func (e *startError) Error() string {
	return fmt.Sprintf("redis-server on %s exited at start:\n%s", e.addr, e.log)
}

// portTaken reports whether err says the port was already in use, the one
// start failure that retrying on another port can fix.
func portTaken(err error) bool {
	var se *startError
	return errors.As(err, &se) && strings.Contains(se.log, "already in use")
}

// newServer prepares (does not start) a server on port with its files in
// dir; argv is built from the port, dir and log path.
func newServer(t testing.TB, bin string, port int, dir string, argv func(port int, dir, logPath string) []string) *Server {
	logPath := filepath.Join(dir, "redis.log")
	return &Server{t: t, bin: bin, port: port, dir: dir, logPath: logPath, argv: argv(port, dir, logPath)}
}

// plainArgs is the configuration of every private non-cluster server:
// loopback only, nothing persisted, in the foreground; extra comes last so
// it can override any of it.
func plainArgs(extra []string) func(port int, dir, logPath string) []string {
	return func(port int, dir, logPath string) []string {
		return append([]string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--daemonize", "no",
			"--dir", dir,
			"--logfile", logPath,
		}, extra...)
	}
}

// startRedis starts a private server on port, killed in t.Cleanup.
func startRedis(t testing.TB, port int, args ...string) (*Server, error) {
	t.Helper()
	s := newServer(t, redisServer(t), port, t.TempDir(), plainArgs(args))
	t.Cleanup(s.Kill)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// StartRedisWith starts a private redis-server like StartRedis, with extra
// configuration arguments appended (so they override the defaults), e.g.
//
//	StartRedisWith(t, "--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")
//
// The server is killed and its directory removed in t.Cleanup.
func StartRedisWith(t testing.TB, args ...string) (addr string, srv *Server) {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := startRedis(t, FreePort(t), args...)
		if err == nil {
			return s.Addr(), s
		}
		lastErr = err
		if !portTaken(err) {
			break // a bad argument, say: another port would not help
		}
	}
	t.Fatalf("testenv: StartRedisWith(%q): %v", args, lastErr)
	return "", nil
}

// KillClients closes the connections of one type at addr — "normal",
// "pubsub", "replica" or "master" — with CLIENT KILL TYPE (not its own
// connection) and returns how many it closed.
func KillClients(addr, typ string) (int, error) {
	v, err := do(addr, 5*time.Second, "CLIENT", "KILL", "TYPE", typ, "SKIPME", "yes")
	if err != nil {
		return 0, fmt.Errorf("testenv: CLIENT KILL TYPE %s at %s: %w", typ, addr, err)
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("testenv: CLIENT KILL at %s: unexpected reply %v", addr, v)
	}
	return int(n), nil
}

// client is a go-redis client for talking to one of our servers: short
// timeouts, no retries, one connection.
func client(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:         addr,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		MaxRetries:   -1,
		PoolSize:     1,
		Protocol:     2,
		// No CLIENT SETINFO: Sentinel answers it with an error.
		DisableIdentity: true,
	})
}

// do runs one command against addr, bounded by timeout.
func do(addr string, timeout time.Duration, args ...any) (any, error) {
	c := client(addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Do(ctx, args...).Result()
}

// info returns the fields of INFO section at addr.
func info(addr, section string) (map[string]string, error) {
	v, err := do(addr, 5*time.Second, "INFO", section)
	if err != nil {
		return nil, err
	}
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("INFO %s: unexpected reply %T", section, v)
	}
	return parseInfo(s), nil
}

// parseInfo parses "k:v" lines (INFO, CLUSTER INFO).
func parseInfo(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			m[k] = v
		}
	}
	return m
}

// waitUntil polls cond every 20ms until it returns nil or timeout passes,
// then returns cond's last error.
func waitUntil(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
