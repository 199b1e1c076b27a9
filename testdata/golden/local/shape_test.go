package local

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/runtime"
)

// The shapes the generator predicted for every result type of this case
// (Spec.Shape) are what runtime.SchemaOf finds: no constructor logs that its
// generated file is stale. (A result type changed after generating is
// caught the same way: runtime's TestStaleGeneratedShape.)
func TestShapesMatch(t *testing.T) {
	var logs bytes.Buffer
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	c := runtime.New(rdb, runtime.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer c.Close()
	NewCachedArticles(nil, c)
	NewCachedDrafts(nil, c)
	NewCachedStore[string, int, int32](nil, c)
	NewCachedPages(nil, c)
	if strings.Contains(logs.String(), "stale") {
		t.Fatalf("a predicted shape differs from runtime.SchemaOf:\n%s", logs.String())
	}
	if !strings.Contains(string(must(t, "local_cache.go")), "Shape:") {
		t.Fatal("no Spec.Shape generated")
	}
	// Every instantiated result of Pages has its shape predicted, but the
	// one with a struct literal as type argument.
	if n := strings.Count(string(must(t, "pages_cache.go")), "Shape:"); n != 6 {
		t.Fatalf("pages_cache.go predicts %d shapes, want 6", n)
	}
}

func must(t *testing.T, name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
