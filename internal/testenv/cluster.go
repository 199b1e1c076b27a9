package testenv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// A cluster is a private 3-master Redis Cluster: its nodes are Servers
// started from this process (so they die with it), laid out like
// scripts/redis-cluster.sh lays them out — DIR/PORT/{nodes.conf,redis.log,
// redis.pid} — so `scripts/redis-cluster.sh stop DIR` also stops one.
type cluster struct {
	dir   string
	nodes []*Server
}

// clusters maps every node address of a running cluster to its cluster, for
// the helpers that take a cluster's addresses.
var clusters = struct {
	sync.Mutex
	byAddr map[string]*cluster
}{byAddr: map[string]*cluster{}}

func (c *cluster) addrs() []string {
	a := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		a[i] = n.Addr()
	}
	return a
}

// stop kills the nodes, forgets the cluster and removes its directory.
func (c *cluster) stop() {
	clusters.Lock()
	for _, n := range c.nodes {
		if clusters.byAddr[n.Addr()] == c {
			delete(clusters.byAddr, n.Addr())
		}
	}
	clusters.Unlock()
	for _, n := range c.nodes {
		n.Kill()
	}
	_ = os.RemoveAll(c.dir)
}

// lookupCluster finds the running cluster that addrs belong to.
func lookupCluster(t testing.TB, addrs []string) *cluster {
	t.Helper()
	clusters.Lock()
	defer clusters.Unlock()
	for _, a := range addrs {
		if c := clusters.byAddr[a]; c != nil {
			return c
		}
	}
	t.Fatalf("testenv: %v is not a running cluster of StartCluster or SharedCluster", addrs)
	return nil
}

// StartCluster starts a private 3-master Redis Cluster on loopback, waits
// until every node reports cluster_state:ok, and stops it (and removes its
// files) in t.Cleanup. It returns the three node addresses. The nodes are
// children of the test process with a death signal, so a test binary that
// panics, times out or is killed takes them with it. Starting one takes
// about two seconds; tests that can share a cluster use SharedCluster.
func StartCluster(t testing.TB) []string {
	t.Helper()
	clusterPrereqs(t)
	base := t.TempDir()
	c, err := startCluster(t, base, func(c *cluster) { t.Cleanup(c.stop) })
	if err != nil {
		t.Fatalf("testenv: StartCluster: %v", err)
	}
	return c.addrs()
}

var shared struct {
	mu    sync.Mutex
	base  string
	c     []*cluster
	addrs []string
	err   error
}

// sharedPrefix names the directories of shared clusters in os.TempDir();
// each holds an owner.pid naming the test process that started it.
const sharedPrefix = "cachegen-testenv-cluster-"

