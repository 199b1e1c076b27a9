package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterKeys sets n keys through c and returns, per node address, the
// keys that node holds.
func clusterKeys(t *testing.T, c *redis.ClusterClient, n int) map[string][]string {
	t.Helper()
	ctx := context.Background()
	byNode := map[string][]string{}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("key-%d", i)
		if err := c.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		m, err := c.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		byNode[m.Options().Addr] = append(byNode[m.Options().Addr], k)
	}
	return byNode
}

// slotsOf is the slots of node (an address) as seen from viewer.
func slotsOf(t *testing.T, viewer, node string) []int {
	t.Helper()
	nodes, err := clusterNodes(viewer)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.addr == node {
			return n.slots
		}
	}
	t.Fatalf("%s does not know %s", viewer, node)
	return nil
}

func TestRestartNodeEmpty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrs := StartCluster(t)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	byNode := clusterKeys(t, cc, 300)
	victim := addrs[1]
	if len(byNode[victim]) == 0 {
		t.Fatalf("no key on %s: %v", victim, byNode)
	}
	id, _ := do(victim, time.Second, "CLUSTER", "MYID")
	slots := slotsOf(t, addrs[0], victim)

	start := time.Now()
	RestartNodeEmpty(t, addrs, 1)
	t.Logf("RestartNodeEmpty took %v", time.Since(start).Round(time.Millisecond))

	if got, _ := do(victim, time.Second, "CLUSTER", "MYID"); got != id {
		t.Fatalf("node id %v after the restart, want %v", got, id)
	}
	for _, viewer := range addrs {
		if got := slotsOf(t, viewer, victim); !slices.Equal(got, slots) {
			t.Fatalf("%s sees %d slots on the restarted node, want the same %d as before", viewer, len(got), len(slots))
		}
	}
	if n, err := rc(t, victim).DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("restarted node: DBSIZE = %d, %v; want 0", n, err)
	}
	for node, keys := range byNode {
		for _, k := range keys {
			err := cc.Get(ctx, k).Err()
			if node == victim && !errors.Is(err, redis.Nil) {
				t.Fatalf("GET %s (on the restarted node) = %v, want nil", k, err)
			}
			if node != victim && err != nil {
				t.Fatalf("GET %s (on %s) = %v", k, node, err)
			}
		}
	}
	if err := cc.Set(ctx, byNode[victim][0], "again", 0).Err(); err != nil {
		t.Fatalf("SET on the restarted node: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("RestartNodeEmpty of an unknown cluster did not fail")
			}
		}()
		RestartNodeEmpty(panicker{t}, []string{"127.0.0.1:1"}, 0)
	}()
}

// panicker turns Fatalf into a panic, to test a helper's failure path.
type panicker struct{ testing.TB }

func (p panicker) Helper() {}
func (p panicker) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func TestReshardUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrs := StartCluster(t)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRedirects: 16})
	defer cc.Close()
	const nkeys, nslots = 2000, 300
	clusterKeys(t, cc, nkeys)

	// Writers keep going while the slots move: each owns its keys and
	// checks every read against its last write.
	var (
		stop    atomic.Bool
		ops     atomic.Int64
		wg      sync.WaitGroup
		errMu   sync.Mutex
		errs    []error
		workers = 2
	)
	last := make([]map[string]int, workers)
	for w := 0; w < workers; w++ {
		last[w] = map[string]int{}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 1; !stop.Load(); n++ {
				for i := w; i < nkeys && !stop.Load(); i += workers {
					k := fmt.Sprintf("key-%d", i)
					err := cc.Set(ctx, k, n, 0).Err()
					if err == nil {
						var got int
						got, err = cc.Get(ctx, k).Int()
						if err == nil && got != n {
							err = fmt.Errorf("GET %s = %d, want %d", k, got, n)
						}
					}
					if err != nil {
						errMu.Lock()
						errs = append(errs, err)
						errMu.Unlock()
						return
					}
					last[w][k] = n
					ops.Add(1)
				}
			}
		}(w)
	}

	time.Sleep(100 * time.Millisecond)
	before := ops.Load()
	start := time.Now()
	moved := Reshard(t, addrs[0], addrs[1], nslots)
	t.Logf("Reshard of %d slots took %v, %d client ops meanwhile", len(moved), time.Since(start).Round(time.Millisecond), ops.Load()-before)
	time.Sleep(100 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("client error during the reshard: %v", err)
	}

	for _, viewer := range addrs {
		to := slotsOf(t, viewer, addrs[1])
		for _, s := range moved {
			if _, ok := slices.BinarySearch(to, s); !ok {
				t.Fatalf("%s does not see slot %d on %s", viewer, s, addrs[1])
			}
		}
		if from := slotsOf(t, viewer, addrs[0]); len(from) != 5461-nslots {
			t.Fatalf("%s sees %d slots on %s, want %d", viewer, len(from), addrs[0], 5461-nslots)
		}
	}
	var movedKeys int64
	for _, s := range moved {
		n, err := rc(t, addrs[1]).ClusterCountKeysInSlot(ctx, int(s)).Result()
		if err != nil {
			t.Fatal(err)
		}
		movedKeys += n
	}
	if movedKeys == 0 {
		t.Fatal("no key lives in the moved slots: the test moved nothing")
	}
	for w := range last {
		for k, n := range last[w] {
			if got, err := cc.Get(ctx, k).Int(); err != nil || got != n {
				t.Fatalf("after the reshard: GET %s = %d, %v; want %d", k, got, err, n)
			}
		}
	}
	t.Logf("%d keys moved with their slots", movedKeys)
}

