package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A local keyspace: a batch read fills the L1 (the next one sends nothing to
// Redis), and another process's invalidation reaches those L1 entries.
func TestBatchLocal(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		hook := &roundTrips{}
		if cl, ok := rdb.(*redis.Client); ok {
			cl.AddHook(hook)
		}
		c := newTestCache(t, rdb, WithLocalBound(200*time.Millisecond))
		defer c.Close()
		writer := newTestCache(t, rdb, WithNamespace(c.cfg.namespace))
		defer writer.Close()
		ks := localUserSpace(c, time.Minute)
		waitLive(t, c)
		src := newBatchUsers(10)
		ids := []int64{1, 2, 3, 4}
		for range 2 {
			if _, err := GetMany(ctx, ks, ids, userBatch(src)); err != nil {
				t.Fatal(err)
			}
			c.waitFills()
		}
		src.reset()
		local0 := c.Stats().Get(EventLocalHit)
		hook.n.Store(0)
		got, err := GetMany(ctx, ks, ids, userBatch(src))
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, got, src, ids)
		if n := c.Stats().Get(EventLocalHit) - local0; n != uint64(len(ids)) {
			t.Fatalf("%d L1 hits, want %d", n, len(ids))
		}
		if _, single := rdb.(*redis.Client); single && hook.n.Load() > 2 { // the subscription's pings may pass
			t.Fatalf("%d round trips for an L1 batch", hook.n.Load())
		}
		src.set(3, "new3")
		if err := writer.Invalidate(ctx, Invalidation{Keys: []Key{userKey(userSpace(writer), 3)}}); err != nil {
			t.Fatal(err)
		}
		// The invalidation reaches this process within the bound.
		deadline := time.Now().Add(2 * time.Second)
		for {
			got, err = GetMany(ctx, ks, ids, userBatch(src))
			if err != nil {
				t.Fatal(err)
			}
			if got[3].Name == "new3" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the batch still serves %q from the L1 after the invalidation", got[3].Name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		checkUsers(t, got, src, ids)
	})
}
