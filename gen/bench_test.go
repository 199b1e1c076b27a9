package gen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// manyInterfaces writes a package of n repository interfaces (in files of
// 20), each with gets, a put and an evict, into a scratch directory.
func manyInterfaces(tb testing.TB, n int) string {
	tb.Helper()
	dir, err := os.MkdirTemp("../testdata", "scratch-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i%20 == 0 {
			if i > 0 {
				os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.go", i/20-1)), []byte(b.String()), 0o666)
			}
			b.Reset()
			b.WriteString("package many\n\nimport (\n\t\"context\"\n\t\"time\"\n)\n\n")
		}
		fmt.Fprintf(&b, `type T%[1]d struct {
	ID    int64
	Name  string
	Tags  []string
	Owner *O%[1]d
	At    time.Time
}

type O%[1]d struct{ ID int64; Email string }

//cache:repo prefix=r%[1]d ttl=1m negative=5s
type R%[1]d interface {
	//cache:get key="t:{id}" tags="owner:{result.Owner.ID}"
	Get(ctx context.Context, id int64) (*T%[1]d, error)
	//cache:get key="n:{name}:{page}" tags="list"
	ByName(ctx context.Context, name string, page int) ([]T%[1]d, error)
	//cache:put key="t:{result.ID}" tags="list"
	Save(ctx context.Context, t *T%[1]d) (*T%[1]d, error)
	//cache:evict keys="t:{id}" patterns="n:*"
	Delete(ctx context.Context, id int64) error
	Count(ctx context.Context) (int, error)
}

`, i)
	}
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.go", (n-1)/20)), []byte(b.String()), 0o666)
	abs, _ := filepath.Abs(dir)
	return abs
}

// BenchmarkGenerate200 generates 200 interfaces: loading, checking and
// rendering (go list and type checking included).
func BenchmarkGenerate200(b *testing.B) {
	dir := manyInterfaces(b, 200)
	for b.Loop() {
		outs, err := Generate(Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if len(outs) != 10 {
			b.Fatalf("%d outputs", len(outs))
		}
	}
}

// TestGenerate200Fast: 200 interfaces in under 0.5 s on a quiet machine.
// Only reported (a loaded CI machine is not quiet); set CACHEGEN_SPEED=1 to
// fail above the bound.
func TestGenerate200Fast(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := manyInterfaces(t, 200)
	if _, err := Generate(Config{Dir: dir}); err != nil { // warm the build cache
		t.Fatal(err)
	}
	best := time.Hour
	for range 3 {
		start := time.Now()
		if _, err := Generate(Config{Dir: dir}); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	t.Logf("200 interfaces: %v", best)
	if best > 500*time.Millisecond && os.Getenv("CACHEGEN_SPEED") == "1" {
		t.Errorf("200 interfaces took %v, want < 0.5s", best)
	}
}
