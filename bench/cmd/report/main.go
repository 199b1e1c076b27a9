// Command report turns `go test -bench` output into a table with ratio
// columns against the hand-written baseline.
//
//	go test -run '^$' -bench . -benchmem ./... | go run ./cmd/report
//
// It copies its input to stdout as it arrives (so a long run shows progress),
// then prints one Markdown table per top-level benchmark. With -count > 1 each
// figure is the median of the runs and ±% is half the min–max spread of the
// main figure relative to its median. The baseline of a row is the row in the
// same group (same name up to the last '/') whose last element starts with
// "handwritten"; ×hw is a figure divided by the baseline's, Δallocs the
// difference in allocs/op.
//
// The main figure is time/op, or B/entry in a group that reports it (the
// memory benchmark, whose time is shown as "fill time"). The Redis server
// figures get columns of their own when a group reports them: redis-µs/op
// (command time) and redis-cpu-µs/op (server CPU), each with ×hw and ×get —
// against the first row named raw-get* (a plain GET, the floor) — and rtt/op;
// per request (…/req) in the workload. Every other custom metric goes to the
// "other" column.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	quiet := flag.Bool("q", false, "do not copy the input to stdout")
	flag.Parse()
	var in io.Reader = os.Stdin
	if flag.NArg() > 0 {
		var rs []io.Reader
		for _, name := range flag.Args() {
			f, err := os.Open(name)
			if err != nil {
				fmt.Fprintln(os.Stderr, "report:", err)
				os.Exit(1)
			}
			defer f.Close()
			rs = append(rs, f)
		}
		in = io.MultiReader(rs...)
	}
	var echo io.Writer = os.Stdout
	if *quiet {
		echo = io.Discard
	}
	r := parse(in, echo)
	fmt.Println()
	r.print(os.Stdout)
	if r.failed {
		os.Exit(1)
	}
}

// result holds every value seen per benchmark and unit.
type result struct {
	order  []string                        // benchmark names, first-seen order
	units  map[string][]string             // name -> units, first-seen order
	vals   map[string]map[string][]float64 // name -> unit -> values
	header []string                        // goos/goarch/cpu/pkg lines
	skips  []string
	failed bool
}

var procs = regexp.MustCompile(`-\d+$`)

func parse(in io.Reader, echo io.Writer) *result {
	r := &result{units: map[string][]string{}, vals: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lastSkip string
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(echo, line)
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "cpu:"), strings.HasPrefix(line, "goos:"), strings.HasPrefix(line, "goarch:"):
			if !slices.Contains(r.header, line) {
				r.header = append(r.header, line)
			}
		case strings.HasPrefix(trim, "--- SKIP:"):
			if lastSkip != "" {
				r.skips = append(r.skips, strings.TrimPrefix(trim, "--- SKIP: ")+": "+lastSkip)
			}
			lastSkip = ""
		case strings.HasPrefix(trim, "--- FAIL"), strings.HasPrefix(trim, "FAIL"):
			r.failed = true
		case strings.Contains(trim, "skipped:"):
			lastSkip = trim[strings.Index(trim, "skipped:")+len("skipped:"):]
			lastSkip = strings.TrimSpace(lastSkip)
		case strings.HasPrefix(line, "Benchmark"):
			r.add(strings.Fields(line))
		}
	}
	return r
}

func (r *result) add(f []string) {
	// name iterations value unit [value unit]...
	if len(f) < 4 || len(f)%2 != 0 {
		return
	}
	if _, err := strconv.Atoi(f[1]); err != nil {
		return
	}
	name := procs.ReplaceAllString(f[0], "")
	if r.vals[name] == nil {
		r.order = append(r.order, name)
		r.vals[name] = map[string][]float64{}
	}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			continue
		}
		u := f[i+1]
		if _, seen := r.vals[name][u]; !seen {
			r.units[name] = append(r.units[name], u)
		}
		r.vals[name][u] = append(r.vals[name][u], v)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func spread(xs []float64) string {
	if len(xs) < 2 {
		return ""
	}
	m := median(xs)
	if m == 0 {
		return ""
	}
	return fmt.Sprintf("±%.0f%%", 100*(slices.Max(xs)-slices.Min(xs))/2/m)
}

