package generic

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/cachegen/cachegen/runtime"
)

type mixed[K ~string | ~int64, N ~int32 | ~uint8 | ~bool] struct{ calls int }

func (m *mixed[K, N]) Get(ctx context.Context, k K, n N) (string, error) {
	m.calls++
	return fmt.Sprint(k, "/", n), nil
}

func (m *mixed[K, N]) Drop(ctx context.Context, k K, n N) error { return nil }

func cache(t *testing.T) *runtime.Cache {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t)})
	ns := "cachegen-generic-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, ns+":*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return runtime.New(rdb, runtime.WithNamespace(ns))
}

// Keys of a type set mixing strings and integers work with either.
func TestMixedInstantiations(t *testing.T) {
	ctx := context.Background()
	c := cache(t)
	type name string
	s := &mixed[name, bool]{}
	rs := NewCachedMixed[name, bool](s, c)
	i := &mixed[int64, int32]{}
	ri := NewCachedMixed[int64, int32](i, c)
	for range 2 {
		if v, err := rs.Get(ctx, "a:b", true); err != nil || v != "a:b/true" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		if v, err := ri.Get(ctx, -7, 3); err != nil || v != "-7/3" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	if s.calls != 1 || i.calls != 1 {
		t.Fatalf("calls %d and %d, want 1 each (the second Get hits)", s.calls, i.calls)
	}
	ri.Drop(ctx, -7, 3)
	ri.Get(ctx, -7, 3)
	rs.Get(ctx, "a:b", true)
	if s.calls != 1 || i.calls != 2 {
		t.Fatalf("after Drop: calls %d and %d, want 1 and 2", s.calls, i.calls)
	}
}

type store[V any] struct {
	calls int
	v     V
}

func (s *store[V]) Get(ctx context.Context, k string) (V, error) { s.calls++; return s.v, nil }
func (s *store[V]) List(ctx context.Context, cursor string) (Page[V], error) {
	return Page[V]{}, nil
}
func (s *store[V]) Many(ctx context.Context, first string) (map[string]V, error) { return nil, nil }
func (s *store[V]) Set(ctx context.Context, k string, v V) error                 { return nil }
func (s *store[V]) Delete(ctx context.Context, k string) error                   { return nil }
func (s *store[V]) Touch(ctx context.Context, k string) error                    { return nil }

type user struct{ Name string }
type tag struct{ Name string }

// Each instantiation is a repository of its own: Store[string, tag]'s
// InvalidateAll and tag invalidations leave Store[string, user]'s entries
// alone, and two instantiations never read each other's entries.
func TestInstantiationsApart(t *testing.T) {
	ctx := context.Background()
	c := cache(t)
	us := &store[user]{v: user{"ann"}}
	ts := &store[tag]{v: tag{"go"}}
	u := NewCachedStore[string, user](us, c)
	tg := NewCachedStore[string, tag](ts, c)
	read := func(wantU, wantT int) {
		t.Helper()
		if v, err := u.Get(ctx, "k"); err != nil || v.Name != "ann" {
			t.Fatalf("users Get = %+v, %v", v, err)
		}
		if v, err := tg.Get(ctx, "k"); err != nil || v.Name != "go" {
			t.Fatalf("tags Get = %+v, %v", v, err)
		}
		if us.calls != wantU || ts.calls != wantT {
			t.Fatalf("source calls: users %d, tags %d; want %d, %d", us.calls, ts.calls, wantU, wantT)
		}
	}
	read(1, 1)
	read(1, 1)
	if err := tg.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	read(1, 2)
	if err := tg.Touch(ctx, "k"); err != nil { // tag item:k of the tags' instantiation only
		t.Fatal(err)
	}
	read(1, 3)
	if err := u.Touch(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	read(2, 3)
	// Another Cache value of the same instantiation shares its entries.
	u2 := NewCachedStore[string, user](us, c)
	if _, err := u2.Get(ctx, "k"); err != nil || us.calls != 2 {
		t.Fatalf("a second CachedStore[string, user]: %d calls, %v; want a hit", us.calls, err)
	}
}
