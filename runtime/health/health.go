// Package health serves the state of runtime.Caches over HTTP: the
// Snapshot as JSON, and a small HTML page with the hit rate of every
// keyspace, the keyspaces with the most misses first, the circuit breaker,
// pending invalidations, the L1 and the consistency checker. It uses the
// standard library only.
//
//	http.Handle("/cache/", http.StripPrefix("/cache", health.Handler(cache)))
//
// GET …/ is the page (it refreshes itself every 5 seconds), GET …/json,
// any path ending in .json, ?format=json or Accept: application/json the
// JSON. Both always answer 200: the cache fails open, so a sick Redis is
// "degraded", never a reason to take the service out of rotation.
package health

import (
	"cmp"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cachegen/cachegen/runtime"
)

//go:embed page.html
var files embed.FS

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"pct": func(f float64) string { return formatPct(f) },
	"ms":  func(ms float64) string { return formatMs(ms) },
	"width": func(f float64) string {
		return strings.TrimRight(strings.TrimRight(formatFloat(f*100, 1), "0"), ".") + "%"
	},
}).ParseFS(files, "page.html"))

// Handler serves the state of the caches (one per namespace usually; each
// gets its own section).
func Handler(caches ...*runtime.Cache) http.Handler {
	return &handler{caches: caches}
}

type handler struct{ caches []*runtime.Cache }

// Report is what the handler serves.
type Report struct {
	Time   time.Time     `json:"time"`
	Status string        `json:"status"` // "ok", or "degraded" when a breaker is not closed or invalidations wait
	Caches []CacheReport `json:"caches"`
}

// CacheReport is one Cache.
type CacheReport struct {
	Namespace            string            `json:"namespace"`
	Status               string            `json:"status"`
	Breaker              string            `json:"breaker"` // closed, open, held
	PendingInvalidations int               `json:"pending_invalidations"`
	PendingOverflow      bool              `json:"pending_overflow,omitempty"`
	Local                LocalReport       `json:"local"`
	Verify               float64           `json:"verify_fraction"`
	HitRate              float64           `json:"hit_rate"`
	Totals               map[string]uint64 `json:"totals"`
	Keyspaces            []KeyspaceReport  `json:"keyspaces"` // most misses first
}

// LocalReport is the L1.
type LocalReport struct {
	Enabled bool   `json:"enabled"`
	Live    bool   `json:"live"`
	Entries int    `json:"entries"`
	Bytes   uint64 `json:"bytes"`
}

// KeyspaceReport is one keyspace.
type KeyspaceReport struct {
	Name         string            `json:"name"`
	Repo         string            `json:"repo"`
	Version      int               `json:"version"`
	Template     string            `json:"template"`
	Method       string            `json:"method,omitempty"`
	Local        bool              `json:"local"`
	HitRate      float64           `json:"hit_rate"`
	Hits         uint64            `json:"hits"`
	Misses       uint64            `json:"misses"`
	Stats        map[string]uint64 `json:"stats"`
	LoadLatency  Latency           `json:"load_latency"`
	RedisLatency Latency           `json:"redis_latency"`
}

// Latency summarises a histogram (quantiles are bucket upper bounds).
type Latency struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
}

func latency(h runtime.Histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Latency{Count: h.Count(), MeanMs: ms(h.Mean()), P50Ms: ms(h.Quantile(0.5)), P99Ms: ms(h.Quantile(0.99))}
}

// Build makes the report of the caches (what the handler serves).
func Build(caches ...*runtime.Cache) Report {
	r := Report{Time: time.Now().UTC(), Status: "ok"}
	for _, c := range caches {
		s := c.Snapshot()
		cr := CacheReport{Namespace: s.Namespace, Status: "ok", Breaker: s.Breaker.String(),
			PendingInvalidations: s.PendingInvalidations, PendingOverflow: s.PendingOverflow,
			Local:  LocalReport{Enabled: s.Local.Enabled, Live: s.Local.Live, Entries: s.Local.Entries, Bytes: s.Local.Bytes},
			Verify: s.Verify, HitRate: s.Totals.HitRate(), Totals: s.Totals.Map(), Keyspaces: []KeyspaceReport{}}
		if s.Breaker != runtime.BreakerClosed || s.PendingInvalidations > 0 || s.PendingOverflow {
			cr.Status, r.Status = "degraded", "degraded"
		}
		for _, k := range s.Keyspaces {
			cr.Keyspaces = append(cr.Keyspaces, KeyspaceReport{Name: k.Name(), Repo: k.Repo, Version: k.Version,
				Template: k.Template, Method: k.Method, Local: k.Local, HitRate: k.Stats.HitRate(),
				Hits: k.Stats.Hits(), Misses: k.Stats.Get(runtime.EventMiss), Stats: k.Stats.Map(),
				LoadLatency: latency(k.LoadLatency), RedisLatency: latency(k.RedisLatency)})
		}
		slices.SortStableFunc(cr.Keyspaces, func(a, b KeyspaceReport) int {
			return cmp.Or(cmp.Compare(b.Misses, a.Misses), cmp.Compare(a.Name, b.Name))
		})
		r.Caches = append(r.Caches, cr)
	}
	if r.Caches == nil {
		r.Caches = []CacheReport{}
	}
	return r
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rep := Build(h.caches...)
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, rep)
}

func wantsJSON(r *http.Request) bool {
	if strings.HasSuffix(r.URL.Path, "/json") || strings.HasSuffix(r.URL.Path, ".json") || r.URL.Query().Get("format") == "json" {
		return true
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

func formatFloat(f float64, prec int) string { return strconv.FormatFloat(f, 'f', prec, 64) }

func formatPct(f float64) string { return formatFloat(f*100, 1) + " %" }

func formatMs(ms float64) string {
	switch {
	case ms == 0:
		return "–"
	case ms < 1:
		return formatFloat(ms*1000, 0) + " µs"
	}
	return formatFloat(ms, 1) + " ms"
}
