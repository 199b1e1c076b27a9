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
	return writeFiles(dir, "f", n, func(b *strings.Builder, file int) {
		b.WriteString("package many\n\nimport (\n\t\"context\"\n\t\"time\"\n)\n\n")
	}, func(b *strings.Builder, i int) {
		fmt.Fprintf(b, `type T%[1]d struct {
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
	})
}

// writeFiles writes n repositories into files <prefix>0.go, <prefix>1.go, …
// of PerFile each: head starts a file, repo writes the i-th repository.
func writeFiles(dir, prefix string, n int, head func(b *strings.Builder, file int), repo func(b *strings.Builder, i int)) error {
	var b strings.Builder
	for file := 0; file*PerFile < n; file++ {
		b.Reset()
		head(&b, file)
		for i := file * PerFile; i < min(n, (file+1)*PerFile); i++ {
			repo(&b, i)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s%d.go", prefix, file)), []byte(b.String()), 0o666); err != nil {
			return err
		}
	}
	return nil
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

// WriteValues writes a package "values" of n repository interfaces into dir,
// in files of PerFile, whose results are all non-pointer types of their own
// (a struct value, a slice of it, a map of it), each repository with its own
// struct: n distinct result types of each kind. The runtime's generic code
// would be instantiated once per such type (its GC shape) if its protocol
// were generic over the result; this package is what the cost of compiling
// generated code is measured on (TestInstantiationsIndependentOfTypes,
// docs/runtime.md "Code layout").
func WriteValues(dir string, n int) error {
	return writeFiles(dir, "v", n, func(b *strings.Builder, file int) {
		b.WriteString("package values\n\nimport (\n\t\"context\"\n\t\"errors\"\n\t\"time\"\n)\n\n")
		fmt.Fprintf(b, "var errNotFound%d = errors.New(\"not found\")\n\n", file)
	}, func(b *strings.Builder, i int) {
		fmt.Fprintf(b, `type V%[1]d struct {
	ID   int64
	Name string
	Tags []string
	At   time.Time
}

//cache:repo prefix=v%[1]d ttl=1m negative=5s notfound=errNotFound%[2]d
type VR%[1]d interface {
	//cache:get key="v:{id}" tags="name:{result.Name}"
	Get(ctx context.Context, id int64) (V%[1]d, error)
	//cache:get key="v:{ids}" tags="name:{result.Name}"
	GetMany(ctx context.Context, ids []int64) (map[int64]V%[1]d, error)
	//cache:get key="l:{name}:{page}" tags="list" local=10s refresh=80
	List(ctx context.Context, name string, page int) ([]V%[1]d, error)
	//cache:get key="m:{id}" stale=1m
	Index(ctx context.Context, id int64) (map[string]V%[1]d, error)
	//cache:put key="v:{result.ID}" tags="list"
	Save(ctx context.Context, v V%[1]d) (V%[1]d, error)
	//cache:evict keys="v:{id}" patterns="l:*"
	Delete(ctx context.Context, id int64) error
}

`, i, i/PerFile)
	})
}
