package news

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Latency is the simulated cost of one Memory statement: a primary-key
// lookup, a feed query (ORDER BY … LIMIT/OFFSET), a write.
type Latency struct {
	Lookup, Feed, Write time.Duration
}

// DefaultLatency is what a database on another machine in the same data
// centre typically costs.
var DefaultLatency = Latency{Lookup: 500 * time.Microsecond, Feed: 2 * time.Millisecond, Write: 2 * time.Millisecond}

// Memory implements Articles and Users in memory with a simulated latency per
// statement. It stands in for PostgreSQL when the demo finds none, and behaves
// like PG (same errors, same feed order).
type Memory struct {
	latency Latency
	queries atomic.Int64

	mu       sync.RWMutex
	articles map[int64]Article
	slugs    map[string]int64
	users    map[int64]User
	order    []int64 // article ids, oldest first (published_at, id)
	nextID   int64
}

var (
	_ Articles = (*Memory)(nil)
	_ Users    = (*Memory)(nil)
)

// NewMemory returns a Memory holding d.
func NewMemory(d *Dataset, latency Latency) *Memory {
	m := &Memory{
		latency:  latency,
		articles: make(map[int64]Article, len(d.Articles)),
		slugs:    make(map[string]int64, len(d.Articles)),
		users:    make(map[int64]User, len(d.Users)),
	}
	for _, u := range d.Users {
		m.users[u.ID] = u
	}
	for _, a := range d.Articles { // ordered by published_at, id
		m.articles[a.ID] = a
		m.slugs[a.Slug] = a.ID
		m.order = append(m.order, a.ID)
		m.nextID = max(m.nextID, a.ID)
	}
	return m
}

// Queries returns the number of statements served so far.
func (m *Memory) Queries() int64 { return m.queries.Load() }

func (m *Memory) wait(ctx context.Context, d time.Duration) error {
	m.queries.Add(1)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Memory) withAuthor(a Article) *Article {
	a.AuthorName = m.users[a.AuthorID].Name
	return &a
}

// Get implements Articles.
func (m *Memory) Get(ctx context.Context, id int64) (*Article, error) {
	if err := m.wait(ctx, m.latency.Lookup); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, ok := m.articles[id]
	if !ok {
		return nil, ErrNotFound
	}
	return m.withAuthor(a), nil
}

// ByIDs implements Articles: one simulated lookup for all ids.
func (m *Memory) ByIDs(ctx context.Context, ids []int64) (map[int64]*Article, error) {
	if err := m.wait(ctx, m.latency.Lookup); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[int64]*Article, len(ids))
	for _, id := range ids {
		if a, ok := m.articles[id]; ok {
			out[id] = m.withAuthor(a)
		}
	}
	return out, nil
}

// BySlug implements Articles.
func (m *Memory) BySlug(ctx context.Context, slug string) (*Article, error) {
	if err := m.wait(ctx, m.latency.Lookup); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.slugs[slug]
	if !ok {
		return nil, ErrNotFound
	}
	return m.withAuthor(m.articles[id]), nil
}

func (m *Memory) feed(ctx context.Context, page int, category string) ([]Summary, error) {
	if page < 0 {
		return nil, fmt.Errorf("news: negative page %d", page)
	}
	if err := m.wait(ctx, m.latency.Feed); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Summary
	skip := page * PageSize
	for i := len(m.order) - 1; i >= 0 && len(out) < PageSize; i-- {
		a := m.articles[m.order[i]]
		if category != "" && a.Category != category {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		out = append(out, Summary{ID: a.ID, Slug: a.Slug, Title: a.Title, Summary: a.Summary,
			Category: a.Category, AuthorID: a.AuthorID, PublishedAt: a.PublishedAt})
	}
	return out, nil
}

// HomepageFeed implements Articles.
func (m *Memory) HomepageFeed(ctx context.Context, page int) ([]Summary, error) {
	return m.feed(ctx, page, "")
}

// CategoryFeed implements Articles.
func (m *Memory) CategoryFeed(ctx context.Context, category string, page int) ([]Summary, error) {
	if category == "" {
		return nil, nil
	}
	return m.feed(ctx, page, category)
}

// Publish implements Articles.
func (m *Memory) Publish(ctx context.Context, a *Article) error {
	if err := m.wait(ctx, m.latency.Write); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.slugs[a.Slug]; dup {
		return fmt.Errorf("news: duplicate slug %q", a.Slug)
	}
	if _, ok := m.users[a.AuthorID]; !ok {
		return fmt.Errorf("news: unknown author %d", a.AuthorID)
	}
	m.nextID++
	now := time.Now().UTC().Truncate(time.Microsecond)
	a.ID, a.PublishedAt, a.UpdatedAt = m.nextID, now, now
	stored := *a
	stored.AuthorName = ""
	m.articles[a.ID] = stored
	m.slugs[a.Slug] = a.ID
	m.order = append(m.order, a.ID)
	return nil
}

// Update implements Articles.
func (m *Memory) Update(ctx context.Context, a *Article) error {
	if err := m.wait(ctx, m.latency.Write); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.articles[a.ID]
	if !ok {
		return ErrNotFound
	}
	cur.Title, cur.Summary, cur.Body = a.Title, a.Summary, a.Body
	cur.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	m.articles[a.ID] = cur
	return nil
}

// Profile implements Users.
func (m *Memory) Profile(ctx context.Context, id int64) (*User, error) {
	if err := m.wait(ctx, m.latency.Lookup); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, ok := m.users[id]
	if !ok {
		return nil, ErrNotFound
	}
	return &u, nil
}

// UpdateProfile implements Users.
func (m *Memory) UpdateProfile(ctx context.Context, u *User) (*User, error) {
	if err := m.wait(ctx, m.latency.Write); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.users[u.ID]
	if !ok {
		return nil, ErrNotFound
	}
	for _, o := range m.users {
		if o.ID != u.ID && o.Email == u.Email {
			return nil, fmt.Errorf("news: duplicate email %q", u.Email)
		}
	}
	cur.Name, cur.Email, cur.Bio = u.Name, u.Email, u.Bio
	cur.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	m.users[u.ID] = cur
	out := cur
	return &out, nil
}
