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
