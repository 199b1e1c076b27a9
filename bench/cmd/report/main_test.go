package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// row returns the cells of the table row for benchmark name, keyed by the
// header of its table; a ratio column of a server figure is named after it
// ("redis-µs/op ×hw"), the main figure's ratio is plain "×hw".
func row(t *testing.T, out, name string) map[string]string {
	t.Helper()
	var head []string
	for line := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if cells[0] == "benchmark" {
			head = head[:0]
			figure := ""
			for _, h := range cells {
				switch {
				case strings.HasPrefix(h, "×") && figure != "":
					head = append(head, figure+" "+h)
				default:
					head = append(head, h)
					if h != "±%" && !strings.HasPrefix(h, "×") {
						figure = h
					}
				}
				if h == "time/op" || h == memoryUnit {
					figure = ""
				}
			}
			continue
		}
		if cells[0] == name {
			m := map[string]string{}
			for i, c := range cells {
				m[head[i]] = c
			}
			return m
		}
	}
	t.Fatalf("no row %s in\n%s", name, out)
	return nil
}

func TestTable(t *testing.T) {
	f, err := os.Open("testdata/sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := parse(f, io.Discard)
	var sb strings.Builder
	r.print(&sb)
	out := sb.String()
	t.Log("\n" + out)

	for _, tc := range []struct {
		name string
		want map[string]string
	}{
		{"Hit/cachegen", map[string]string{
			"runs": "2", "time/op": "55.0 µs", "±%": "±9%", "×hw": "1.38×",
			"redis-µs/op": "5.50", "redis-µs/op ×hw": "11×", "redis-µs/op ×get": "22×",
			"redis-cpu-µs/op": "21", "redis-cpu-µs/op ×hw": "1.31×", "redis-cpu-µs/op ×get": "1.4×",
			"rtt/op": "1", "Δallocs": "+4", "other": "0 src-reads/op",
		}},
		{"Hit/handwritten", map[string]string{"×hw": "1.00×", "redis-µs/op ×hw": "1.00×", "redis-µs/op ×get": "2×"}},
		{"Hit/raw-get", map[string]string{"redis-µs/op ×get": "1.00×", "redis-µs/op": "0.25", "Δallocs": "-6"}},
		{"Workload/cachegen", map[string]string{
			"redis-µs/req": "10", "redis-µs/req ×hw": "4×", "redis-µs/req ×get": "40×",
			"rtt/req": "1.28", "other": "0.252 dbq/req",
		}},
		{"Memory/cachegen", map[string]string{
			"B/entry": "495", "×hw": "1.5×", "other": "1 keys/entry", "fill time": "3.73 s",
		}},
	} {
		got := row(t, out, tc.name)
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %q = %q, want %q", tc.name, k, got[k], v)
			}
		}
	}
}
