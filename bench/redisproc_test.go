package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A private redis-server for the figures only a server of our own can give:
// INFO commandstats and used_memory deltas are polluted by anything else that
// talks to a shared Redis, and CONFIG RESETSTAT / FLUSHALL are not ours to
// run there. Started the way the main module's internal/testenv starts its
// private servers (nothing persisted, loopback only), but with a lifetime of
// the whole benchmark process instead of one testing.TB: testenv.StartRedis
// ties the server to t.Cleanup, which for a benchmark runs after every b.N
// round. The server is SIGKILLed when stop is called (TestMain does, for the
// process-wide one) and, on Linux, by the kernel if this process dies first.

type redisProc struct {
	Addr string
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
	once sync.Once
}

// startRedisServer starts redis-server on a free loopback port and waits
// until the server answering on it is ours.
func startRedisServer() (*redisProc, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found in PATH (needed for a private server): %v", err)
	}
	var lastErr error
	for range 3 { // a port that was free a moment ago may be taken in between
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		p, err := startRedisAt(bin, port)
		if err == nil {
			return p, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startRedisAt(bin string, port int) (*redisProc, error) {
	dir, err := os.MkdirTemp("", "cachegen-bench-redis-")
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", dir,
		"--logfile", logPath,
	)
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	p := &redisProc{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, dir: dir, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.done:
			log := tailFile(logPath, 20)
			p.stop()
			return nil, fmt.Errorf("redis-server on %s exited at start:\n%s", p.Addr, log)
		default:
		}
		// Ours, not some other server that held the port while ours failed to bind.
		if pid, err := redisPID(p.Addr); err == nil && pid == cmd.Process.Pid {
			return p, nil
		}
		if time.Now().After(deadline) {
			log := tailFile(logPath, 20)
			p.stop()
			return nil, fmt.Errorf("redis-server on %s did not answer within 15s:\n%s", p.Addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop SIGKILLs the server, waits for it to exit and removes its directory.
// Idempotent.
func (p *redisProc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		_ = os.RemoveAll(p.dir)
	})
}

// redisPID asks the server at addr for INFO server's process_id (raw RESP, so
// it works before any client is configured).
func redisPID(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
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
	if v, ok := infoField(string(body), "process_id"); ok {
		return strconv.Atoi(v)
	}
	return 0, errors.New("INFO server has no process_id")
}

// infoField returns the value of "name:value" in an INFO reply.
func infoField(info, name string) (string, bool) {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v, true
		}
	}
	return "", false
}

func tailFile(path string, n int) string {
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
