package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

type user struct {
	ID    int64
	Name  string
	Email string
}

var errNotFound = errors.New("user not found")

// fakeUsers is an in-memory source that counts its calls.
type fakeUsers struct {
	calls atomic.Int64
	rows  map[int64]*user
	delay time.Duration
}

func (f *fakeUsers) get(ctx context.Context, id int64) (*user, error) {
	f.calls.Add(1)
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if u, ok := f.rows[id]; ok {
		cp := *u
		return &cp, nil
	}
	return nil, fmt.Errorf("user %d: %w", id, errNotFound)
}

func userSpace(c *Cache) *Keyspace[*user] {
	return NewKeyspace(c.Repo("users", 1), userSpec())
}

func userSpec() Spec[*user] {
	return Spec[*user]{
		Template: "user:{}", Schema: "s1", TTL: time.Minute, Negative: 10 * time.Second,
		Jitter: Percent(10), NotFound: errNotFound, IsNil: func(u *user) bool { return u == nil },
	}
}

func userKey(ks *Keyspace[*user], id int64) Key {
	var buf [128]byte
	return ks.Key(AppendInt(append(ks.AppendPrefix(buf[:0]), "user:"...), id))
}

// getUser is what generated code does for a get method.
func getUser(ctx context.Context, ks *Keyspace[*user], src *fakeUsers, id int64) (*user, error) {
	key := userKey(ks, id)
	if v, hit, err := lookup3(ctx, ks, key); hit {
		return v, err
	}
	return loadVia(ctx, ks, key, Loader[*user]{
		Load: func(ctx context.Context) (*user, error) { return src.get(ctx, id) },
		Tags: []string{string(AppendInt([]byte("user:"), id))},
	})
}

func TestHitMissNegative(t *testing.T) {
	backends(t, testHitMissNegative)
}

func testHitMissNegative(t *testing.T, rdb redis.UniversalClient) {
	c := newTestCache(t, rdb)
	ks := userSpace(c)
	src := &fakeUsers{rows: map[int64]*user{1: {ID: 1, Name: "Ada"}}}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		u, err := getUser(ctx, ks, src, 1)
		if err != nil || u == nil || u.Name != "Ada" {
			t.Fatalf("get 1: %v %v", u, err)
		}
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("source calls = %d, want 1", n)
	}
	for i := 0; i < 3; i++ {
		u, err := getUser(ctx, ks, src, 2)
		if !errors.Is(err, errNotFound) || u != nil {
			t.Fatalf("get 2: %v %v", u, err)
		}
		if err.Error() != "user 2: user not found" {
			t.Fatalf("cached error text %q", err.Error())
		}
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("source calls = %d, want 2", n)
	}
	s := c.Stats()
	if s.Get(EventHit) != 2 || s.Get(EventNegativeHit) != 2 || s.Get(EventFill) != 2 {
		t.Fatalf("stats %v", s)
	}
}

// TestDeletePattern: SCAN+UNLINK over every master, leases included, and a
// value spliced into the glob cannot widen it.
func TestDeletePattern(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := newTestCache(t, rdb)
		ks := NewKeyspace(c.Repo("posts", 1), Spec[string]{Template: "post:{}", Schema: "s", TTL: time.Minute})
		key := func(slug string) Key {
			return ks.Key(AppendString(append(ks.AppendPrefix(nil), "post:"...), slug))
		}
		slugs := []string{"a*", "a1", "a2", "b1", "a:x", "[a]"}
		for i := 0; i < 50; i++ { // enough keys to spread over all three masters
			slugs = append(slugs, fmt.Sprint("c", i))
		}
		for _, s := range slugs {
			Put(ctx, ks, key(s), s, nil, Invalidation{})
		}
		// "a*" as a value matches only the key whose slug is literally "a*".
		n, err := ks.core.repo.DeletePattern(ctx, "post:"+string(AppendString(nil, "a*")))
		if err != nil || n != 1 {
			t.Fatalf("deleted %d, %v; want exactly the key of slug a*", n, err)
		}
		n, err = ks.core.repo.DeletePattern(ctx, "post:c*")
		if err != nil || n != 50 {
			t.Fatalf("deleted %d, %v; want 50", n, err)
		}
		for _, s := range slugs {
			_, hit, _ := lookup3(ctx, ks, key(s))
			gone := s == "a*" || s[0] == 'c'
			if hit == gone {
				t.Fatalf("slug %q: hit=%v after delete", s, hit)
			}
		}
	})
}

// TestMarkersExpire: invalidation state is bounded — a marker is trimmed
// once it is older than MaxTTL (+ lease TTL + a minute), since every entry
// filled before its bump has expired by then; entries are capped at MaxTTL.
func TestMarkersExpire(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	c := newTestCache(t, rdb, WithMaxTTL(time.Hour))
	if err := c.Invalidate(ctx, Invalidation{Tags: []string{"t1"}}); err != nil {
		t.Fatal(err)
	}
	st := currentState(c)
	old := float64(st.seq) - float64((time.Hour + 3*time.Second + 2*time.Minute).Microseconds())
	young := float64(st.seq) - float64((time.Hour - time.Minute).Microseconds())
	if err := rdb.ZAdd(ctx, c.state.marks, redis.Z{Score: old, Member: memberOf(1)}, redis.Z{Score: young, Member: memberOf(2)}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(ctx, Invalidation{Tags: []string{"t2"}}); err != nil {
		t.Fatal(err)
	}
	got := map[uint64]bool{}
	for _, m := range rdb.ZRange(ctx, c.state.marks, 0, -1).Val() {
		if id, ok := idOf(m); ok {
			got[id] = true
		}
	}
	if got[1] || !got[2] || !got[markerID(markTag, "t1")] || !got[markerID(markTag, "t2")] {
		t.Fatalf("after trimming: %v (want 2, t1, t2; not 1)", got)
	}
	// A process with a longer MaxTTL on the same namespace raises the
	// retention for everyone: its entries may depend on older markers.
	long := New(rdb, WithNamespace(strings.TrimSuffix(c.ns, ":")), WithLogger(quietLogger()), WithMaxTTL(48*time.Hour))
	if err := long.Invalidate(ctx, Invalidation{Tags: []string{"t3"}}); err != nil {
		t.Fatal(err)
	}
	st = currentState(c)
	mid := float64(st.seq) - float64((2 * time.Hour).Microseconds())
	if err := rdb.ZAdd(ctx, c.state.marks, redis.Z{Score: mid, Member: memberOf(3)}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(ctx, Invalidation{Tags: []string{"t4"}}); err != nil { // the 1h process trims
		t.Fatal(err)
	}
	if _, err := rdb.ZScore(ctx, c.state.marks, memberOf(3)).Result(); err != nil {
		t.Fatalf("a marker within the longer retention was trimmed: %v", err)
	}
	// Entries are capped at MaxTTL, so none can outlive the markers they need.
	if got := Percent(10).ttl(2*time.Hour, time.Hour, 12345); got != time.Hour {
		t.Fatalf("ttl not capped: %v", got)
	}
}