// SharedCluster returns the addresses of one private 3-master Redis Cluster
// shared by every test of this test binary, started on first use. Tests that
// share it must keep their keys apart (e.g. a random namespace). Call Main
// from the package's TestMain so the cluster is stopped and its files
// removed when the tests end; without it the nodes still die with the test
// binary (death signal), and the next SharedCluster of any test binary
// removes the directories whose owner process is gone.
func SharedCluster(t testing.TB) []string {
	t.Helper()
	clusterPrereqs(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.addrs == nil && shared.err == nil {
		sweepStaleShared()
		shared.base, shared.err = os.MkdirTemp("", sharedPrefix)
		if shared.err == nil {
			shared.err = os.WriteFile(filepath.Join(shared.base, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o666)
		}
		if shared.err == nil {
			var c *cluster
			c, shared.err = startCluster(nil, shared.base, func(c *cluster) { shared.c = append(shared.c, c) })
			if shared.err == nil {
				shared.addrs = c.addrs()
			}
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
	for _, c := range shared.c {
		c.stop()
	}
	if shared.base != "" {
		_ = os.RemoveAll(shared.base)
	}
	shared.c, shared.addrs, shared.base, shared.err = nil, nil, "", nil
}

// sweepStaleShared removes the shared-cluster directories left by test
// processes that died without running Main's cleanup, killing any of their
// redis-servers still alive (none should be: they had a death signal). A
// directory without owner.pid, or whose owner still runs, is left alone.
func sweepStaleShared() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || owner == os.Getpid() || processAlive(owner) {
			continue
		}
		pidfiles, _ := filepath.Glob(filepath.Join(dir, "*", "*", "redis.pid"))
		for _, pf := range pidfiles {
			if b, err := os.ReadFile(pf); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && isRedisServer(pid) {
					if p, err := os.FindProcess(pid); err == nil {
						_ = p.Kill()
					}
				}
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// isRedisServer reports whether pid is a live redis-server (so a stale pid
// file never makes us kill an unrelated process).
func isRedisServer(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && processAlive(pid) && strings.Contains(string(b), "redis-server")
}

// clusterPrereqs checks for redis-server and redis-cli, skipping (or
// failing under CI) without them.
func clusterPrereqs(t testing.TB) {
	t.Helper()
	redisServer(t)
	if _, err := exec.LookPath("redis-cli"); err != nil {
		unavailable(t, "testenv: redis-cli not found in PATH")
	}
}

// clusterWait bounds each wait of a cluster start or repair:
// $CLUSTER_WAIT_SECONDS (as for scripts/redis-cluster.sh), default 30s.
func clusterWait() time.Duration {
	if n, err := strconv.Atoi(os.Getenv("CLUSTER_WAIT_SECONDS")); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 30 * time.Second
}

// clusterNodeArgs is the configuration of scripts/redis-cluster.sh, with
// the node in the foreground instead of daemonized.
func clusterNodeArgs(port int, dir, logPath string) []string {
	return []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--cluster-node-timeout", "5000",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--pidfile", filepath.Join(dir, "redis.pid"),
		"--logfile", logPath,
	}
}

// startCluster starts three cluster nodes in a fresh directory under base
// (onStart is told each cluster before its nodes start, so the caller can
// stop it), creates the cluster with redis-cli --cluster create and waits
// until it is up, retrying on new ports when one was taken in the meantime.
// t owns the nodes (nil for the shared cluster).
func startCluster(t testing.TB, base string, onStart func(*cluster)) (*cluster, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := clusterPorts()
		if err != nil {
			return nil, err
		}
		c := &cluster{dir: filepath.Join(base, fmt.Sprintf("cluster%d", attempt))}
		onStart(c)
		lastErr = c.start(t, bin, ports)
		if lastErr == nil {
			return c, nil
		}
		c.stop()
		if !portTaken(lastErr) {
			break // not a port race: retrying would not help
		}
	}
	return nil, lastErr
}

func (c *cluster) start(t testing.TB, bin string, ports []int) error {
	for _, p := range ports {
		dir := filepath.Join(c.dir, strconv.Itoa(p))
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return err
		}
		n := newServer(t, bin, p, dir, clusterNodeArgs)
		c.nodes = append(c.nodes, n)
		n.mu.Lock()
		err := n.startLocked()
		n.mu.Unlock()
		if err != nil {
			return err
		}
	}
	clusters.Lock()
	for _, n := range c.nodes {
		clusters.byAddr[n.Addr()] = c
	}
	clusters.Unlock()

	addrs := c.addrs()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	_ = os.WriteFile(filepath.Join(c.dir, "create.log"), out, 0o666)
	if err != nil {
		return fmt.Errorf("redis-cli --cluster create %v: %v\n%s", addrs, err, out)
	}
	if err := waitClusterOK(addrs, clusterWait()); err != nil {
		return fmt.Errorf("%v\n%s", err, c.logs())
	}
	return nil
}

// logs is the tail of every node's log, for failure messages.
func (c *cluster) logs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "----- %s (last 20 lines)\n%s\n", n.logPath, tail(n.logPath, 20))
	}
	return b.String()
}

// waitClusterOK waits until every node reports cluster_state:ok, knows all
// the nodes and sees none of them as failing.
func waitClusterOK(addrs []string, timeout time.Duration) error {
	return waitUntil(timeout, func() error {
		for _, a := range addrs {
			v, err := do(a, 2*time.Second, "CLUSTER", "INFO")
			if err != nil {
				return fmt.Errorf("%s: CLUSTER INFO: %v", a, err)
			}
			ci := parseInfo(fmt.Sprint(v))
			if ci["cluster_state"] != "ok" || ci["cluster_known_nodes"] != strconv.Itoa(len(addrs)) {
				return fmt.Errorf("%s: cluster_state:%s cluster_known_nodes:%s", a, ci["cluster_state"], ci["cluster_known_nodes"])
			}
			nodes, err := clusterNodes(a)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				if n.has("fail") || n.has("fail?") || n.has("handshake") || n.has("noaddr") || n.link != "connected" {
					return fmt.Errorf("%s sees %s as %s (%s)", a, n.addr, strings.Join(n.flags, ","), n.link)
				}
			}
		}
		return nil
	})
}

// A clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr string
	flags    []string
	link     string
	slots    []int // owned slots (not the [slot->-id] migration markers)
}

func (n clusterNode) has(flag string) bool {
	for _, f := range n.flags {
		if f == flag {
			return true
		}
	}
	return false
}

// clusterNodes asks addr for CLUSTER NODES.
func clusterNodes(addr string) ([]clusterNode, error) {
	v, err := do(addr, 5*time.Second, "CLUSTER", "NODES")
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER NODES: %v", addr, err)
	}
	return parseClusterNodes(fmt.Sprint(v))
}

