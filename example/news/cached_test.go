package news

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/cachegen/cachegen/runtime"
	"github.com/redis/go-redis/v9"
)

// These tests run the generated CachedArticles and CachedUsers over the real
// PostgreSQL source (a private schema per test) and the real Redis (a private
// runtime namespace per test). PG counts its statements, which is how they
// tell a cache hit from a database read.

func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func testNamespace() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "newstest-" + hex.EncodeToString(b[:])
}

// newCache returns a Cache on the namespace ns; more caches on the same
// namespace behave like other application instances sharing the Redis. The
// Redis budget is raised from 100ms to 2s: these tests check what the
// example's annotations do, and a loaded CI machine (race detector, parallel
// packages) must not turn them into tests of the fail-open path.
func newCache(rdb redis.UniversalClient, ns string) *runtime.Cache {
	return runtime.New(rdb, runtime.WithNamespace(ns), runtime.WithTimeout(2*time.Second),
		runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
}

type fixture struct {
	ns    string
	pg    *PG
	d     *Dataset
	cache *runtime.Cache
	arts  *CachedArticles
	users *CachedUsers
}

func setup(t *testing.T) *fixture {
	t.Helper()
	t.Parallel()
	rdb := testRedis(t)
	pg, d := pgSource(t)
	ns := testNamespace()
	c := newCache(rdb, ns)
	return &fixture{ns: ns, pg: pg, d: d, cache: c, arts: NewCachedArticles(pg, c), users: NewCachedUsers(pg, c)}
}

// expectQueries fails unless f sent exactly want statements to PostgreSQL.
func (fx *fixture) expectQueries(t *testing.T, want int64, what string, f func()) {
	t.Helper()
	q0 := fx.pg.Queries()
	f()
	if got := fx.pg.Queries() - q0; got != want {
		t.Fatalf("%s: %d database queries, want %d", what, got, want)
	}
}

func TestReadAfterWrite(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	orig := fx.d.Articles[len(fx.d.Articles)-1]

	var a *Article
	fx.expectQueries(t, 1, "first Get", func() { a, _ = fx.arts.Get(ctx, orig.ID) })
	fx.expectQueries(t, 0, "second Get", func() { a, _ = fx.arts.Get(ctx, orig.ID) })
	fx.expectQueries(t, 1, "first BySlug", func() { _, _ = fx.arts.BySlug(ctx, orig.Slug) })
	if a.Title != orig.Title {
		t.Fatalf("cached title %q, want %q", a.Title, orig.Title)
	}

	up := *a
	up.Title, up.Body = "Corrected: "+orig.Title, "New body"
	fx.expectQueries(t, 1, "Update", func() {
		if err := fx.arts.Update(ctx, &up); err != nil {
			t.Fatal(err)
		}
	})
	// The entry was evicted by key, the slug lookup by the article's tag.
	fx.expectQueries(t, 1, "Get after Update", func() { a, _ = fx.arts.Get(ctx, orig.ID) })
	if a.Title != up.Title || a.Body != "New body" {
		t.Fatalf("Get after Update = %q / %q, want the new title and body", a.Title, a.Body)
	}
	var b *Article
	fx.expectQueries(t, 1, "BySlug after Update", func() { b, _ = fx.arts.BySlug(ctx, orig.Slug) })
	if b.Title != up.Title {
		t.Fatalf("BySlug after Update = %q, want %q", b.Title, up.Title)
	}
	fx.expectQueries(t, 0, "Get again", func() { a, _ = fx.arts.Get(ctx, orig.ID) })
	if a.Title != up.Title {
		t.Fatalf("cached title after refill %q", a.Title)
	}
}

func TestNegativeCaching(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	const unknown = 987654321
	for i, want := range []int64{1, 0, 0} {
		fx.expectQueries(t, want, "Get(unknown)", func() {
			a, err := fx.arts.Get(ctx, unknown)
			if !errors.Is(err, ErrNotFound) || a != nil {
				t.Fatalf("Get(unknown) #%d = %v, %v; want nil, ErrNotFound", i, a, err)
			}
		})
	}
	fx.expectQueries(t, 1, "BySlug(unknown)", func() { _, _ = fx.arts.BySlug(ctx, "not-yet-published") })
	fx.expectQueries(t, 0, "BySlug(unknown) again", func() {
		if _, err := fx.arts.BySlug(ctx, "not-yet-published"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("BySlug(unknown) = %v, want ErrNotFound", err)
		}
	})
	// The next id is negatively cached too; publishing the article under it
	// and that slug evicts both, so it is visible at once.
	next := int64(len(fx.d.Articles) + 1)
	if _, err := fx.arts.Get(ctx, next); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(next id) = %v", err)
	}
	n := &Article{Slug: "not-yet-published", Title: "Now published", Summary: "s", Body: "b", Category: "world", AuthorID: 1}
	if err := fx.arts.Publish(ctx, n); err != nil {
		t.Fatal(err)
	}
	if n.ID != next {
		t.Fatalf("published id %d, want %d", n.ID, next)
	}
	if a, err := fx.arts.Get(ctx, next); err != nil || a.Title != "Now published" {
		t.Fatalf("Get(new id) after Publish = %v, %v", a, err)
	}
	if a, err := fx.arts.BySlug(ctx, n.Slug); err != nil || a.ID != next {
		t.Fatalf("BySlug(new slug) after Publish = %v, %v", a, err)
	}
}

