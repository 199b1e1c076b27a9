package runtime

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachegen/cachegen/internal/testenv"
)

// TestBatchFaults: batch readers and a writer in another Cache run while a
// private redis-server evicts keys under maxmemory (allkeys-lru, the state
// included), restarts empty and has its connections killed. No batch read
// returns a row older than a write whose invalidation had returned before
// the read began, and no read fails.
func TestBatchFaults(t *testing.T) {
	ctx := context.Background()
	addr, srv := testenv.StartRedisWith(t, "--maxmemory-policy", "allkeys-lru")
	admin := privateClient(t, addr)
	ns := WithNamespace(testNamespace(t))
	c := newTestCache(t, privateClient(t, addr), ns, WithTimeout(500*time.Millisecond))
	defer c.Close()
	w := newTestCache(t, privateClient(t, addr), ns, WithTimeout(500*time.Millisecond))
	defer w.Close()
	ks, wks := userSpace(c), userSpace(w)
	const n = 40
	src := newBatchUsers(n)
	src.delay = 3 * time.Millisecond // a load long enough for writes to land during it
	var floor [n]atomic.Int64        // the version whose invalidation has returned, per id
	version := func(u *user) int64 {
		v, _ := strconv.ParseInt(strings.TrimPrefix(u.Name, "v"), 10, 64)
		if !strings.HasPrefix(u.Name, "v") {
			return 0
		}
		return v
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes, reads, stale, failed atomic.Int64
	var firstBad atomic.Pointer[string]
	var evicted atomic.Int64 // evicted_keys seen (the counter restarts with the server)
	bad := func(s string) { firstBad.CompareAndSwap(nil, &s) }
	wg.Add(1)
	go func() { // the writer: commit, invalidate, then the write has returned
		defer wg.Done()
		next := [n]int64{}
		for r := rand.New(rand.NewPCG(1, 2)); ; {
			select {
			case <-stop:
				return
			default:
			}
			id := r.Int64N(n)
			next[id]++
			src.set(id, "v"+strconv.FormatInt(next[id], 10))
			// By key (deletes the entry and voids its lease) or by tag only
			// (neither: only the markers keep an old load out).
			inv := Invalidation{Tags: []string{"user:" + strconv.FormatInt(id, 10)}}
			if next[id]%2 == 0 {
				inv.Keys = []Key{userKey(wks, id)}
			}
			if err := w.Invalidate(ctx, inv); err == nil {
				floor[id].Store(next[id])
			}
			writes.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(3, uint64(g)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				want := make([]int64, 0, 15)
				for range 15 {
					want = append(want, r.Int64N(n))
				}
				var before [n]int64
				for _, id := range want {
					before[id] = floor[id].Load()
				}
				got, err := GetMany(ctx, ks, want, userBatch(src))
				reads.Add(1)
				if err != nil {
					failed.Add(1)
					bad(fmt.Sprintf("GetMany failed: %v", err))
					continue
				}
				for _, id := range want {
					u := got[id]
					if u == nil {
						failed.Add(1)
						bad(fmt.Sprintf("id %d missing", id))
						continue
					}
					if v := version(u); v < before[id] {
						stale.Add(1)
						bad(fmt.Sprintf("id %d: read version %d after version %d's write had returned", id, v, before[id]))
					}
				}
			}
		}()
	}
	// The faults, in turn, for a few seconds.
	deadline := time.Now().Add(4 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		time.Sleep(150 * time.Millisecond)
		switch i % 3 {
		case 0: // evict under memory pressure (the state's keys too), then free it
			_ = admin.ConfigSet(ctx, "maxmemory", "1100000").Err()
			junk := strings.Repeat("j", 4096)
			for k := range 300 {
				_ = admin.Set(ctx, "junk:"+strconv.Itoa(i)+":"+strconv.Itoa(k), junk, time.Minute).Err()
			}
			if ev := infoInt(t, admin, "stats", "evicted_keys"); ev > 0 {
				evicted.Add(ev)
			}
			_ = admin.ConfigSet(ctx, "maxmemory", "0").Err()
		case 1:
			srv.Restart() // empty
		case 2:
			_, _ = testenv.KillClients(addr, "normal")
		}
	}
	close(stop)
	wg.Wait()
	c.waitFills()
	t.Logf("%d batch reads, %d writes; reader %v; writer %v", reads.Load(), writes.Load(), c.Stats(), w.Stats())
	if p := firstBad.Load(); p != nil {
		t.Errorf("%d stale ids, %d failures; first: %s", stale.Load(), failed.Load(), *p)
	}
	if evicted.Load() == 0 {
		t.Error("Redis evicted nothing: the memory-pressure phase proved nothing")
	}
	if reads.Load() < 50 || c.Stats().Get(EventHit) == 0 {
		t.Errorf("the readers did too little to prove anything: %d reads, stats %v", reads.Load(), c.Stats())
	}
}
