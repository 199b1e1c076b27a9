package e2e

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/cachegen/cachegen/runtime"
)

// setup returns a generated repository over a counting source, on a Redis
// namespace of its own.
func setup(t *testing.T) (*CachedUsers, *Source, *redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t)})
	ns := "cachegen-e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, ns+":*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	src := NewSource()
	// A generous time budget: these tests count source calls, and a Redis
	// call over the default 100ms on a loaded machine is served from the
	// source (fail-open), one call more than the test expects.
	return NewCachedUsers(src, runtime.New(rdb, runtime.WithNamespace(ns), runtime.WithTimeout(10*time.Second))), src, rdb, ns
}

func want(t *testing.T, src *Source, method string, n int) {
	t.Helper()
	if got := src.Calls(method); got != n {
		t.Fatalf("%s reached the source %d times, want %d", method, got, n)
	}
}

func entries(t *testing.T, rdb *redis.Client, ns string) int {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), ns+":e:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

func TestHit(t *testing.T) {
	repo, src, rdb, ns := setup(t)
	ctx := context.Background()
	src.Put(User{ID: 1, Email: "ann@example.com", Name: "Ann"})
	for i := 0; i < 3; i++ {
		u, err := repo.Get(ctx, 1)
		if err != nil || u == nil || u.Name != "Ann" {
			t.Fatalf("Get = %+v, %v", u, err)
		}
	}
	want(t, src, "Get", 1)
	if n := entries(t, rdb, ns); n != 1 {
		t.Fatalf("%d entries in Redis, want 1", n)
	}
	// Invalidation from outside drops the entry.
	src.Put(User{ID: 1, Email: "ann@example.com", Name: "Annie"})
	if err := repo.InvalidateGet(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if u, _ := repo.Get(ctx, 1); u.Name != "Annie" {
		t.Fatalf("after InvalidateGet: %+v", u)
	}
	want(t, src, "Get", 2)
	src.Put(User{ID: 1, Name: "Anna"})
	if err := repo.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	if u, _ := repo.Get(ctx, 1); u.Name != "Anna" {
		t.Fatalf("after InvalidateAll: %+v", u)
	}
}

func TestNegative(t *testing.T) {
	repo, src, _, _ := setup(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := repo.Get(ctx, 404); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(404) error = %v, want ErrNotFound", err)
		}
	}
	want(t, src, "Get", 1)
	// A nil result with a nil error is cached negatively too.
	for i := 0; i < 3; i++ {
		if u, err := repo.ByEmail(ctx, "nobody@example.com"); u != nil || err != nil {
			t.Fatalf("ByEmail = %+v, %v", u, err)
		}
	}
	want(t, src, "ByEmail", 1)
}

func TestTagsFromResult(t *testing.T) {
	repo, src, _, _ := setup(t)
	ctx := context.Background()
	src.Put(User{ID: 7, Email: "bo@example.com", Name: "Bo"})
	repo.ByEmail(ctx, "bo@example.com")
	repo.ByEmail(ctx, "bo@example.com")
	want(t, src, "ByEmail", 1)
	// Update invalidates tag user:7, which ByEmail's entry got from its result.
	if err := repo.Update(ctx, &User{ID: 7, Email: "bo@example.com", Name: "Bob"}); err != nil {
		t.Fatal(err)
	}
	if u, _ := repo.ByEmail(ctx, "bo@example.com"); u.Name != "Bob" {
		t.Fatalf("after Update: %+v", u)
	}
	want(t, src, "ByEmail", 2)
}

func TestEvictEvenOnError(t *testing.T) {
	repo, src, _, _ := setup(t)
	ctx := context.Background()
	src.Put(User{ID: 3, Name: "Cy"})
	repo.Get(ctx, 3)
	src.SetFail(errors.New("timeout after commit"))
	if err := repo.Update(ctx, &User{ID: 3, Name: "Cyd"}); err == nil {
		t.Fatal("Update hid the source's error")
	}
	src.SetFail(nil)
	if u, _ := repo.Get(ctx, 3); u.Name != "Cyd" {
		t.Fatalf("after a failed Update: %+v, want the entry invalidated", u)
	}
	want(t, src, "Get", 2)
}

func TestPattern(t *testing.T) {
	repo, src, _, _ := setup(t)
	ctx := context.Background()
	repo.Feed(ctx, 1)
	repo.Feed(ctx, 2)
	repo.Feed(ctx, 1)
	repo.Feed(ctx, 2)
	want(t, src, "Feed", 2)
	if err := repo.Publish(ctx, Article{ID: 1, Title: "hello"}); err != nil {
		t.Fatal(err)
	}
	for _, page := range []int{1, 2} {
		a, err := repo.Feed(ctx, page)
		if err != nil || len(a) != 1 {
			t.Fatalf("Feed(%d) after Publish = %v, %v", page, a, err)
		}
	}
	want(t, src, "Feed", 4)
}

func TestPut(t *testing.T) {
	repo, src, _, _ := setup(t)
	ctx := context.Background()
	src.Put(User{ID: 9, Email: "old@example.com", Name: "Di"})
	repo.ByEmail(ctx, "old@example.com")
	repo.Feed(ctx, 1)
	saved, err := repo.Save(ctx, &User{ID: 9, Email: "old@example.com", Name: "Dina"})
	if err != nil || saved.Name != "Dina" {
		t.Fatalf("Save = %+v, %v", saved, err)
	}
	// The saved value is served without a source call.
	u, err := repo.Get(ctx, 9)
	if err != nil || u.Name != "Dina" {
		t.Fatalf("Get after Save = %+v, %v", u, err)
	}
	want(t, src, "Get", 0)
	// evict= dropped the email entry, tags= the feed.
	repo.ByEmail(ctx, "old@example.com")
	want(t, src, "ByEmail", 2)
	repo.Feed(ctx, 1)
	want(t, src, "Feed", 2)
	// The stored entry carries the get's tags: Update invalidates it.
	repo.Update(ctx, &User{ID: 9, Name: "Dee"})
	if u, _ := repo.Get(ctx, 9); u.Name != "Dee" {
		t.Fatalf("after Update: %+v", u)
	}
	want(t, src, "Get", 1)
	// A failed put stores nothing.
	src.SetFail(errors.New("constraint violation"))
	if _, err := repo.Save(ctx, &User{ID: 10, Name: "Ed"}); err == nil {
		t.Fatal("Save hid the source's error")
	}
	src.SetFail(nil)
	if _, err := repo.Get(ctx, 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(10) after a failed Save: %v", err)
	}
}

func TestPassThrough(t *testing.T) {
	repo, src, rdb, ns := setup(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := repo.Delete(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	want(t, src, "Delete", 3)
	// A nil pointer hop in a key bypasses the cache instead of panicking.
	for _, u := range []*User{nil, {ID: 1}} {
		repo.Org(ctx, u)
		repo.Org(ctx, u)
	}
	want(t, src, "Org", 4)
	// Org with a profile is cached.
	u := &User{ID: 1, Profile: &Profile{Org: "acme:eu"}}
	repo.Org(ctx, u)
	repo.Org(ctx, u)
	want(t, src, "Org", 5)
	keys, _ := rdb.Keys(ctx, ns+":e:*").Result()
	found := false
	for _, k := range keys {
		// Values are escaped: the ':' of the org cannot fake a key separator.
		if strings.Contains(k, "org:acme%3Aeu") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no escaped org key among %q", keys)
	}
}