func TestFeedInvalidationOnPublish(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	read := func() (home0, home1, science, sports []Summary) {
		home0, _ = fx.arts.HomepageFeed(ctx, 0)
		home1, _ = fx.arts.HomepageFeed(ctx, 1)
		science, _ = fx.arts.CategoryFeed(ctx, "science", 0)
		sports, _ = fx.arts.CategoryFeed(ctx, "sports", 0)
		return
	}
	fx.expectQueries(t, 4, "first feed reads", func() { read() })
	var home0, home1, science, sports []Summary
	fx.expectQueries(t, 0, "second feed reads", func() { home0, home1, science, sports = read() })

	n := &Article{Slug: "breaking", Title: "Breaking", Summary: "s", Body: "b", Category: "science", AuthorID: 2}
	if err := fx.arts.Publish(ctx, n); err != nil {
		t.Fatal(err)
	}
	// Every home page (pattern feed:home:*) and the science feed (tag
	// feed:science) are dropped; the sports feed stays cached.
	var h0, h1, sc, sp []Summary
	fx.expectQueries(t, 3, "feed reads after Publish", func() { h0, h1, sc, sp = read() })
	if h0[0].ID != n.ID || sc[0].ID != n.ID {
		t.Fatalf("new article not first: home %d, science %d, want %d", h0[0].ID, sc[0].ID, n.ID)
	}
	if h1[0].ID != home0[len(home0)-1].ID || h1[0].ID == home1[0].ID {
		t.Fatalf("home page 1 not shifted by the new article: starts with %d", h1[0].ID)
	}
	if sp[0].ID != sports[0].ID || sc[1].ID != science[0].ID {
		t.Fatalf("category feeds wrong after Publish")
	}

	// Update drops the feeds of the article's category, not the others.
	up := Article{ID: science[0].ID, Category: "science", Title: "Edited", Summary: "s", Body: "b"}
	if err := fx.arts.Update(ctx, &up); err != nil {
		t.Fatal(err)
	}
	fx.expectQueries(t, 1, "feed reads after Update", func() { _, _, sc, _ = read() })
	if sc[1].Title != "Edited" {
		t.Fatalf("science feed after Update shows %q", sc[1].Title)
	}
	// The tag every feed carries drops all of them.
	if err := fx.cache.Invalidate(ctx, runtime.Invalidation{Tags: []string{"feed"}}); err != nil {
		t.Fatal(err)
	}
	fx.expectQueries(t, 4, "feed reads after invalidating tag feed", func() { read() })
}