func split(name string) (group, leaf string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return name, ""
	}
	return name[:i], name[i+1:]
}

func top(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return name
}

func (r *result) baseline(name string) string {
	group, _ := split(name)
	for _, n := range r.order {
		g, leaf := split(n)
		if g == group && strings.HasPrefix(leaf, "handwritten") {
			return n
		}
	}
	return ""
}

// floor is the row the Redis server figures are also compared with: the
// first row whose last element starts with "raw-get" (Hit/raw-get, a plain
// GET), wherever it is.
func (r *result) floor() string {
	for _, n := range r.order {
		if _, leaf := split(n); strings.HasPrefix(leaf, "raw-get") {
			return n
		}
	}
	return ""
}

// A server figure shown in a column of its own, with ratios. The benchmarks
// report it per op, or per request (Workload).
type serverFigure struct {
	units   []string // the unit, per op or per request
	vsHW    bool     // ×hw column
	vsFloor bool     // ×get column
}

var serverFigures = []serverFigure{
	{units: []string{"redis-µs/op", "redis-µs/req"}, vsHW: true, vsFloor: true},
	{units: []string{"redis-cpu-µs/op", "redis-cpu-µs/req"}, vsHW: true, vsFloor: true},
	{units: []string{"rtt/op", "rtt/req"}},
}

// memoryUnit makes a group a memory table: B/entry is its main figure.
const memoryUnit = "B/entry"

var fixed = map[string]bool{"ns/op": true, "B/op": true, "allocs/op": true}

// table is one group's columns: header cells, alignment, and the cells of
// one row.
type table struct {
	head  []string
	align []string
	cells []func(n string) string
}

func (t *table) col(head, align string, cell func(n string) string) {
	t.head = append(t.head, head)
	t.align = append(t.align, align)
	t.cells = append(t.cells, cell)
}

// ratio is x/base as "0.86×", "" when either is missing or base is 0.
func ratio(x, base float64, ok bool) string {
	if !ok || math.IsNaN(x) || math.IsNaN(base) || base == 0 {
		return ""
	}
	return fmt.Sprintf("%.3g×", x/base)
}

// value is the median of name's unit, ok=false when name has none.
func (r *result) value(name, unit string) (float64, bool) {
	if name == "" {
		return math.NaN(), false
	}
	xs, ok := r.vals[name][unit]
	if !ok {
		return math.NaN(), false
	}
	return median(xs), true
}

func (r *result) groupHas(names []string, unit string) bool {
	for _, n := range names {
		if _, ok := r.vals[n][unit]; ok {
			return true
		}
	}
	return false
}

