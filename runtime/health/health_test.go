package health_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/cachegen/cachegen/runtime"
	"github.com/cachegen/cachegen/runtime/health"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type item struct{ ID int64 }

func get(ctx context.Context, ks *runtime.Keyspace[*item], id int64) (*item, error) {
	var buf [64]byte
	rd := runtime.LookupBytes(ctx, ks, runtime.AppendInt(append(ks.AppendPrefix(buf[:0]), "k:"...), id))
	if rd.Hit && !rd.Background {
		return rd.Value, rd.Err
	}
	return runtime.Load(ctx, rd, runtime.Loader[*item]{Load: func(context.Context) (*item, error) { return &item{ID: id}, nil }})
}

// Fixture fills two keyspaces: "hot" with many hits, "cold" with the most misses.
func fixture(t *testing.T) (*runtime.Cache, string) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.NeedRedis(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	ns := "health-" + hex.EncodeToString(b[:])
	c := runtime.New(rdb, runtime.WithNamespace(ns), runtime.WithTimeout(2*time.Second),
		runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(func() { c.Close() })
	repo := c.Repo("shop", 1)
	hot := runtime.NewKeyspace(repo, runtime.Spec[*item]{Template: "hot:{}", Schema: "s", TTL: time.Minute, Method: "Hot"})
	cold := runtime.NewKeyspace(repo, runtime.Spec[*item]{Template: "cold:{}", Schema: "s", TTL: time.Minute, Method: "Cold"})
	ctx := context.Background()
	for i := range 10 {
		if _, err := get(ctx, hot, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := get(ctx, cold, int64(i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c, ns
}

func TestJSON(t *testing.T) {
	c, ns := fixture(t)
	srv := httptest.NewServer(health.Handler(c))
	defer srv.Close()
	for _, u := range []string{"/json", "/health.json", "/?format=json"} {
		resp, err := http.Get(srv.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		var rep health.Report
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %v %d %s", u, err, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if rep.Status != "ok" || len(rep.Caches) != 1 {
			t.Fatalf("%s: %+v", u, rep)
		}
		cr := rep.Caches[0]
		if cr.Namespace != ns || cr.Breaker != "closed" || cr.PendingInvalidations != 0 || len(cr.Keyspaces) != 2 {
			t.Fatalf("%s: %+v", u, cr)
		}
		first, second := cr.Keyspaces[0], cr.Keyspaces[1]
		if first.Method != "Cold" || first.Misses != 10 || second.Method != "Hot" || second.Hits < 8 {
			t.Errorf("%s: keyspaces not by misses: %+v", u, cr.Keyspaces)
		}
		if second.HitRate < 0.8 || first.HitRate != 0 || cr.HitRate <= 0 {
			t.Errorf("%s: hit rates %v %v %v", u, first.HitRate, second.HitRate, cr.HitRate)
		}
		if first.LoadLatency.Count != 10 || second.RedisLatency.Count != 10 || second.RedisLatency.P50Ms <= 0 {
			t.Errorf("%s: latencies %+v %+v", u, first.LoadLatency, second.RedisLatency)
		}
	}
	// Accept: application/json on the page's path too.
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("Accept: application/json answered %s", resp.Header.Get("Content-Type"))
	}
}

func TestPage(t *testing.T) {
	c, ns := fixture(t)
	rec := httptest.NewRecorder()
	health.Handler(c).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{"<!doctype html>", ns, "breaker", "closed", "pending invalidations", "hit rate",
		"shop.Cold", "shop.Hot", "most misses first"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Index(body, "shop.Cold") > strings.Index(body, "shop.Hot") {
		t.Error("the keyspace with the most misses is not first")
	}
	rec = httptest.NewRecorder()
	health.Handler(c).ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST answered %d", rec.Code)
	}
}

// TestDegraded: a Cache whose invalidations cannot be delivered is
// "degraded", with its breaker held and its pending invalidation, and the
// page still answers 200.
func TestDegraded(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	c := runtime.New(rdb, runtime.WithTimeout(20*time.Millisecond), runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(func() { c.Close() })
	_ = c.Invalidate(context.Background(), runtime.Invalidation{Tags: []string{"x"}})
	rep := health.Build(c)
	if rep.Status != "degraded" || rep.Caches[0].Breaker != "held" || rep.Caches[0].PendingInvalidations != 1 {
		t.Errorf("%+v", rep)
	}
	rec := httptest.NewRecorder()
	health.Handler(c).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "held") {
		t.Errorf("%d", rec.Code)
	}
}