// TestHelperProcess is not a test: TestChildrenDieWithTestProcess runs the
// test binary again with TESTENV_HELPER set, and this function then starts
// servers, prints their pids and dies without cleaning up.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("TESTENV_HELPER")
	if mode == "" {
		return
	}
	var addrs []string
	switch mode {
	case "cluster-sigkill":
		addrs = StartCluster(t)
	case "single-timeout":
		a, _ := StartRedisWith(t)
		addrs = []string{a}
	default:
		t.Fatalf("unknown TESTENV_HELPER %q", mode)
	}
	var pids []string
	for _, a := range addrs {
		pid, err := redisProcessID(a, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, strconv.Itoa(pid))
	}
	fmt.Printf("ADDRS %s\nPIDS %s\n", strings.Join(addrs, " "), strings.Join(pids, " "))
	os.Stdout.Sync()
	if mode == "cluster-sigkill" {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	time.Sleep(time.Hour) // until -test.timeout ends the process
}

// TestChildrenDieWithTestProcess: a test process that dies without running
// its cleanups (SIGKILL, or a -timeout panic) leaves no redis-server behind.
func TestChildrenDieWithTestProcess(t *testing.T) {
	for mode, timeout := range map[string]string{"cluster-sigkill": "60s", "single-timeout": "5s"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			clusterPrereqs(t)
			tmp := t.TempDir() // the child's t.TempDir()s, left behind by its death
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout="+timeout)
			cmd.Env = append(os.Environ(), "TESTENV_HELPER="+mode, "TMPDIR="+tmp)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			var addrs, pids []string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				out.WriteString(sc.Text() + "\n")
				if rest, ok := strings.CutPrefix(sc.Text(), "ADDRS "); ok {
					addrs = strings.Fields(rest)
				}
				if rest, ok := strings.CutPrefix(sc.Text(), "PIDS "); ok {
					pids = strings.Fields(rest)
				}
			}
			err = cmd.Wait()
			if len(pids) == 0 {
				t.Fatalf("helper printed no pids (%v):\n%s%s", err, out.String(), stderr.String())
			}
			if err == nil {
				t.Fatalf("helper exited cleanly; want a death")
			}
			t.Logf("helper died (%v) leaving pids %v", err, pids)
			for i, p := range pids {
				pid, _ := strconv.Atoi(p)
				deadline := time.Now().Add(5 * time.Second)
				for processAlive(pid) {
					if time.Now().After(deadline) {
						t.Fatalf("redis-server %d (%s) outlived its test process", pid, addrs[i])
					}
					time.Sleep(10 * time.Millisecond)
				}
				if PingRedis(addrs[i], 300*time.Millisecond) == nil {
					t.Fatalf("%s still answers after its test process died", addrs[i])
				}
			}
		})
	}
}

func TestSweepStaleShared(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	// A process that has exited: its pid is (very likely) free.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name, owner string) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "cluster0", "20000"), 0o777); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(owner), 0o666); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	stale := mk(sharedPrefix+"dead", strconv.Itoa(dead.Process.Pid))
	ours := mk(sharedPrefix+"ours", strconv.Itoa(os.Getpid()))
	parent := mk(sharedPrefix+"live", strconv.Itoa(os.Getppid()))
	legacy := mk(sharedPrefix+"legacy", "") // the old script's layout: no owner
	other := mk("something-else", strconv.Itoa(dead.Process.Pid))
	sweepStaleShared()
	if fileExists(stale) {
		t.Errorf("%s (owner dead) not swept", stale)
	}
	for _, d := range []string{ours, parent, legacy, other} {
		if !fileExists(d) {
			t.Errorf("%s swept, want it kept", d)
		}
	}
}
