// Package e2e is the package the end-to-end test copies, generates with the
// real cachegen binary, builds, and runs against Redis.
package e2e

import (
	"context"
	"errors"
	"sync"
)

var ErrNotFound = errors.New("user not found")

type User struct {
	ID      int64
	Email   string
	Name    string
	Profile *Profile
}

type Profile struct{ Org string }

type Article struct {
	ID    int64
	Title string
}

// Users is the source of truth for users.
//
//go:generate go tool cachegen
//cache:repo prefix=users version=1 ttl=10m negative=30s
type Users interface {
	//cache:get key="user:{id}" ttl=30m notfound=ErrNotFound tags="user:{id}"
	Get(ctx context.Context, id int64) (*User, error)

	//cache:get key="user:email:{email}" tags="user:{result.ID},email:{result.Email}"
	ByEmail(ctx context.Context, email string) (*User, error)

	//cache:get key="org:{u.Profile.Org}"
	Org(ctx context.Context, u *User) ([]User, error)

	//cache:get key="feed:{page}" ttl=1m tags="feed"
	Feed(ctx context.Context, page int) ([]Article, error)

	//cache:put key="user:{result.ID}" evict="user:email:{u.Email}" tags="feed"
	Save(ctx context.Context, u *User) (*User, error)

	//cache:evict keys="user:{u.ID}" tags="user:{u.ID}"
	Update(ctx context.Context, u *User) error

	//cache:evict patterns="feed:*"
	Publish(ctx context.Context, a Article) error

	Delete(ctx context.Context, id int64) error
}

// Source is an in-memory Users that counts its calls.
type Source struct {
	mu       sync.Mutex
	users    map[int64]*User
	articles []Article
	calls    map[string]int
	fail     error // returned by writes when set
}

func NewSource() *Source {
	return &Source{users: map[int64]*User{}, calls: map[string]int{}}
}

func (s *Source) count(m string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[m]++
}

// Calls returns how often method m reached the source.
func (s *Source) Calls(m string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[m]
}

func (s *Source) Get(ctx context.Context, id int64) (*User, error) {
	s.count("Get")
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return nil, ErrNotFound
	}
	c := *u
	return &c, nil
}

func (s *Source) ByEmail(ctx context.Context, email string) (*User, error) {
	s.count("ByEmail")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Email == email {
			c := *u
			return &c, nil
		}
	}
	return nil, nil
}

func (s *Source) Org(ctx context.Context, u *User) ([]User, error) {
	s.count("Org")
	return nil, nil
}

func (s *Source) Feed(ctx context.Context, page int) ([]Article, error) {
	s.count("Feed")
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Article(nil), s.articles...), nil
}

func (s *Source) Save(ctx context.Context, u *User) (*User, error) {
	s.count("Save")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	c := *u
	s.users[u.ID] = &c
	return &c, nil
}

func (s *Source) Update(ctx context.Context, u *User) error {
	s.count("Update")
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *u
	s.users[u.ID] = &c // the write lands even when it reports failure
	return s.fail
}

func (s *Source) Publish(ctx context.Context, a Article) error {
	s.count("Publish")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.articles = append(s.articles, a)
	return nil
}

func (s *Source) Delete(ctx context.Context, id int64) error {
	s.count("Delete")
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, id)
	return nil
}

// SetFail makes writes return err.
func (s *Source) SetFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// Put changes the source behind the cache's back.
func (s *Source) Put(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = &u
}