func (r *result) tableFor(names []string) *table {
	t := &table{}
	shown := map[string]bool{}
	t.col("benchmark", "---", func(n string) string { return strings.TrimPrefix(n, "Benchmark") })
	t.col("runs", "--:", func(n string) string {
		return strconv.Itoa(len(r.vals[n][r.mainUnit(names)]))
	})
	main := r.mainUnit(names)
	shown[main] = true
	if main == memoryUnit {
		t.col(memoryUnit, "--:", func(n string) string { return opt(r.vals[n], memoryUnit) })
	} else {
		t.col("time/op", "--:", func(n string) string { return dur(median(r.vals[n]["ns/op"])) })
	}
	t.col("±%", "--:", func(n string) string { return spread(r.vals[n][main]) })
	t.col("×hw", "--:", func(n string) string { return r.hwRatio(n, main) })
	floor := r.floor()
	for _, f := range serverFigures {
		for _, u := range f.units {
			if !r.groupHas(names, u) {
				continue
			}
			shown[u] = true
			t.col(u, "--:", func(n string) string { return opt(r.vals[n], u) })
			if f.vsHW {
				t.col("×hw", "--:", func(n string) string { return r.hwRatio(n, u) })
			}
			if f.vsFloor && floor != "" {
				t.col("×get", "--:", func(n string) string {
					if n == floor {
						return "1.00×"
					}
					x, ok := r.value(n, u)
					base, bok := r.value(floor, strings.TrimSuffix(strings.TrimSuffix(u, "/req"), "/op")+"/op")
					return ratio(x, base, ok && bok)
				})
			}
		}
	}
	if main == memoryUnit {
		t.col("fill time", "--:", func(n string) string { return dur(median(r.vals[n]["ns/op"])) })
	} else {
		t.col("B/op", "--:", func(n string) string { return opt(r.vals[n], "B/op") })
		t.col("allocs/op", "--:", func(n string) string { return opt(r.vals[n], "allocs/op") })
		t.col("Δallocs", "--:", func(n string) string {
			b := r.baseline(n)
			if b == "" || b == n {
				return ""
			}
			a, ok := r.value(n, "allocs/op")
			ba, bok := r.value(b, "allocs/op")
			if !ok || !bok {
				return ""
			}
			return fmt.Sprintf("%+.0f", a-ba)
		})
	}
	t.col("other", "---", func(n string) string {
		var other []string
		for _, u := range r.units[n] {
			if !fixed[u] && !shown[u] {
				other = append(other, fmt.Sprintf("%s %s", num(median(r.vals[n][u])), u))
			}
		}
		return strings.Join(other, ", ")
	})
	return t
}

// mainUnit is B/entry for a memory group, ns/op otherwise.
func (r *result) mainUnit(names []string) string {
	if r.groupHas(names, memoryUnit) {
		return memoryUnit
	}
	return "ns/op"
}

// hwRatio is name's unit against its handwritten baseline's: "1.00×" for the
// baseline itself, "" without one.
func (r *result) hwRatio(name, unit string) string {
	b := r.baseline(name)
	if b == "" {
		return ""
	}
	x, ok := r.value(name, unit)
	if !ok {
		return ""
	}
	if b == name {
		return "1.00×"
	}
	base, bok := r.value(b, unit)
	return ratio(x, base, bok)
}

func (r *result) print(w io.Writer) {
	for _, h := range r.header {
		fmt.Fprintln(w, h)
	}
	var tops []string
	for _, n := range r.order {
		if t := top(n); !slices.Contains(tops, t) {
			tops = append(tops, t)
		}
	}
	for _, tp := range tops {
		var names []string
		for _, n := range r.order {
			if top(n) == tp {
				names = append(names, n)
			}
		}
		t := r.tableFor(names)
		fmt.Fprintf(w, "\n### %s\n\n", tp)
		fmt.Fprintln(w, "| "+strings.Join(t.head, " | ")+" |")
		fmt.Fprintln(w, "|"+strings.Join(t.align, "|")+"|")
		for _, n := range names {
			cells := make([]string, len(t.cells))
			for i, cell := range t.cells {
				cells[i] = cell(n)
			}
			fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
		}
	}
	if len(r.skips) > 0 {
		fmt.Fprintln(w, "\nskipped:")
		for _, s := range r.skips {
			fmt.Fprintln(w, "  "+s)
		}
	}
	if r.failed {
		fmt.Fprintln(w, "\nsome benchmarks FAILED; see the output above")
	}
}

func opt(v map[string][]float64, unit string) string {
	xs, ok := v[unit]
	if !ok {
		return ""
	}
	return num(median(xs))
}

func num(x float64) string {
	switch {
	case x == math.Trunc(x) && math.Abs(x) < 1e15:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case math.Abs(x) >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case math.Abs(x) >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

func dur(ns float64) string {
	switch {
	case math.IsNaN(ns):
		return ""
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}
