// Package binding has writes with two parameters of one type, where the
// tags and keys name the second: a placeholder bound to the wrong parameter
// still compiles, so binding_test.go runs the generated code against Redis
// and checks which entries each write drops.
package binding

import (
	"context"
	"sync"
)

type Member struct {
	Org, User string
	Role      string
}

//cache:repo prefix=members ttl=1m
type Members interface {
	//cache:get key="member:{org}:{user}" tags="user:{user}"
	Get(ctx context.Context, org, user string) (*Member, error)

	//cache:get key="byuser:{user}" tags="user:{user}"
	ByUser(ctx context.Context, user string) ([]Member, error)

	// The key names both, the tag the second.
	//cache:put key="member:{org}:{user}" value=m tags="user:{user}"
	Set(ctx context.Context, org, user string, m *Member) error

	// The keys name them in the other order than the parameters.
	//cache:evict keys="member:{from}:{to},byuser:{to}" tags="user:{to}"
	Move(ctx context.Context, to, from string) error
}

// Source is an in-memory Members that counts its calls.
type Source struct {
	mu      sync.Mutex
	members map[[2]string]Member
	calls   map[string]int
}

func NewSource() *Source {
	return &Source{members: map[[2]string]Member{}, calls: map[string]int{}}
}

func (s *Source) Calls(m string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[m]
}

func (s *Source) Get(ctx context.Context, org, user string) (*Member, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["Get"]++
	m, ok := s.members[[2]string{org, user}]
	if !ok {
		return nil, nil
	}
	return &m, nil
}

func (s *Source) ByUser(ctx context.Context, user string) ([]Member, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["ByUser"]++
	var out []Member
	for k, m := range s.members {
		if k[1] == user {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *Source) Set(ctx context.Context, org, user string, m *Member) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["Set"]++
	s.members[[2]string{org, user}] = *m
	return nil
}

func (s *Source) Move(ctx context.Context, to, from string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["Move"]++
	return nil
}
