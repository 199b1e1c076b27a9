// Command report turns `go test -bench` output into a table with a ratio
// column against the hand-written baseline.
//
//	go test -run '^$' -bench . -benchmem ./... | go run ./cmd/report
//
// It copies its input to stdout as it arrives (so a long run shows progress),
// then prints one Markdown table per top-level benchmark. With -count > 1 each
// figure is the median of the runs and ±% is half the min–max spread relative
// to the median. The baseline of a row is the row in the same group (same name
// up to the last '/') whose last element starts with "handwritten"; ×hw is
// ns/op divided by the baseline's, Δallocs the difference in allocs/op.
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

var fixed = map[string]bool{"ns/op": true, "B/op": true, "allocs/op": true}

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
	for _, t := range tops {
		fmt.Fprintf(w, "\n### %s\n\n", t)
		fmt.Fprintln(w, "| benchmark | runs | time/op | ±% | ×hw | B/op | allocs/op | Δallocs | other |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|---|")
		for _, n := range r.order {
			if top(n) != t {
				continue
			}
			v := r.vals[n]
			ns := median(v["ns/op"])
			ratio, dAllocs := "", ""
			if b := r.baseline(n); b != "" && b != n {
				bns := median(r.vals[b]["ns/op"])
				ratio = fmt.Sprintf("%.3g×", ns/bns)
				if a, ok := v["allocs/op"]; ok {
					if ba, ok := r.vals[b]["allocs/op"]; ok {
						dAllocs = fmt.Sprintf("%+.0f", median(a)-median(ba))
					}
				}
			} else if b == n {
				ratio = "1.00×"
			}
			var other []string
			for _, u := range r.units[n] {
				if !fixed[u] {
					other = append(other, fmt.Sprintf("%s %s", num(median(v[u])), u))
				}
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n",
				strings.TrimPrefix(n, "Benchmark"), len(v["ns/op"]), dur(ns), spread(v["ns/op"]), ratio,
				opt(v, "B/op"), opt(v, "allocs/op"), dAllocs, strings.Join(other, ", "))
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