func parseClusterNodes(s string) ([]clusterNode, error) {
	var nodes []clusterNode
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("bad CLUSTER NODES line %q", line)
		}
		addr, _, _ := strings.Cut(f[1], "@") // ip:port@cport[,hostname]
		n := clusterNode{id: f[0], addr: addr, flags: strings.Split(f[2], ","), link: f[7]}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue
			}
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("bad slot range %q in %q", r, line)
			}
			for s := a; s <= b; s++ {
				n.slots = append(n.slots, s)
			}
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// RestartNodeEmpty SIGKILLs node i of a cluster from StartCluster or
// SharedCluster (clusterAddrs is what those returned) and starts it again
// on the same port with its nodes.conf kept, so it rejoins with the same
// node id and slots — but with no data: every key it held is gone, as after
// a crash without persistence. It returns once every node reports
// cluster_state:ok and sees all nodes connected (a restarted master waits
// out a rejoin delay of up to the node timeout, 5s, before that).
func RestartNodeEmpty(t testing.TB, clusterAddrs []string, i int) {
	t.Helper()
	c := lookupCluster(t, clusterAddrs)
	if i < 0 || i >= len(c.nodes) {
		t.Fatalf("testenv: RestartNodeEmpty: node %d of a %d-node cluster", i, len(c.nodes))
	}
	n := c.nodes[i]
	before, err := do(n.Addr(), 5*time.Second, "CLUSTER", "MYID")
	if err != nil {
		t.Fatalf("testenv: RestartNodeEmpty: CLUSTER MYID on %s: %v", n.Addr(), err)
	}
	if err := n.restart(); err != nil {
		t.Fatalf("testenv: RestartNodeEmpty: restarting %s: %v", n.Addr(), err)
	}
	after, err := do(n.Addr(), 5*time.Second, "CLUSTER", "MYID")
	if err != nil || after != before {
		t.Fatalf("testenv: RestartNodeEmpty: %s came back as node %v (%v), want %v", n.Addr(), after, err, before)
	}
	if err := waitClusterOK(c.addrs(), clusterWait()); err != nil {
		t.Fatalf("testenv: RestartNodeEmpty(%d): %v\n%s", i, err, c.logs())
	}
}

// Reshard moves nslots hash slots — the lowest ones from owns — from master
// from to master to of the same cluster, keys included, with MigrateSlots,
// and returns the slots it moved. Clients may keep running meanwhile.
func Reshard(t testing.TB, from, to string, nslots int) []int {
	t.Helper()
	nodes, err := clusterNodes(from)
	if err != nil {
		t.Fatalf("testenv: Reshard: %v", err)
	}
	var slots []int
	for _, n := range nodes {
		if n.has("myself") {
			slots = n.slots
		}
	}
	if len(slots) < nslots {
		t.Fatalf("testenv: Reshard: %s owns %d slots, cannot move %d", from, len(slots), nslots)
	}
	slots = slots[:nslots]
	MigrateSlots(t, from, to, slots...)
	return slots
}

// MigrateSlots moves the given hash slots, keys included, from master from
// to master to, the way redis-cli --cluster reshard does, slot by slot:
// CLUSTER SETSLOT IMPORTING on to, MIGRATING on from, MIGRATE of every key
// in the slot (100 at a time), then SETSLOT NODE on to, on from and on every
// other master. Clients that follow ASK and MOVED redirections (go-redis's
// ClusterClient) keep working throughout.
func MigrateSlots(t testing.TB, from, to string, slots ...int) {
	t.Helper()
	if err := migrateSlots(from, to, slots); err != nil {
		t.Fatalf("testenv: MigrateSlots %s -> %s: %v", from, to, err)
	}
}

func migrateSlots(from, to string, slots []int) error {
	nodes, err := clusterNodes(from)
	if err != nil {
		return err
	}
	var fromID, toID string
	var masters []string
	for _, n := range nodes {
		switch {
		case n.has("myself"):
			fromID = n.id
		case n.addr == to:
			toID = n.id
		}
		if n.has("master") && n.addr != from && n.addr != to {
			masters = append(masters, n.addr)
		}
	}
	if fromID == "" || toID == "" {
		return fmt.Errorf("%s does not know %s as a cluster node", from, to)
	}
	toHost, toPort, err := net.SplitHostPort(to)
	if err != nil {
		return err
	}
	conns := map[string]*redis.Client{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	run := func(addr string, args ...any) (any, error) {
		c := conns[addr]
		if c == nil {
			c = client(addr)
			conns[addr] = c
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v, err := c.Do(ctx, args...).Result()
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", addr, args, err)
		}
		return v, nil
	}
	for _, s := range slots {
		if _, err := run(to, "CLUSTER", "SETSLOT", s, "IMPORTING", fromID); err != nil {
			return err
		}
		if _, err := run(from, "CLUSTER", "SETSLOT", s, "MIGRATING", toID); err != nil {
			return err
		}
		for {
			v, err := run(from, "CLUSTER", "GETKEYSINSLOT", s, 100)
			if err != nil {
				return err
			}
			keys, _ := v.([]any)
			if len(keys) == 0 {
				break
			}
			args := []any{"MIGRATE", toHost, toPort, "", 0, 5000, "KEYS"}
			if _, err := run(from, append(args, keys...)...); err != nil {
				return err
			}
		}
		for _, a := range append([]string{to, from}, masters...) {
			if _, err := run(a, "CLUSTER", "SETSLOT", s, "NODE", toID); err != nil {
				return err
			}
		}
	}
	return nil
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
