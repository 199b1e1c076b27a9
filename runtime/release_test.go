package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
)

// TestFailedReleaseReplayed: a leaseholder that loses Redis mid-load cannot
// store or release; once Redis is reachable again the release is replayed,
// long before the lease would expire, so that key's callers do not wait it
// out after the outage.
func TestFailedReleaseReplayed(t *testing.T) {
	addr, _ := testenv.StartRedis(t)
	direct := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { direct.Close() })
	p := startProxy(t, addr)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	c := newTestCache(t, rdb, WithTimeout(100*time.Millisecond), WithLease(time.Minute, time.Second),
		WithBreaker(5, 50*time.Millisecond))
	ks := userSpace(c)
	key := userKey(ks, 1)
	lease := leaseKeyOf(key)
	ctx := context.Background()

	_, err := loadVia(ctx, ks, key, Loader[*user]{Load: func(context.Context) (*user, error) {
		if n := direct.Exists(ctx, lease).Val(); n != 1 {
			t.Errorf("no lease taken before the load")
		}
		p.set(proxyRefuse) // Redis becomes unreachable before the fill
		return &user{ID: 1}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if ttl := direct.PTTL(ctx, lease).Val(); ttl < 50*time.Second {
		t.Fatalf("lease ttl %v: the lease should still be there", ttl)
	}
	p.set(proxyPass)
	deadline := time.Now().Add(5 * time.Second)
	for direct.Exists(ctx, lease).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("the failed release was never replayed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
