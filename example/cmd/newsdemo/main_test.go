package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachegen/cachegen/example/news"
	"github.com/cachegen/cachegen/internal/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
)

func smallConfig() config {
	return config{
		schema:      news.DefaultSchema,
		articles:    500,
		requests:    3000,
		concurrency: 8,
		writePct:    5,
		zipfS:       1.35,
		stampede:    50,
		processes:   4,
		seed:        1,
		// A loaded CI machine under -race must not turn this into a test of
		// the fail-open path (Redis calls over budget are served from the source).
		timeout: 2 * time.Second,
	}
}

// checkReport checks the table: both runs, fewer queries with the cache, and
// the stampede collapsed to a few source calls.
func checkReport(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{"without cache", "with cache", "cache hit rate", "database queries", "latency p99", "stampede"} {
		if !strings.Contains(out, want) {
			t.Fatalf("report lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`database queries\s+(\d+)\s+(\d+)`).FindStringSubmatch(out)
	if m == nil || len(m[2]) > len(m[1]) || (len(m[2]) == len(m[1]) && m[2] >= m[1]) {
		t.Fatalf("the cache did not reduce database queries:\n%s", out)
	}
	r := regexp.MustCompile(`of which reads\s+(\d+)\s+(\d+)`).FindStringSubmatch(out)
	if r == nil {
		t.Fatalf("report lacks the read-query row:\n%s", out)
	}
	if direct, _ := strconv.Atoi(r[1]); direct == 0 {
		t.Fatalf("no reads counted:\n%s", out)
	} else if cached, _ := strconv.Atoi(r[2]); cached >= direct {
		t.Fatalf("the cache did not reduce read queries:\n%s", out)
	}
	s := regexp.MustCompile(`stampede: 50 concurrent Gets, cold key\s+(\d+)\s+(\d+)`).FindStringSubmatch(out)
	if s == nil || s[1] != "50" || len(s[2]) != 1 {
		t.Fatalf("stampede row wrong:\n%s", out)
	}
	if strings.Contains(out, "errors ") {
		t.Fatalf("requests failed:\n%s", out)
	}
}

func TestDemoEmbedded(t *testing.T) {
	cfg := smallConfig()
	cfg.embedded = true
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "in-process Redis (miniredis)") {
		t.Fatalf("no fallback line:\n%s", out.String())
	}
	checkReport(t, out.String())
	t.Log("\n" + out.String())
}

// TestDemoFallback: unreachable servers lead to the embedded default, said
// in one line.
func TestDemoFallback(t *testing.T) {
	cfg := smallConfig()
	cfg.redisAddr = "127.0.0.1:1" // nothing listens on port 1
	cfg.databaseURL = "postgres://postgres@127.0.0.1:1/test"
	cfg.requests = 500
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if !strings.Contains(lines[0], "no Redis at 127.0.0.1:1") || !strings.Contains(lines[0], "embedded default") {
		t.Fatalf("first line should explain the fallback:\n%s", out.String())
	}
}

func TestDemoServers(t *testing.T) {
	cfg := smallConfig()
	cfg.redisAddr = testenv.NeedRedis(t)
	cfg.databaseURL = testenv.NeedPostgres(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg.schema = "cachegen_news_demotest_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		pool, err := pgxpool.New(context.Background(), cfg.databaseURL)
		if err == nil {
			_ = news.DropSchema(context.Background(), pool, cfg.schema)
			pool.Close()
		}
	})
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "PostgreSQL") || strings.Contains(out.String(), "miniredis") {
		t.Fatalf("did not run on the servers:\n%s", out.String())
	}
	checkReport(t, out.String())
	t.Log("\n" + out.String())
}

// TestDemoHTTP: with -http the demo keeps serving the health page, its JSON
// and /metrics after the report, until its context ends; the report has
// the consistency checker's line.
func TestDemoHTTP(t *testing.T) {
	cfg := smallConfig()
	cfg.embedded = true
	cfg.verify = 0.05
	cfg.httpAddr = "127.0.0.1:0"
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, out, io.Discard) }()
	re := regexp.MustCompile(`health page: (http://\S+/)`)
	var base string
	for deadline := time.Now().Add(2 * time.Minute); base == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("run returned before serving: %v\n%s", err, out.String())
		default:
		}
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("no health page announced:\n%s", out.String())
	}
	report := out.String()
	checkReport(t, report)
	if !regexp.MustCompile(`inconsistent reads: 0 of \d+ verified`).MatchString(report) {
		t.Errorf("no checker line, or inconsistencies:\n%s", report)
	}
	for path, want := range map[string]string{"": "cache health", "json": `"keyspaces"`, "metrics": "cachegen_hits_total"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("/%s: %d, lacks %q", path, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop with its context")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