func TestWriteThroughProfile(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	var authored Article // an article by user 5
	for _, a := range fx.d.Articles {
		if a.AuthorID == 5 {
			authored = a
		}
	}
	var u *User
	fx.expectQueries(t, 1, "Profile", func() { u, _ = fx.users.Profile(ctx, 5) })
	fx.expectQueries(t, 1, "article by the user", func() { _, _ = fx.arts.Get(ctx, authored.ID) })
	fx.expectQueries(t, 1, "the same by slug", func() { _, _ = fx.arts.BySlug(ctx, authored.Slug) })

	u.Name, u.Bio = "Ada Byron", "Renamed"
	var saved *User
	fx.expectQueries(t, 1, "UpdateProfile", func() {
		var err error
		if saved, err = fx.users.UpdateProfile(ctx, u); err != nil {
			t.Fatal(err)
		}
	})
	// Read after put: served from the cache, with the new value.
	fx.expectQueries(t, 0, "Profile after UpdateProfile", func() {
		got, err := fx.users.Profile(ctx, 5)
		if err != nil || got.Name != "Ada Byron" || got.Bio != "Renamed" || !got.UpdatedAt.Equal(saved.UpdatedAt) {
			t.Fatalf("Profile after put = %+v, %v; want the stored row %+v", got, err, saved)
		}
	})
	// The put invalidated tag author:5 in the other repository: the article,
	// which shows the author's name, is read again.
	fx.expectQueries(t, 1, "article after UpdateProfile", func() {
		a, _ := fx.arts.Get(ctx, authored.ID)
		if a.AuthorName != "Ada Byron" {
			t.Fatalf("article shows author %q", a.AuthorName)
		}
	})
	// BySlug got both its tags from the result (article:ID and author:ID).
	fx.expectQueries(t, 1, "by slug after UpdateProfile", func() {
		a, _ := fx.arts.BySlug(ctx, authored.Slug)
		if a.AuthorName != "Ada Byron" {
			t.Fatalf("article by slug shows author %q", a.AuthorName)
		}
	})
	// A failed put (unknown user) stores nothing: the negative entry stays valid.
	if _, err := fx.users.Profile(ctx, 424242); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := fx.users.UpdateProfile(ctx, &User{ID: 424242, Email: "x@example.com"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("UpdateProfile(unknown) = %v", err)
	}
	if _, err := fx.users.Profile(ctx, 424242); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Profile(unknown) after failed put = %v", err)
	}
}

// TestQueriesDropAsWorkloadRepeats runs the same Zipf read mix (the same
// draws) several times: the first round fills the cache, the repeats are
// served from it, so the database sees a small fraction of the queries.
func TestQueriesDropAsWorkloadRepeats(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	n := uint64(len(fx.d.Articles))
	var perRound []int64
	for range 4 {
		r := mrand.New(mrand.NewPCG(7, 7))
		zipf := mrand.NewZipf(r, 1.35, 1, n-1)
		q0 := fx.pg.Queries()
		for range 1500 {
			a := fx.d.Articles[n-1-zipf.Uint64()]
			switch x := r.IntN(10); {
			case x < 7:
				_, _ = fx.arts.Get(ctx, a.ID)
			case x < 8:
				_, _ = fx.arts.BySlug(ctx, a.Slug)
			case x < 9:
				_, _ = fx.arts.HomepageFeed(ctx, r.IntN(3))
			default:
				_, _ = fx.users.Profile(ctx, a.AuthorID)
			}
		}
		perRound = append(perRound, fx.pg.Queries()-q0)
	}
	t.Logf("database queries per round of 1500 reads: %v; hit rate %.1f%%", perRound, 100*fx.cache.Stats().HitRate())
	if perRound[0] < 100 {
		t.Fatalf("first round sent only %d queries; the workload is not exercising the source", perRound[0])
	}
	for i := 1; i < len(perRound); i++ {
		if perRound[i]*20 > perRound[0] {
			t.Fatalf("round %d sent %d queries, want under 5%% of the first round's %d: %v", i+1, perRound[i], perRound[0], perRound)
		}
	}
}

