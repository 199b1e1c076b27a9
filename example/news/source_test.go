package news

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
)

const testArticles = 2000

// pgSource gives a test its own PostgreSQL schema, migrated and seeded, and
// drops it afterwards: tests never see each other's writes, nor the demo's.
func pgSource(t testing.TB) (*PG, *Dataset) {
	t.Helper()
	url := testenv.NeedPostgres(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "cachegen_news_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if err := DropSchema(context.Background(), pool, schema); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		pool.Close()
	})
	if err := Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, pool, schema); err != nil { // idempotent
		t.Fatalf("second Migrate: %v", err)
	}
	d := NewDataset(testArticles)
	if err := Seed(ctx, pool, schema, d); err != nil {
		t.Fatal(err)
	}
	return NewPG(pool, schema), d
}

type source interface {
	Articles
	Users
	Queries() int64
}

// TestSources checks that PG and Memory agree: the demo compares runs on
// either, and the cached repositories must not care which one they wrap.
func TestSources(t *testing.T) {
	t.Run("pg", func(t *testing.T) {
		t.Parallel()
		pg, d := pgSource(t)
		testSource(t, pg, d)
	})
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		d := NewDataset(testArticles)
		testSource(t, NewMemory(d, Latency{}), d)
	})
}

func testSource(t *testing.T, s source, d *Dataset) {
	ctx := context.Background()
	want := d.Articles[41]
	a, err := s.Get(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Title != want.Title || a.Slug != want.Slug || a.AuthorName != want.AuthorName || a.Category != want.Category ||
		!a.PublishedAt.Equal(want.PublishedAt) {
		t.Fatalf("Get(%d) = %+v, want %+v", want.ID, a, want)
	}
	if b, err := s.BySlug(ctx, want.Slug); err != nil || b.ID != want.ID {
		t.Fatalf("BySlug(%q) = %v, %v", want.Slug, b, err)
	}
	if _, err := s.Get(ctx, 1e9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.BySlug(ctx, "no-such-slug"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("BySlug(unknown) error = %v, want ErrNotFound", err)
	}
	home, err := s.HomepageFeed(ctx, 1)
	if err != nil || len(home) != PageSize || home[0].ID != int64(len(d.Articles)-PageSize) {
		t.Fatalf("HomepageFeed(1) = %d items (first %+v), %v", len(home), home, err)
	}
	cat, err := s.CategoryFeed(ctx, "science", 0)
	if err != nil || len(cat) != PageSize {
		t.Fatalf("CategoryFeed = %d items, %v", len(cat), err)
	}
	for i, x := range cat {
		if x.Category != "science" || (i > 0 && x.ID >= cat[i-1].ID) {
			t.Fatalf("CategoryFeed item %d = %+v", i, x)
		}
	}
	if far, err := s.HomepageFeed(ctx, 1000); err != nil || len(far) != 0 {
		t.Fatalf("HomepageFeed(past the end) = %v, %v", far, err)
	}

	n := &Article{Slug: "fresh-news", Title: "Fresh news", Summary: "s", Body: "b", Category: "science", AuthorID: 7}
	if err := s.Publish(ctx, n); err != nil {
		t.Fatal(err)
	}
	if n.ID != int64(len(d.Articles)+1) || time.Since(n.PublishedAt) > time.Minute {
		t.Fatalf("Publish set ID %d, PublishedAt %v", n.ID, n.PublishedAt)
	}
	if home, _ := s.HomepageFeed(ctx, 0); len(home) == 0 || home[0].ID != n.ID {
		t.Fatalf("home feed after Publish starts with %+v, want id %d", home[0], n.ID)
	}
	up := *a
	up.Title = "Edited"
	if err := s.Update(ctx, &up); err != nil {
		t.Fatal(err)
	}
	if a2, _ := s.Get(ctx, a.ID); a2.Title != "Edited" {
		t.Fatalf("title after Update = %q", a2.Title)
	}
	if err := s.Update(ctx, &Article{ID: 1e9}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update(unknown) = %v, want ErrNotFound", err)
	}

	u, err := s.Profile(ctx, 3)
	if err != nil || u.Name != d.Users[2].Name {
		t.Fatalf("Profile(3) = %+v, %v", u, err)
	}
	u.Name = "Renamed"
	if got, err := s.UpdateProfile(ctx, u); err != nil || got.Name != "Renamed" || got.ID != 3 {
		t.Fatalf("UpdateProfile = %+v, %v", got, err)
	}
	if _, err := s.Profile(ctx, 1e9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Profile(unknown) = %v", err)
	}
	if _, err := s.UpdateProfile(ctx, &User{ID: 1e9, Email: "x@example.com"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("UpdateProfile(unknown) = %v", err)
	}
	if s.Queries() < 15 {
		t.Fatalf("Queries() = %d, want every statement counted", s.Queries())
	}
}
