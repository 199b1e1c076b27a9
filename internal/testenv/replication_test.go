package testenv

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestReplicatedLosesWritesWhileReplicaStopped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := StartReplicated(t)
	m, rep := rc(t, r.Master.Addr()), rc(t, r.Replica.Addr())
	if err := m.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	WaitSynced(t, r.Master.Addr(), r.Replica.Addr())
	if got, _ := rep.Get(ctx, "a").Result(); got != "1" {
		t.Fatalf("replica: GET a = %q after WaitSynced", got)
	}

	// Frozen only, the replica catches up after Cont.
	r.Replica.Stop()
	if err := m.Set(ctx, "b", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Replica.Cont()
	WaitSynced(t, r.Master.Addr(), r.Replica.Addr())
	if got, _ := rep.Get(ctx, "b").Result(); got != "1" {
		t.Fatalf("replica: GET b = %q after Stop, write, Cont, WaitSynced", got)
	}

	// Frozen, cut off, the master dies: the write is lost.
	r.FailoverLosingWrites(t, func(master string) {
		c := rc(t, master)
		if err := c.Set(ctx, "a", "2", 0).Err(); err != nil {
			t.Error(err)
		}
		if err := c.Set(ctx, "lost", "1", 0).Err(); err != nil {
			t.Error(err)
		}
	})
	if PingRedis(r.Master.Addr(), 300*time.Millisecond) == nil {
		t.Fatal("old master still answers")
	}
	ri, err := info(r.Replica.Addr(), "replication")
	if err != nil || ri["role"] != "master" {
		t.Fatalf("promoted replica: role:%s, %v", ri["role"], err)
	}
	if got, err := rep.Get(ctx, "a").Result(); err != nil || got != "1" {
		t.Errorf("promoted replica: GET a = %q, %v; want the old value 1", got, err)
	}
	if err := rep.Get(ctx, "lost").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("promoted replica: GET lost = %v; want nil (the write was made while it was stopped)", err)
	}
	if got, _ := rep.Get(ctx, "b").Result(); got != "1" {
		t.Errorf("promoted replica: GET b = %q; want 1", got)
	}
	if err := rep.Set(ctx, "c", "1", 0).Err(); err != nil {
		t.Errorf("promoted replica does not take writes: %v", err)
	}
}

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := StartReplicated(t)
	s := r.StartSentinel(t)
	if got, err := s.MasterAddr(); err != nil || got != r.Master.Addr() {
		t.Fatalf("Sentinel master = %s, %v; want %s", got, err, r.Master.Addr())
	}
	fc := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    s.MasterName,
		SentinelAddrs: []string{s.Addr()},
		DialTimeout:   500 * time.Millisecond,
		ReadTimeout:   time.Second,
		MaxRetries:    -1,
	})
	defer fc.Close()
	if err := fc.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	WaitSynced(t, r.Master.Addr(), r.Replica.Addr())

	start := time.Now()
	r.Master.Kill()
	var lastErr error
	for {
		if lastErr = fc.Set(ctx, "k2", "after", 0).Err(); lastErr == nil {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no successful write through the FailoverClient 20s after the master died: %v\n%s", lastErr, tail(s.logPath, 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("failover: writes succeed %v after the master was killed", time.Since(start).Round(time.Millisecond))
	s.WaitMaster(t, r.Replica.Addr())
	if got, err := fc.Get(ctx, "k").Result(); err != nil || got != "before" {
		t.Fatalf("after failover: GET k = %q, %v", got, err)
	}
	// The FailoverClient really talks to the promoted replica.
	if got, err := rc(t, r.Replica.Addr()).Get(ctx, "k2").Result(); err != nil || got != "after" {
		t.Fatalf("promoted replica: GET k2 = %q, %v", got, err)
	}
}
