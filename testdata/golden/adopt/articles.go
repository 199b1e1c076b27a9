// Package adopt has repository interfaces as real projects write them,
// annotated without changing a signature: cursor pagination and page +
// total count reads (more than one result), kratos-style unnamed
// parameters, filters and long texts in keys (hashed placeholders).
package adopt

import (
	"context"
	"time"
)

type Author struct {
	ID        int64
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

type Article struct {
	ID        int64
	Title     string
	Content   string
	Author    Author
	UpdatedAt time.Time
	CreatedAt time.Time
}

// ArticleRepository is the clean-architecture template's interface.
//
//cache:repo prefix=articles ttl=5m negative=30s notfound=ErrNotFound
type ArticleRepository interface {
	// Fetch pages with a cursor: the articles and the next cursor are one entry.
	//cache:get key="fetch:{cursor}:{num}" tags="articles"
	Fetch(ctx context.Context, cursor string, num int64) (res []Article, nextCursor string, err error)
	//cache:get key="article:{id}" tags="article:{id}"
	GetByID(ctx context.Context, id int64) (Article, error)
	// A title can be long: the key holds its hash.
	//cache:get key="title:{title#}" tags="articles"
	GetByTitle(ctx context.Context, title string) (Article, error)
	//cache:evict keys="article:{ar.ID}" tags="articles"
	Update(ctx context.Context, ar *Article) error
	//cache:evict tags="articles"
	Store(ctx context.Context, a *Article) error
	//cache:evict keys="article:{id}" tags="articles"
	Delete(ctx context.Context, id int64) error
}

type Filter struct {
	Status   []string
	Labels   map[string]string
	Owner    *int64
	Page     int
	PageSize int
}

type Task struct {
	ID     int64
	Title  string
	Status string
	Due    *time.Time
}

// TaskRepo is a service template's: a filter struct, page and total count.
//
//cache:repo prefix=tasks ttl=1m
type TaskRepo interface {
	//cache:get key="list:{f#}" tags="tasks"
	List(ctx context.Context, f Filter) ([]Task, int, error)
	// The owner's filter and one of its fields, hashed apart.
	//cache:get key="owned:{owner}:{f.Status#}" tags="tasks"
	Owned(ctx context.Context, owner int64, f *Filter) ([]Task, error)
	//cache:evict tags="tasks"
	Create(ctx context.Context, t Task) error
}

type Greeter struct {
	Hello string
	At    time.Time
}

// GreeterRepo is the kratos layout's: its parameters have no names.
//
//cache:repo prefix=greeter ttl=10m negative=1m notfound=ErrUserNotFound
type GreeterRepo interface {
	//cache:put key="greeter:{result.Hello}"
	Save(context.Context, *Greeter) (*Greeter, error)
	//cache:evict keys="greeter:{$2.Hello}"
	Update(context.Context, *Greeter) (*Greeter, error)
	//cache:get key="greeter:{$2}"
	FindByID(context.Context, string) (*Greeter, error)
	//cache:get key="hello:{$2}:{$3}" ignore=$4
	ListByHello(context.Context, string, int, bool) ([]*Greeter, error)
	ListAll(context.Context) ([]*Greeter, error)
}