// TestStampede: many goroutines in several "instances" (Caches sharing the
// namespace) read one cold key at once; the database sees one query, or a
// couple when a miss reaches the load just after an earlier load filled the
// entry and released its lease (the runtime does not look at the entry again
// after taking the lease) — never one per goroutine.
func TestStampede(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	rdb := testRedis(t)
	insts := []*CachedArticles{fx.arts}
	for range 3 {
		insts = append(insts, NewCachedArticles(fx.pg, newCache(rdb, fx.ns)))
	}
	id := fx.d.Articles[10].ID
	q0 := fx.pg.Queries()
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			if a, err := insts[i%len(insts)].Get(ctx, id); err != nil || a.ID != id {
				t.Errorf("Get = %v, %v", a, err)
			}
		}()
	}
	start.Done()
	wg.Wait()
	q := fx.pg.Queries() - q0
	t.Logf("64 concurrent Gets of a cold key over 4 instances: %d database queries", q)
	if q < 1 || q > 3 {
		t.Fatalf("64 concurrent Gets of a cold key: %d database queries, want 1 (at most 3)", q)
	}
}

// TestConcurrentReadersAndWriters hammers a few hot articles with reads and
// updates from several instances, then checks that once the writes stop every
// cached read equals the database: no stale value was filled after a write.
func TestConcurrentReadersAndWriters(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	rdb := testRedis(t)
	insts := []*CachedArticles{fx.arts, NewCachedArticles(fx.pg, newCache(rdb, fx.ns))}
	hot := fx.d.Articles[len(fx.d.Articles)-8:]
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(uint64(w), 1))
			repo := insts[w%len(insts)]
			for i := range 300 {
				a := hot[r.IntN(len(hot))]
				if r.IntN(10) == 0 {
					a.Title = "w" + string(rune('a'+w)) + "-" + string(rune('a'+i%26))
					if err := repo.Update(ctx, &a); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				if _, err := repo.Get(ctx, a.ID); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, a := range hot {
		want, err := fx.pg.Get(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i, repo := range insts {
			got, err := repo.Get(ctx, a.ID)
			if err != nil || got.Title != want.Title {
				t.Fatalf("instance %d: cached article %d has title %q, database %q (%v)", i, a.ID, got.Title, want.Title, err)
			}
		}
	}
}

// ByIDs on PostgreSQL: one query for the ids the cache misses, entries shared
// with Get, writes seen by the next batch read.
func TestBatchReadsOnPostgres(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	arts := fx.d.Articles[len(fx.d.Articles)-6:]
	ids := []int64{arts[0].ID, arts[1].ID, arts[2].ID, 9_999_999}
	fx.expectQueries(t, 1, "Get of one", func() { _, _ = fx.arts.Get(ctx, arts[0].ID) })
	var got map[int64]*Article
	fx.expectQueries(t, 1, "ByIDs with one cached", func() {
		var err error
		if got, err = fx.arts.ByIDs(ctx, ids); err != nil {
			t.Fatal(err)
		}
	})
	if len(got) != 3 || got[arts[1].ID].Title != arts[1].Title || got[arts[1].ID].AuthorName == "" {
		t.Fatalf("ByIDs = %v", got)
	}
	fx.expectQueries(t, 0, "ByIDs again, and Get of a batch-filled id", func() {
		if got, _ = fx.arts.ByIDs(ctx, ids); len(got) != 3 {
			t.Fatalf("ByIDs = %v", got)
		}
		if _, err := fx.arts.Get(ctx, 9_999_999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the id ByIDs did not find: %v", err)
		}
	})
	up := *got[arts[2].ID]
	up.Title = "Corrected: " + up.Title
	if err := fx.arts.Update(ctx, &up); err != nil {
		t.Fatal(err)
	}
	fx.expectQueries(t, 1, "ByIDs after Update", func() { got, _ = fx.arts.ByIDs(ctx, ids) })
	if got[arts[2].ID].Title != up.Title || got[arts[0].ID].Title != arts[0].Title {
		t.Fatalf("after Update: %q", got[arts[2].ID].Title)
	}
	if err := fx.arts.WarmByIDs(ctx, []int64{arts[3].ID, arts[4].ID, arts[5].ID}); err != nil {
		t.Fatal(err)
	}
	fx.expectQueries(t, 0, "Gets of warmed ids", func() {
		for _, a := range arts[3:] {
			if v, err := fx.arts.Get(ctx, a.ID); err != nil || v.Title != a.Title {
				t.Fatal(v, err)
			}
		}
	})
}
