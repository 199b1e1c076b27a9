package adopt

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/cachegen/cachegen/runtime"
)

func cache(t *testing.T) (*runtime.Cache, *redis.Client, string) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t)})
	ns := "cachegen-adopt-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, ns+":*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return runtime.New(rdb, runtime.WithNamespace(ns)), rdb, ns
}

type articles struct {
	calls map[string]int
	list  []Article
}

func (a *articles) Fetch(ctx context.Context, cursor string, num int64) ([]Article, string, error) {
	a.calls["fetch"]++
	return a.list, "next-" + cursor, nil
}

func (a *articles) GetByID(ctx context.Context, id int64) (Article, error) {
	a.calls["id"]++
	for _, ar := range a.list {
		if ar.ID == id {
			return ar, nil
		}
	}
	return Article{}, ErrNotFound
}

func (a *articles) GetByTitle(ctx context.Context, title string) (Article, error) {
	a.calls["title"]++
	return Article{Title: title[:10]}, nil
}
func (a *articles) Update(ctx context.Context, ar *Article) error { return nil }
func (a *articles) Store(ctx context.Context, ar *Article) error  { return nil }
func (a *articles) Delete(ctx context.Context, id int64) error    { return nil }

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A read with two results is one entry: a hit gives both back, exactly as
// the miss did (times in their own zones, so the JSON is the same).
func TestFetchTuple(t *testing.T) {
	ctx := context.Background()
	c, rdb, ns := cache(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	src := &articles{calls: map[string]int{}, list: []Article{
		{ID: 1, Title: "a", CreatedAt: time.Date(2024, 3, 31, 1, 30, 0, 0, berlin), UpdatedAt: time.Date(2024, 3, 31, 3, 30, 0, 0, berlin),
			Author: Author{ID: 7, CreatedAt: time.Date(2020, 1, 2, 3, 4, 5, 6, time.FixedZone("", -7*3600))}},
		{ID: 2, Title: "b", CreatedAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
	}}
	r := NewCachedArticleRepository(src, c)
	miss, next, err := r.Fetch(ctx, "c1", 10)
	if err != nil || next != "next-c1" {
		t.Fatalf("Fetch = %v, %q, %v", miss, next, err)
	}
	c.Close() // waits for the fill
	// Another process's Cache reads it.
	r = NewCachedArticleRepository(src, runtime.New(rdb, runtime.WithNamespace(ns)))
	hit, next2, err := r.Fetch(ctx, "c1", 10)
	if err != nil || next2 != "next-c1" || src.calls["fetch"] != 1 {
		t.Fatalf("second Fetch = %q, %v after %d calls; want a hit", next2, err, src.calls["fetch"])
	}
	if a, b := mustJSON(t, miss), mustJSON(t, hit); a != b {
		t.Fatalf("a hit reads otherwise than the miss:\n%s\n%s", a, b)
	}
	if hit[0].CreatedAt.Location().String() != "Europe/Berlin" {
		t.Fatalf("location %s, want Europe/Berlin", hit[0].CreatedAt.Location())
	}
	if _, _, err := r.Fetch(ctx, "c2", 10); err != nil || src.calls["fetch"] != 2 {
		t.Fatalf("another cursor: %d calls, %v", src.calls["fetch"], err)
	}
	_ = r.Store(ctx, &Article{}) // tag articles
	if _, _, err := r.Fetch(ctx, "c1", 10); err != nil || src.calls["fetch"] != 3 {
		t.Fatalf("after Store: %d calls, %v; want a miss", src.calls["fetch"], err)
	}
}

// A not-found sentinel of errors.New is cached and matches on a hit.
func TestSentinel(t *testing.T) {
	ctx := context.Background()
	c, _, _ := cache(t)
	src := &articles{calls: map[string]int{}}
	r := NewCachedArticleRepository(src, c)
	for range 2 {
		if _, err := r.GetByID(ctx, 9); !errors.Is(err, ErrNotFound) || err.Error() != ErrNotFound.Error() {
			t.Fatalf("GetByID = %v", err)
		}
	}
	if src.calls["id"] != 1 {
		t.Fatalf("%d calls, want 1 (a negative hit)", src.calls["id"])
	}
}

// A 620 KB title is a 22-character hash in the key.
func TestLongTextHashed(t *testing.T) {
	ctx := context.Background()
	c, rdb, ns := cache(t)
	src := &articles{calls: map[string]int{}}
	r := NewCachedArticleRepository(src, c)
	long := strings.Repeat("lorem ipsum ", 620<<10/12)
	for range 2 {
		if a, err := r.GetByTitle(ctx, long); err != nil || a.Title != long[:10] {
			t.Fatalf("GetByTitle = %q, %v", a.Title, err)
		}
	}
	if src.calls["title"] != 1 {
		t.Fatalf("%d calls, want a hit", src.calls["title"])
	}
	if _, err := r.GetByTitle(ctx, long+"."); err != nil || src.calls["title"] != 2 {
		t.Fatalf("another title: %d calls, %v", src.calls["title"], err)
	}
	keys, err := rdb.Keys(ctx, ns+":*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	for _, k := range keys {
		if len(k) > 200 {
			t.Fatalf("key of %d bytes: %.80s…", len(k), k)
		}
	}
}

type tasks struct{ calls int }

func (s *tasks) List(ctx context.Context, f Filter) ([]Task, int, error) {
	s.calls++
	return []Task{{ID: 1, Status: strings.Join(f.Status, ",")}}, 42, nil
}

func (s *tasks) Owned(ctx context.Context, owner int64, f *Filter) ([]Task, error) {
	s.calls++
	return nil, nil
}
func (s *tasks) Create(ctx context.Context, t Task) error { return nil }

// A filter struct is hashed: equal filters share an entry whatever their
// maps' order, nil and empty do not; the page's total comes back with it.
func TestFilterHashed(t *testing.T) {
	ctx := context.Background()
	c, _, _ := cache(t)
	src := &tasks{}
	r := NewCachedTaskRepo(src, c)
	one := int64(1)
	f1 := Filter{Status: []string{"open"}, Labels: map[string]string{}, Owner: &one, Page: 2}
	f2 := Filter{Status: []string{"open"}, Labels: map[string]string{}, Owner: new(int64), Page: 2}
	*f2.Owner = 1
	for i := range 20 {
		f1.Labels["l"+strconv.Itoa(i)] = "x"
	}
	for i := 19; i >= 0; i-- {
		f2.Labels["l"+strconv.Itoa(i)] = "x"
	}
	for _, f := range []Filter{f1, f2} {
		ts, total, err := r.List(ctx, f)
		if err != nil || total != 42 || len(ts) != 1 || ts[0].Status != "open" {
			t.Fatalf("List = %v, %d, %v", ts, total, err)
		}
	}
	if src.calls != 1 {
		t.Fatalf("%d calls: equal filters should share an entry", src.calls)
	}
	if _, _, err := r.List(ctx, Filter{Status: []string{}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.List(ctx, Filter{}); err != nil {
		t.Fatal(err)
	}
	if src.calls != 3 {
		t.Fatalf("%d calls: nil and empty Status are different filters", src.calls)
	}
	_ = r.Create(ctx, Task{})
	if _, _, err := r.List(ctx, f1); err != nil || src.calls != 4 {
		t.Fatalf("after Create: %d calls, %v", src.calls, err)
	}
}

type greeters struct{ calls int }

func (g *greeters) Save(ctx context.Context, gr *Greeter) (*Greeter, error)   { return gr, nil }
func (g *greeters) Update(ctx context.Context, gr *Greeter) (*Greeter, error) { return gr, nil }
func (g *greeters) FindByID(ctx context.Context, id string) (*Greeter, error) {
	g.calls++
	if id == "ghost" {
		return nil, ErrUserNotFound.WithCause(sql.ErrNoRows, map[string]string{"id": id})
	}
	return &Greeter{Hello: id, At: time.Date(2024, 5, 5, 5, 5, 5, 0, time.FixedZone("CEST", 7200))}, nil
}

func (g *greeters) ListByHello(ctx context.Context, h string, n int, trace bool) ([]*Greeter, error) {
	g.calls++
	return []*Greeter{{Hello: h}}, nil
}
func (g *greeters) ListAll(ctx context.Context) ([]*Greeter, error) { return nil, nil }

// Unnamed parameters by position; a kratos-style not-found keeps its code,
// reason, message and metadata on a hit (not its cause).
func TestGreeter(t *testing.T) {
	ctx := context.Background()
	c, _, _ := cache(t)
	src := &greeters{}
	r := NewCachedGreeterRepo(src, c)
	for range 2 {
		g, err := r.FindByID(ctx, "ann")
		if err != nil || g.Hello != "ann" || g.At.Format(time.RFC3339) != "2024-05-05T05:05:05+02:00" {
			t.Fatalf("FindByID = %+v, %v", g, err)
		}
	}
	if src.calls != 1 {
		t.Fatalf("%d calls, want a hit", src.calls)
	}
	var first error
	for i := range 2 {
		_, err := r.FindByID(ctx, "ghost")
		if i == 0 {
			first = err
		}
		var se *StatusError
		if !errors.Is(err, ErrUserNotFound) || !errors.As(err, &se) || err.Error() != first.Error() {
			t.Fatalf("read %d: %v", i, err)
		}
		if se.Code != 404 || se.Reason != "USER_NOT_FOUND" || se.Message != "user not found" || se.Metadata["id"] != "ghost" {
			t.Fatalf("read %d: %+v", i, se)
		}
		if i == 1 && errors.Is(err, sql.ErrNoRows) {
			t.Fatal("a cached not-found claims the source's cause")
		}
	}
	if src.calls != 2 {
		t.Fatalf("%d calls, want 2 (the second ghost read is a negative hit)", src.calls)
	}
	for _, trace := range []bool{false, true} {
		if gs, err := r.ListByHello(ctx, "hi", 3, trace); err != nil || len(gs) != 1 {
			t.Fatalf("ListByHello = %v, %v", gs, err)
		}
	}
	if src.calls != 3 {
		t.Fatalf("%d calls: the ignored $4 must not split entries", src.calls)
	}
}
