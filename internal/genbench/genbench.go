// Package genbench writes the synthetic package the generator's speed is
// measured on, for the gen and cmd/cachegen benchmarks alike.
package genbench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// PerFile is how many interfaces one source file holds.
const PerFile = 20

// WriteMany writes a package "many" of n repository interfaces into dir, in
// files of PerFile, each with two gets (one with a result tag), a put and an
// evict, and an uncached method.
func WriteMany(dir string, n int) error {
	var b strings.Builder
	flush := func(file int) error {
		return os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.go", file)), []byte(b.String()), 0o666)
	}
	for i := 0; i < n; i++ {
		if i%PerFile == 0 {
			if i > 0 {
				if err := flush(i/PerFile - 1); err != nil {
					return err
				}
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
	return flush((n - 1) / PerFile)
}

// Touch gives the package's first file a new trailing comment, as an edit
// does: go has nothing of the package in its build cache any more.
func Touch(dir string, stamp int) error {
	path := filepath.Join(dir, "f0.go")
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if i := strings.Index(string(src), "\n// edit "); i >= 0 {
		src = src[:i+1]
	}
	return os.WriteFile(path, fmt.Appendf(src, "// edit %d\n", stamp), 0o666)
}

// ReportCPU reports CPU per operation as cpu-ms/op, from now until the
// returned func runs (time spent with the timer stopped included: the
// benchmarks only write files then).
func ReportCPU(b *testing.B) func() {
	start := CPU()
	return func() {
		b.ReportMetric(float64(CPU()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	}
}

// Edited runs run once per iteration, each after Touch (outside the timer),
// and reports cpu-ms/op.
func Edited(b *testing.B, dir string, run func()) {
	defer ReportCPU(b)()
	stamp := int(time.Now().UnixNano() % 1e9)
	for b.Loop() {
		b.StopTimer()
		stamp++
		if err := Touch(dir, stamp); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		run()
	}
}
