package binding

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/cachegen/cachegen/runtime"
)

func setup(t *testing.T) (*CachedMembers, *Source) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t)})
	ns := "cachegen-binding-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, ns+":*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	src := NewSource()
	return NewCachedMembers(src, runtime.New(rdb, runtime.WithNamespace(ns))), src
}

func calls(t *testing.T, src *Source, m string, want int) {
	t.Helper()
	if got := src.Calls(m); got != want {
		t.Fatalf("%s reached the source %d times, want %d", m, got, want)
	}
}

// Set's key and tag name the second string parameter: the entry of ByUser
// for that user is dropped, the one of the first parameter's value is not,
// and the stored entry is read back under both parameters in order.
func TestPutBindsTheNamedParameter(t *testing.T) {
	repo, src := setup(t)
	ctx := context.Background()
	// Nil results are not cached without a negative TTL: give every
	// read a value.
	src.Set(ctx, "x", "bob", &Member{Org: "x", User: "bob"})
	src.Set(ctx, "x", "acme", &Member{Org: "x", User: "acme"})
	for _, u := range []string{"bob", "acme"} {
		if _, err := repo.ByUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	calls(t, src, "ByUser", 2)
	if err := repo.Set(ctx, "acme", "bob", &Member{Org: "acme", User: "bob", Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	m, err := repo.Get(ctx, "acme", "bob")
	if err != nil || m == nil || m.Role != "admin" {
		t.Fatalf("Get = %+v, %v", m, err)
	}
	calls(t, src, "Get", 0) // stored by Set under member:acme:bob
	repo.ByUser(ctx, "bob")
	calls(t, src, "ByUser", 3) // user:bob was invalidated
	repo.ByUser(ctx, "acme")
	calls(t, src, "ByUser", 3) // user:acme was not
}

// Move names its parameters in the other order in its keys.
func TestEvictBindsTheNamedParameter(t *testing.T) {
	repo, src := setup(t)
	ctx := context.Background()
	src.Set(ctx, "acme", "bob", &Member{Org: "acme", User: "bob"})
	src.Set(ctx, "bob", "acme", &Member{Org: "bob", User: "acme"})
	repo.Get(ctx, "acme", "bob")
	repo.Get(ctx, "bob", "acme")
	repo.ByUser(ctx, "bob")
	repo.ByUser(ctx, "acme")
	calls(t, src, "Get", 2)
	calls(t, src, "ByUser", 2)
	// to=bob, from=acme: drops member:acme:bob, byuser:bob, user:bob.
	if err := repo.Move(ctx, "bob", "acme"); err != nil {
		t.Fatal(err)
	}
	repo.Get(ctx, "acme", "bob")
	calls(t, src, "Get", 3)
	repo.Get(ctx, "bob", "acme")
	calls(t, src, "Get", 3)
	repo.ByUser(ctx, "bob")
	calls(t, src, "ByUser", 3)
	repo.ByUser(ctx, "acme")
	calls(t, src, "ByUser", 3)
}
