package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// replWait bounds the waits of the replication helpers.
const replWait = 15 * time.Second

// Replicated is a private master with one replica (REPLICAOF), both
// StartRedisWith servers: killed, and their files removed, in t.Cleanup.
type Replicated struct {
	Master, Replica *Server
}

// StartReplicated starts a master and a replica of it on free loopback
// ports (args, as for StartRedisWith, go to both) and returns once the
// replica is in sync. The master syncs without delay
// (repl-diskless-sync-delay 0). A restarted Replica comes back as an empty
// master: REPLICAOF is sent at run time, not part of its arguments.
func StartReplicated(t testing.TB, args ...string) *Replicated {
	t.Helper()
	_, m := StartRedisWith(t, append([]string{"--repl-diskless-sync-delay", "0"}, args...)...)
	_, r := StartRedisWith(t, args...)
	host, port, _ := net.SplitHostPort(m.Addr())
	if _, err := do(r.Addr(), 5*time.Second, "REPLICAOF", host, port); err != nil {
		t.Fatalf("testenv: StartReplicated: REPLICAOF on %s: %v", r.Addr(), err)
	}
	WaitSynced(t, m.Addr(), r.Addr())
	return &Replicated{Master: m, Replica: r}
}

// WaitSynced waits (15s at most) until the server at replica is a replica
// of master with its link up, no sync in progress, and the replication
// offset of the master: every write the master took before the call is on
// the replica.
func WaitSynced(t testing.TB, master, replica string) {
	t.Helper()
	if err := waitSynced(master, replica); err != nil {
		t.Fatalf("testenv: WaitSynced(%s, %s): %v", master, replica, err)
	}
}

func waitSynced(master, replica string) error {
	mhost, mport, _ := net.SplitHostPort(master)
	return waitUntil(replWait, func() error {
		mi, err := info(master, "replication")
		if err != nil {
			return fmt.Errorf("master %s: %v", master, err)
		}
		ri, err := info(replica, "replication")
		if err != nil {
			return fmt.Errorf("replica %s: %v", replica, err)
		}
		switch {
		case ri["role"] != "slave" || ri["master_host"] != mhost || ri["master_port"] != mport:
			return fmt.Errorf("%s is role:%s of %s:%s, not a replica of %s", replica, ri["role"], ri["master_host"], ri["master_port"], master)
		case ri["master_link_status"] != "up" || ri["master_sync_in_progress"] != "0":
			return fmt.Errorf("replica %s: master_link_status:%s master_sync_in_progress:%s", replica, ri["master_link_status"], ri["master_sync_in_progress"])
		case mi["master_repl_offset"] != ri["slave_repl_offset"]:
			return fmt.Errorf("master offset %s, replica offset %s", mi["master_repl_offset"], ri["slave_repl_offset"])
		}
		return nil
	})
}

