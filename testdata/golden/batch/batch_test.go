package batch

// These tests run the generated batch reads on a real Redis: a batch read
// and the single read of its template share entries and invalidation, text
// keys spell alike in both, and ids without a key bypass the cache.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/cachegen/cachegen/runtime"
)

type users struct {
	mu    sync.Mutex
	rows  map[int64]*User
	loads int
}

func (u *users) Get(_ context.Context, id int64) (*User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.loads++
	if r, ok := u.rows[id]; ok {
		cp := *r
		return &cp, nil
	}
	return nil, ErrNotFound
}

func (u *users) GetMany(_ context.Context, ids []int64) (map[int64]*User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.loads++
	out := map[int64]*User{}
	for _, id := range ids {
		if r, ok := u.rows[id]; ok {
			cp := *r
			out[id] = &cp
		}
	}
	return out, nil
}

func (u *users) Save(_ context.Context, v *User) (*User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	cp := *v
	u.rows[v.ID] = &cp
	return v, nil
}

func (u *users) Delete(_ context.Context, id int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.rows, id)
	return nil
}

func (u *users) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.loads
}

func newCache(t *testing.T) *runtime.Cache {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	c := runtime.New(rdb, runtime.WithNamespace("golden-batch-"+hex.EncodeToString(b[:])), runtime.WithTimeout(2*time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestBatchSharesEntries(t *testing.T) {
	ctx := context.Background()
	src := &users{rows: map[int64]*User{1: {ID: 1, Name: "a", Team: &Team{ID: 7}}, 2: {ID: 2, Name: "b", Team: &Team{ID: 7}}}}
	r := NewCachedUsers(src, newCache(t))
	got, err := r.GetMany(ctx, []int64{1, 2, 3, 2})
	if err != nil || len(got) != 2 || got[1].Name != "a" || got[2].Name != "b" {
		t.Fatal(got, err)
	}
	time.Sleep(50 * time.Millisecond) // the fills run after the call
	before := src.count()
	if u, err := r.Get(ctx, 1); err != nil || u.Name != "a" {
		t.Fatal(u, err)
	}
	if _, err := r.Get(ctx, 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("id 3: %v, want the not-found the batch cached", err)
	}
	if src.count() != before {
		t.Fatal("single reads of batch-filled ids called the source")
	}
	// A write through the single template's put reaches the batch read.
	if _, err := r.Save(ctx, &User{ID: 2, Name: "b2", Team: &Team{ID: 7}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got, err = r.GetMany(ctx, []int64{1, 2})
	if err != nil || len(got) != 1 || got[2].Name != "b2" {
		t.Fatalf("after the writes: %v %v", got, err)
	}
	if err := r.InvalidateGet(ctx, 2); err != nil {
		t.Fatal(err)
	}
	before = src.count()
	if _, err := r.GetMany(ctx, []int64{2}); err != nil || src.count() != before+1 {
		t.Fatalf("InvalidateGet did not reach the batch read: %v, %d loads", err, src.count()-before)
	}
	if err := r.WarmGetMany(ctx, []int64{5, 6, 2}); err != nil {
		t.Fatal(err)
	}
}

type things struct{ calls [][]Code }

func (th *things) ByCode(_ context.Context, ids []Code) (map[Code]*Thing, error) {
	th.calls = append(th.calls, ids)
	out := map[Code]*Thing{}
	for _, id := range ids {
		out[id] = &Thing{Name: id.A + id.B}
	}
	return out, nil
}
func (th *things) ByLabel(context.Context, []Label) (map[Label]*Thing, error) { return nil, nil }
func (th *things) ByNum(context.Context, ...uint32) (map[uint32]*Thing, error) {
	return map[uint32]*Thing{}, nil
}
func (th *things) ByID(context.Context, []ID) (map[ID]*Thing, error) { return nil, nil }

func TestBatchTextKeys(t *testing.T) {
	ctx := context.Background()
	src := &things{}
	r := NewCachedThings(src, newCache(t))
	ids := []Code{{"a", "1"}, {"", "no key"}, {"b", "2"}}
	for round := range 2 {
		got, err := r.ByCode(ctx, ids)
		if err != nil || len(got) != 3 || got[Code{"", "no key"}].Name != "no key" {
			t.Fatal(got, err)
		}
		time.Sleep(50 * time.Millisecond)
		if round == 1 && (len(src.calls) != 2 || len(src.calls[1]) != 1) {
			t.Fatalf("second round loaded %v, want only the id without a key", src.calls)
		}
	}
	if got, err := r.ByNum(ctx); err != nil || got == nil || len(got) != 0 {
		t.Fatal(got, err)
	}
}
