package news

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Dataset is the deterministic content of the news site: the same n always
// gives the same rows, for PostgreSQL (Seed) and for Memory alike.
// Articles[i] has ID i+1; a higher id is a newer article.
type Dataset struct {
	Categories []Category
	Users      []User
	Articles   []Article
}

// The seeded site's shape.
const (
	SeedAuthors = 200
)

var seedCategories = []Category{
	{"world", "World"}, {"politics", "Politics"}, {"business", "Business"}, {"technology", "Technology"},
	{"science", "Science"}, {"sports", "Sports"}, {"culture", "Culture"}, {"opinion", "Opinion"},
}

var (
	firstNames = strings.Fields("Ada Grace Alan Edsger Barbara Ken Dennis Margaret Linus Radia Donald Frances John Sophie Niklaus Leslie Tony Hedy Katherine Guido")
	lastNames  = strings.Fields("Lovelace Hopper Turing Dijkstra Liskov Thompson Ritchie Hamilton Torvalds Perlman Knuth Allen Backus Wilson Wirth Lamport Hoare Lamarr Johnson Rossum")
	words      = strings.Fields(`market climate election startup vaccine league budget court orbit festival
		river policy museum stadium senate battery harbor summit drought galaxy theatre tariff robot island
		coalition merger rally archive satellite novel championship reform energy border treaty pipeline
		protocol quantum census harvest parliament exhibition transfer strike forecast research network`)
)

// SeedEpoch is the publication time of the first seeded article; article i
// is published 15 minutes after article i-1.
var SeedEpoch = time.Date(2025, 1, 1, 6, 0, 0, 0, time.UTC)

// NewDataset returns n articles by SeedAuthors authors in 8 categories.
func NewDataset(n int) *Dataset {
	r := rand.New(rand.NewPCG(2025, uint64(n)))
	d := &Dataset{Categories: append([]Category(nil), seedCategories...)}
	for i := range SeedAuthors {
		first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
		id := int64(i + 1)
		d.Users = append(d.Users, User{
			ID:        id,
			Name:      first + " " + last,
			Email:     strings.ToLower(first+"."+last) + "." + strconv.FormatInt(id, 10) + "@example.com",
			Bio:       "Writes about " + words[r.IntN(len(words))] + " and " + words[r.IntN(len(words))] + ".",
			UpdatedAt: SeedEpoch,
		})
	}
	sentence := func(k int) []string {
		w := make([]string, k)
		for j := range w {
			w[j] = words[r.IntN(len(words))]
		}
		return w
	}
	for i := range n {
		id := int64(i + 1)
		tw := sentence(4 + r.IntN(4))
		title := strings.Join(tw, " ")
		title = strings.ToUpper(title[:1]) + title[1:]
		author := &d.Users[r.IntN(len(d.Users))]
		var body strings.Builder
		for p := range 6 {
			if p > 0 {
				body.WriteString("\n\n")
			}
			body.WriteString(strings.Join(sentence(25), " "))
			body.WriteByte('.')
		}
		at := SeedEpoch.Add(time.Duration(i) * 15 * time.Minute)
		d.Articles = append(d.Articles, Article{
			ID:          id,
			Slug:        strings.Join(tw, "-") + "-" + strconv.FormatInt(id, 10),
			Title:       title,
			Summary:     strings.Join(sentence(20), " ") + ".",
			Body:        body.String(),
			Category:    d.Categories[r.IntN(len(d.Categories))].Slug,
			AuthorID:    author.ID,
			AuthorName:  author.Name,
			PublishedAt: at,
			UpdatedAt:   at,
		})
	}
	return d
}

// Seed replaces the content of the example's tables in schema with d, in one
// transaction (COPY), and resets the id sequences past it. Running it again
// gives the same state: it is how the demo starts every phase from the same
// data, and takes well under a second for a few thousand articles.
func Seed(ctx context.Context, pool *pgxpool.Pool, schema string, d *Dataset) error {
	return inSchemaTx(ctx, pool, schema, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "TRUNCATE articles, users, categories RESTART IDENTITY"); err != nil {
			return fmt.Errorf("news: seed: %w", err)
		}
		copies := []struct {
			table string
			cols  []string
			rows  [][]any
		}{
			{"categories", []string{"slug", "name"}, rowsOf(d.Categories, func(c Category) []any { return []any{c.Slug, c.Name} })},
			{"users", []string{"id", "name", "email", "bio", "updated_at"}, rowsOf(d.Users, func(u User) []any {
				return []any{u.ID, u.Name, u.Email, u.Bio, u.UpdatedAt}
			})},
			{"articles", []string{"id", "slug", "title", "summary", "body", "category", "author_id", "published_at", "updated_at"},
				rowsOf(d.Articles, func(a Article) []any {
					return []any{a.ID, a.Slug, a.Title, a.Summary, a.Body, a.Category, a.AuthorID, a.PublishedAt, a.UpdatedAt}
				})},
		}
		for _, c := range copies {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
				return fmt.Errorf("news: seed %s: %w", c.table, err)
			}
		}
		for _, t := range []string{"users", "articles"} {
			if _, err := tx.Exec(ctx, "SELECT setval(pg_get_serial_sequence($1, 'id'), GREATEST((SELECT max(id) FROM "+t+"), 1))", t); err != nil {
				return fmt.Errorf("news: seed %s sequence: %w", t, err)
			}
		}
		return nil
	})
}

func rowsOf[T any](xs []T, f func(T) []any) [][]any {
	rows := make([][]any, len(xs))
	for i, x := range xs {
		rows[i] = f(x)
	}
	return rows
}