// Promote turns the replica at addr into a master (REPLICAOF NO ONE) and
// waits until it reports role:master.
func Promote(t testing.TB, addr string) {
	t.Helper()
	if _, err := do(addr, 5*time.Second, "REPLICAOF", "NO", "ONE"); err != nil {
		t.Fatalf("testenv: Promote %s: %v", addr, err)
	}
	err := waitUntil(replWait, func() error {
		ri, err := info(addr, "replication")
		if err != nil {
			return err
		}
		if ri["role"] != "master" {
			return fmt.Errorf("role:%s", ri["role"])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: Promote %s: %v", addr, err)
	}
}

// FailoverLosingWrites makes the replica miss the writes that write makes,
// then fails over to it, the way an asynchronous replica loses acknowledged
// writes in a real failover:
//
//  1. wait until the replica is in sync (everything before is kept);
//  2. freeze the replica (SIGSTOP) and close the master's replication link
//     to it (CLIENT KILL TYPE replica), so nothing written afterwards can
//     reach it, not even through its socket buffer;
//  3. write(master address): the writes are acknowledged by the master only;
//  4. SIGKILL the master, thaw the replica (SIGCONT) and Promote it.
//
// Afterwards r.Replica is a master that holds everything but those writes
// and r.Master is dead (its Restart brings back an empty server).
func (r *Replicated) FailoverLosingWrites(t testing.TB, write func(master string)) {
	t.Helper()
	WaitSynced(t, r.Master.Addr(), r.Replica.Addr())
	r.Replica.Stop()
	if _, err := KillClients(r.Master.Addr(), "replica"); err != nil {
		r.Replica.Cont()
		t.Fatalf("testenv: FailoverLosingWrites: %v", err)
	}
	write(r.Master.Addr())
	r.Master.Kill()
	r.Replica.Cont()
	Promote(t, r.Replica.Addr())
}

// A Sentinel is a private redis-server --sentinel watching a Replicated
// pair under MasterName, with quorum 1, down-after-milliseconds 500 and
// failover-timeout 2000: it fails over about one to three seconds after the
// master dies. Use its Addr as the SentinelAddrs of redis.NewFailoverClient.
type Sentinel struct {
	*Server
	MasterName string
}

// StartSentinel starts a Sentinel monitoring r's master and returns once it
// has discovered r's replica as a healthy failover candidate. It is killed,
// and its files removed, in t.Cleanup.
func (r *Replicated) StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin := redisServer(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := startSentinel(t, bin, FreePort(t), r.Master.Addr())
		if err == nil {
			if err = s.waitReplica(r.Replica.Addr()); err == nil {
				return s
			}
			t.Fatalf("testenv: StartSentinel: %v\n%s", err, tail(s.logPath, 20))
		}
		lastErr = err
		if !portTaken(err) {
			break
		}
	}
	t.Fatalf("testenv: StartSentinel: %v", lastErr)
	return nil
}

const sentinelMaster = "mymaster"

func startSentinel(t testing.TB, bin string, port int, master string) (*Sentinel, error) {
	dir := t.TempDir()
	mhost, mport, _ := net.SplitHostPort(master)
	conf := filepath.Join(dir, "sentinel.conf")
	text := strings.Join([]string{
		"port " + strconv.Itoa(port),
		"bind 127.0.0.1",
		"daemonize no",
		"dir " + dir,
		"logfile " + filepath.Join(dir, "redis.log"),
		fmt.Sprintf("sentinel monitor %s %s %s 1", sentinelMaster, mhost, mport),
		"sentinel down-after-milliseconds " + sentinelMaster + " 500",
		"sentinel failover-timeout " + sentinelMaster + " 2000",
		"sentinel parallel-syncs " + sentinelMaster + " 1",
		"",
	}, "\n")
	if err := os.WriteFile(conf, []byte(text), 0o666); err != nil {
		return nil, err
	}
	srv := newServer(t, bin, port, dir, func(int, string, string) []string { return []string{conf, "--sentinel"} })
	t.Cleanup(srv.Kill)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if err := srv.startLocked(); err != nil {
		return nil, err
	}
	return &Sentinel{Server: srv, MasterName: sentinelMaster}, nil
}

// waitReplica waits until the Sentinel lists replica as a connected
// replica with its master link up.
func (s *Sentinel) waitReplica(replica string) error {
	return waitUntil(replWait, func() error {
		v, err := do(s.Addr(), 5*time.Second, "SENTINEL", "REPLICAS", s.MasterName)
		if err != nil {
			return err
		}
		list, _ := v.([]any)
		for _, e := range list {
			m := pairs(e)
			if m["name"] != replica {
				continue
			}
			if m["flags"] != "slave" || m["master-link-status"] != "ok" {
				return fmt.Errorf("sentinel sees replica %s as flags=%s master-link-status=%s", replica, m["flags"], m["master-link-status"])
			}
			return nil
		}
		return fmt.Errorf("sentinel does not list %s among %d replicas", replica, len(list))
	})
}

// pairs turns a RESP2 flat key/value array (or a RESP3 map) into a map.
func pairs(v any) map[string]string {
	m := map[string]string{}
	switch x := v.(type) {
	case []any:
		for i := 0; i+1 < len(x); i += 2 {
			m[fmt.Sprint(x[i])] = fmt.Sprint(x[i+1])
		}
	case map[any]any:
		for k, v := range x {
			m[fmt.Sprint(k)] = fmt.Sprint(v)
		}
	}
	return m
}

// MasterAddr is the master's address as the Sentinel currently reports it
// (SENTINEL GET-MASTER-ADDR-BY-NAME).
func (s *Sentinel) MasterAddr() (string, error) {
	v, err := do(s.Addr(), 5*time.Second, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName)
	if err != nil {
		return "", err
	}
	hp, _ := v.([]any)
	if len(hp) != 2 {
		return "", fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME: unexpected reply %v", v)
	}
	return net.JoinHostPort(fmt.Sprint(hp[0]), fmt.Sprint(hp[1])), nil
}

// WaitMaster waits (15s at most) until the Sentinel reports addr as the
// master, e.g. after killing the old master, and addr itself reports
// role:master.
func (s *Sentinel) WaitMaster(t testing.TB, addr string) {
	t.Helper()
	err := waitUntil(replWait, func() error {
		got, err := s.MasterAddr()
		if err != nil {
			return err
		}
		if got != addr {
			return fmt.Errorf("sentinel reports master %s", got)
		}
		ri, err := info(addr, "replication")
		if err != nil {
			return err
		}
		if ri["role"] != "master" {
			return fmt.Errorf("%s is role:%s", addr, ri["role"])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: Sentinel.WaitMaster(%s): %v\n%s", addr, err, tail(s.logPath, 20))
	}
}
