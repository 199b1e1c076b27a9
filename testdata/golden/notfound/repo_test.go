package notfound

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/cachegen/cachegen/runtime"
	"github.com/cachegen/cachegen/testdata/golden/notfound/ent"
)

type users struct{ calls map[string]int }

func (u *users) ByType(ctx context.Context, id int64) (*User, error) {
	u.calls["type"]++
	return nil, ent.NewNotFound("user")
}

func (u *users) ByPredicate(ctx context.Context, id int64) (*User, error) {
	u.calls["pred"]++
	return nil, ent.NewNotFound("user")
}

func (u *users) ByStatus(ctx context.Context, id int64) (User, error) {
	u.calls["status"]++
	if id == 500 {
		return User{}, &Status{Code: 500, Reason: "USER_NOT_FOUND"}
	}
	return User{}, &Status{Code: 404, Reason: "USER_NOT_FOUND"}
}

func (u *users) ByRow(ctx context.Context, id int64) (User, error) {
	u.calls["row"]++
	return User{}, sql.ErrNoRows
}

func TestNotFoundForms(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t)})
	defer rdb.Close()
	ns := "cachegen-nf-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c := runtime.New(rdb, runtime.WithNamespace(ns))
	src := &users{calls: map[string]int{}}
	r := NewCachedUsers(src, c)
	for i := range 3 {
		if _, err := r.ByType(ctx, 1); !ent.IsNotFound(err) || err.Error() != "ent: user not found" {
			t.Fatalf("ByType read %d: %v", i, err)
		}
		// The predicate alone cannot be satisfied by a cached text: the
		// source answers every time.
		if _, err := r.ByPredicate(ctx, 1); !ent.IsNotFound(err) {
			t.Fatalf("ByPredicate read %d: %v", i, err)
		}
		if _, err := r.ByStatus(ctx, 1); !IsUserNotFound(err) || err.Error() != "USER_NOT_FOUND" {
			t.Fatalf("ByStatus read %d: %v", i, err)
		}
		// A 500 with the same reason is not a not-found: never cached.
		if _, err := r.ByStatus(ctx, 500); err == nil || IsUserNotFound(err) {
			t.Fatalf("ByStatus(500) read %d: %v", i, err)
		}
		if _, err := r.ByRow(ctx, 1); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("ByRow read %d: %v", i, err)
		}
		time.Sleep(50 * time.Millisecond) // the fills land after the call returns
	}
	want := map[string]int{"type": 1, "pred": 3, "status": 4, "row": 1}
	for k, n := range want {
		if src.calls[k] != n {
			t.Errorf("%s: %d source calls, want %d", k, src.calls[k], n)
		}
	}
	_ = r.InvalidateAll(ctx)
}
