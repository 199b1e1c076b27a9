package runtime

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

type unionName string
type unionID int32

func TestUnionAppender(t *testing.T) {
	check := func(got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	check(UnionAppender[unionName]()(nil, "a:b"), string(AppendString(nil, "a:b")))
	check(UnionAppender[unionID]()(nil, -42), "-42")
	check(UnionAppender[uint8]()(nil, 255), "255")
	check(UnionAppender[int64]()(nil, -1<<63), "-9223372036854775808")
	check(UnionAppender[uint64]()(nil, 1<<64-1), "18446744073709551615")
	check(UnionAppender[bool]()([]byte("x:"), true), "x:true")
	appendName, buf := UnionAppender[unionName](), make([]byte, 0, 32)
	if n := testing.AllocsPerRun(100, func() { buf = appendName(buf[:0], "abc") }); n > 0 {
		t.Errorf("%v allocations", n)
	}
}

// A Spec.Shape that differs from SchemaOf (the result type changed after
// the file was generated) logs that the file is stale and moves the
// keyspace, so old entries are never decoded into the new type.
func TestStaleGeneratedShape(t *testing.T) {
	var logs bytes.Buffer
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	c := New(rdb, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer c.Close()
	r := c.Repo("shape", 1)
	type V struct{ A int }
	plain := NewKeyspace(r, Spec[V]{Template: "a:{}", Schema: "s", TTL: time.Minute})
	fresh := NewKeyspace(r, Spec[V]{Template: "a:{}", Schema: "s", Shape: SchemaOf[V](), TTL: time.Minute})
	if strings.Contains(logs.String(), "stale") || fresh.core.prefix != plain.core.prefix {
		t.Fatalf("a matching shape changed the keyspace or logged:\n%s", logs.String())
	}
	stale := NewKeyspace(r, Spec[V]{Template: "a:{}", Schema: "s", Shape: "0123456789abcdef", TTL: time.Minute})
	if !strings.Contains(logs.String(), "stale") || stale.core.prefix == plain.core.prefix {
		t.Fatalf("a stale shape: prefix %q (plain %q), logs:\n%s", stale.core.prefix, plain.core.prefix, logs.String())
	}
}
