package news

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema is the PostgreSQL schema the demo uses. Every table of the
// example lives in its own schema, so it can share a database with anything.
const DefaultSchema = "cachegen_news"

//go:embed schema.sql
var schemaSQL string

// Migrate creates schema (if needed) and the example's tables and indexes in
// it. It is idempotent and safe to run concurrently.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	return inSchemaTx(ctx, pool, schema, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, schemaSQL); err != nil {
			return fmt.Errorf("news: apply schema.sql: %w", err)
		}
		return nil
	})
}

// DropSchema drops schema and everything in it (tests clean up with it).
func DropSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	_, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// inSchemaTx runs f in a transaction that holds an advisory lock on schema
// (migrations and seeding of one schema never interleave), has created the
// schema and has it as search_path.
func inSchemaTx(ctx context.Context, pool *pgxpool.Pool, schema string, f func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "cachegen/example/news:"+schema); err != nil {
		return err
	}
	s := pgx.Identifier{schema}.Sanitize()
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+s); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+s); err != nil {
		return err
	}
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// PG implements Articles and Users over PostgreSQL with pgx v5. It counts
// every statement it sends, so the demo and the tests can show the database
// load with and without the cache.
type PG struct {
	pool    *pgxpool.Pool
	queries atomic.Int64

	getSQL, byIDsSQL, bySlugSQL, homeSQL, categorySQL, publishSQL, updateSQL string
	profileSQL, updateProfileSQL                                             string
}

var (
	_ Articles = (*PG)(nil)
	_ Users    = (*PG)(nil)
)

// NewPG returns the source over the tables Migrate created in schema.
func NewPG(pool *pgxpool.Pool, schema string) *PG {
	s := pgx.Identifier{schema}.Sanitize() + "."
	const articleCols = `a.id, a.slug, a.title, a.summary, a.body, a.category, a.author_id, u.name, a.published_at, a.updated_at`
	const summaryCols = `id, slug, title, summary, category, author_id, published_at`
	return &PG{
		pool:        pool,
		getSQL:      `SELECT ` + articleCols + ` FROM ` + s + `articles a JOIN ` + s + `users u ON u.id = a.author_id WHERE a.id = $1`,
		byIDsSQL:    `SELECT ` + articleCols + ` FROM ` + s + `articles a JOIN ` + s + `users u ON u.id = a.author_id WHERE a.id = ANY($1)`,
		bySlugSQL:   `SELECT ` + articleCols + ` FROM ` + s + `articles a JOIN ` + s + `users u ON u.id = a.author_id WHERE a.slug = $1`,
		homeSQL:     `SELECT ` + summaryCols + ` FROM ` + s + `articles ORDER BY published_at DESC, id DESC LIMIT $1 OFFSET $2`,
		categorySQL: `SELECT ` + summaryCols + ` FROM ` + s + `articles WHERE category = $1 ORDER BY published_at DESC, id DESC LIMIT $2 OFFSET $3`,
		publishSQL: `INSERT INTO ` + s + `articles (slug, title, summary, body, category, author_id)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, published_at, updated_at`,
		updateSQL:  `UPDATE ` + s + `articles SET title = $2, summary = $3, body = $4, updated_at = now() WHERE id = $1`,
		profileSQL: `SELECT id, name, email, bio, updated_at FROM ` + s + `users WHERE id = $1`,
		updateProfileSQL: `UPDATE ` + s + `users SET name = $2, email = $3, bio = $4, updated_at = now()
			WHERE id = $1 RETURNING id, name, email, bio, updated_at`,
	}
}

// Queries returns the number of statements sent to PostgreSQL so far.
func (p *PG) Queries() int64 { return p.queries.Load() }

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

func (p *PG) article(ctx context.Context, sql string, arg any) (*Article, error) {
	p.queries.Add(1)
	var a Article
	err := p.pool.QueryRow(ctx, sql, arg).Scan(&a.ID, &a.Slug, &a.Title, &a.Summary, &a.Body,
		&a.Category, &a.AuthorID, &a.AuthorName, &a.PublishedAt, &a.UpdatedAt)
	if err != nil {
		return nil, notFound(err)
	}
	return &a, nil
}

// Get implements Articles.
func (p *PG) Get(ctx context.Context, id int64) (*Article, error) {
	return p.article(ctx, p.getSQL, id)
}

// ByIDs implements Articles: one statement for all ids.
func (p *PG) ByIDs(ctx context.Context, ids []int64) (map[int64]*Article, error) {
	p.queries.Add(1)
	rows, err := p.pool.Query(ctx, p.byIDsSQL, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*Article, len(ids))
	var a Article
	_, err = pgx.ForEachRow(rows, []any{&a.ID, &a.Slug, &a.Title, &a.Summary, &a.Body,
		&a.Category, &a.AuthorID, &a.AuthorName, &a.PublishedAt, &a.UpdatedAt}, func() error {
		cp := a
		out[a.ID] = &cp
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// BySlug implements Articles.
func (p *PG) BySlug(ctx context.Context, slug string) (*Article, error) {
	return p.article(ctx, p.bySlugSQL, slug)
}

func (p *PG) feed(ctx context.Context, page int, sql string, args ...any) ([]Summary, error) {
	if page < 0 {
		return nil, fmt.Errorf("news: negative page %d", page)
	}
	p.queries.Add(1)
	rows, err := p.pool.Query(ctx, sql, append(args, PageSize, page*PageSize)...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Summary, error) {
		var s Summary
		err := r.Scan(&s.ID, &s.Slug, &s.Title, &s.Summary, &s.Category, &s.AuthorID, &s.PublishedAt)
		return s, err
	})
}

// HomepageFeed implements Articles.
func (p *PG) HomepageFeed(ctx context.Context, page int) ([]Summary, error) {
	return p.feed(ctx, page, p.homeSQL)
}

// CategoryFeed implements Articles.
func (p *PG) CategoryFeed(ctx context.Context, category string, page int) ([]Summary, error) {
	return p.feed(ctx, page, p.categorySQL, category)
}

// Publish implements Articles.
func (p *PG) Publish(ctx context.Context, a *Article) error {
	p.queries.Add(1)
	return p.pool.QueryRow(ctx, p.publishSQL, a.Slug, a.Title, a.Summary, a.Body, a.Category, a.AuthorID).
		Scan(&a.ID, &a.PublishedAt, &a.UpdatedAt)
}

// Update implements Articles.
func (p *PG) Update(ctx context.Context, a *Article) error {
	p.queries.Add(1)
	tag, err := p.pool.Exec(ctx, p.updateSQL, a.ID, a.Title, a.Summary, a.Body)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// Profile implements Users.
func (p *PG) Profile(ctx context.Context, id int64) (*User, error) {
	p.queries.Add(1)
	var u User
	if err := p.pool.QueryRow(ctx, p.profileSQL, id).Scan(&u.ID, &u.Name, &u.Email, &u.Bio, &u.UpdatedAt); err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// UpdateProfile implements Users.
func (p *PG) UpdateProfile(ctx context.Context, u *User) (*User, error) {
	p.queries.Add(1)
	var out User
	err := p.pool.QueryRow(ctx, p.updateProfileSQL, u.ID, u.Name, u.Email, u.Bio).
		Scan(&out.ID, &out.Name, &out.Email, &out.Bio, &out.UpdatedAt)
	if err != nil {
		return nil, notFound(err)
	}
	return &out, nil
}
