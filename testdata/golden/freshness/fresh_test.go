package freshness

// These tests run the generated decorator on a real Redis: past its TTL an
// entry is served at once (stale=) while one background reload runs, the
// batch read shares those entries, and a write's eviction is never answered
// with the old value.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/cachegen/cachegen/runtime"
)

type quotes struct {
	mu    sync.Mutex
	price map[string]float64
	loads int
}

func (q *quotes) Get(_ context.Context, s string) (*Quote, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.loads++
	p, ok := q.price[s]
	if !ok {
		return nil, ErrNoQuote
	}
	return &Quote{Symbol: s, Price: p}, nil
}

func (q *quotes) GetMany(_ context.Context, ss []string) (map[string]*Quote, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.loads++
	out := map[string]*Quote{}
	for _, s := range ss {
		if p, ok := q.price[s]; ok {
			out[s] = &Quote{Symbol: s, Price: p}
		}
	}
	return out, nil
}

func (q *quotes) History(context.Context, string) ([]float64, error) { return []float64{1}, nil }
func (q *quotes) Top(context.Context) ([]Quote, error)               { return nil, nil }

func (q *quotes) Set(_ context.Context, s string, p float64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.price[s] = p
	return nil
}

func (q *quotes) set(s string, p float64) {
	q.mu.Lock()
	q.price[s] = p
	q.mu.Unlock()
}

func (q *quotes) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.loads
}

func newQuotes(t *testing.T) (*CachedQuotes, *quotes, *runtime.Cache) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	c := runtime.New(rdb, runtime.WithNamespace("golden-"+hex.EncodeToString(b[:])), runtime.WithTimeout(2*time.Second))
	t.Cleanup(func() { c.Close() })
	src := &quotes{price: map[string]float64{"A": 1, "B": 2}}
	return NewCachedQuotes(src, c), src, c
}

func TestStaleServedAndReloaded(t *testing.T) {
	r, src, c := newQuotes(t)
	ctx := context.Background()
	if q, err := r.Get(ctx, "A"); err != nil || q.Price != 1 {
		t.Fatalf("%+v %v", q, err)
	}
	if m, err := r.GetMany(ctx, []string{"B"}); err != nil || m["B"].Price != 2 {
		t.Fatalf("%+v %v", m, err)
	}
	src.set("A", 10) // behind the cache's back: only the TTL ends it
	src.set("B", 20)
	time.Sleep(1200 * time.Millisecond) // past the TTL (1s ± 10%), within stale=30s
	before := src.count()
	start := time.Now()
	m, err := r.GetMany(ctx, []string{"A", "B"})
	if err != nil || m["A"].Price != 1 || m["B"].Price != 2 {
		t.Fatalf("stale batch read: %+v %v", m, err)
	}
	// The batch's reload may have landed already: the old value or the new.
	if q, err := r.Get(ctx, "A"); err != nil || q.Price != 1 && q.Price != 10 {
		t.Fatalf("read after the stale batch: %+v %v", q, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("stale reads took %v", d)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		q, err := r.Get(ctx, "A")
		if err != nil {
			t.Fatal(err)
		}
		if q.Price == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background reload never landed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := src.count() - before; n != 1 {
		t.Fatalf("%d source calls for the reload of two stale entries, want 1 (one batch)", n)
	}
	if s := c.Stats(); s.Get(runtime.EventStale) < 2 || s.Get(runtime.EventRefresh) != 2 {
		t.Fatalf("stale hits %d, refreshes %d", s.Get(runtime.EventStale), s.Get(runtime.EventRefresh))
	}
	// A write's eviction: the next read is the new row, stale window or not.
	if err := r.Set(ctx, "A", 11); err != nil {
		t.Fatal(err)
	}
	if q, err := r.Get(ctx, "A"); err != nil || q.Price != 11 {
		t.Fatalf("after the write: %+v %v", q, err)
	}
}
