// Package news is the example of this repository: the read side of a news
// site — articles, their authors and categories — over PostgreSQL, with the
// repository interfaces annotated for cachegen.
//
// The interfaces (Articles in articles.go, Users in users.go) are the source
// of truth. PG implements them with pgx v5, Memory implements them in memory
// (with a simulated database latency, for the demo's embedded fallback), and
// cachegen generates CachedArticles and CachedUsers (articles_cache.go,
// users_cache.go), which serve reads from Redis and call the wrapped
// implementation only on a miss.
package news

// One directive for the package: cachegen processes every file of it.
//go:generate go tool cachegen

import (
	"errors"
	"time"
)

// ErrNotFound is returned for an unknown article id or slug, or user id. The
// cached repositories cache it (negative caching): repeated reads of an id
// that does not exist do not reach the database until the negative TTL ends.
var ErrNotFound = errors.New("news: not found")

// PageSize is the number of summaries in one feed page.
const PageSize = 20

// Article is one published article, with its author's name joined in.
type Article struct {
	ID          int64
	Slug        string
	Title       string
	Summary     string
	Body        string
	Category    string // Category.Slug
	AuthorID    int64
	AuthorName  string // users.name of AuthorID, joined by the source
	PublishedAt time.Time
	UpdatedAt   time.Time
}

// Summary is an article as listed in a feed.
type Summary struct {
	ID          int64
	Slug        string
	Title       string
	Summary     string
	Category    string
	AuthorID    int64
	PublishedAt time.Time
}

// User is a registered user; authors are users.
type User struct {
	ID        int64
	Name      string
	Email     string
	Bio       string
	UpdatedAt time.Time
}

// Category groups articles; feeds can be filtered by it.
type Category struct {
	Slug string
	Name string
}
