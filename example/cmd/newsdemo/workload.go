package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachegen/cachegen/example/news"
	"github.com/cachegen/cachegen/runtime"
	"github.com/redis/go-redis/v9"
)

// workload is the request mix. Reads (the rest after writes):
//
//	70 % Get by id (Zipf over articles, newest hottest; 1.5 % of them unknown ids)
//	 8 % BySlug (Zipf), 10 % HomepageFeed (Zipf over 10 pages),
//	 6 % CategoryFeed (uniform category, Zipf over 5 pages), 6 % Profile (Zipf over authors)
//
// Writes: 60 % Update of an article (Zipf: popular articles get edited),
// 20 % Publish, 20 % UpdateProfile.
type workload struct {
	cfg  config
	d    *news.Dataset
	runs atomic.Int64
}

func newWorkload(cfg config, d *news.Dataset) *workload { return &workload{cfg: cfg, d: d} }

// result is what one run measured.
type result struct {
	label         string
	requests      int64
	reads, writes int64
	errors        int64
	firstErr      error
	queries       int64
	elapsed       time.Duration
	lat           []time.Duration // sorted
	articleReads  []int64         // Get/BySlug reads per article index
	stats         runtime.Stats   // cached run only
	verifyCalls   uint64          // the consistency checker's source calls (cached run)
	stampedeCalls int64
	redisErr      string // the first Redis error of the cached run
	// The first second of the run: what a cold (or warmed) cache costs
	// right after a deploy.
	firstReqs, firstQueries int64
	warmTook                time.Duration // warmed run only
	warmQueries             int64
}

// firstWindow is the start of a run the report shows on its own.
const firstWindow = time.Second

func (r *result) percentile(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * p)
	return r.lat[i]
}

// unknownBase is where the ids of articles that do not exist start: a few
// dead links that bots and old bookmarks keep asking for.
const unknownBase = 1_000_000

func (w *workload) run(ctx context.Context, label string, arts news.Articles, users news.Users,
	db interface{ Queries() int64 }, progress io.Writer) *result {
	cfg := w.cfg
	runNo := w.runs.Add(1)
	res := &result{label: label, articleReads: make([]int64, len(w.d.Articles))}
	var next, done atomic.Int64
	var reads, writes, errs atomic.Int64
	var errOnce sync.Once
	perArticle := make([]atomic.Int64, len(w.d.Articles))
	lats := make([][]time.Duration, cfg.concurrency)

	stop := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Add(1)
	start := time.Now()
	go func() {
		defer pwg.Done()
		showProgress(progress, label, int64(cfg.requests), &done, start, stop)
	}()

	q0 := db.Queries()
	first := time.AfterFunc(firstWindow, func() {
		res.firstReqs, res.firstQueries = done.Load(), db.Queries()-q0
	})
	var wg sync.WaitGroup
	for worker := range cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(cfg.seed, uint64(worker)))
			n := uint64(len(w.d.Articles))
			articleZipf := rand.NewZipf(r, cfg.zipfS, 1, n-1)
			pageZipf := rand.NewZipf(r, 1.5, 1, 9)
			catPageZipf := rand.NewZipf(r, 1.5, 1, 4)
			authorZipf := rand.NewZipf(r, 1.2, 1, uint64(len(w.d.Users)-1))
			article := func() int { return int(n-1) - int(articleZipf.Uint64()) } // index; newest hottest
			lat := make([]time.Duration, 0, cfg.requests/cfg.concurrency+1)
			for i := next.Add(1); i <= int64(cfg.requests); i = next.Add(1) {
				var err error
				t0 := time.Now()
				if r.Float64()*100 < cfg.writePct {
					writes.Add(1)
					switch x := r.Float64(); {
					case x < 0.6:
						a := w.d.Articles[article()]
						a.Title = a.Title + " (update " + strconv.FormatInt(i, 10) + ")"
						err = arts.Update(ctx, &a)
					case x < 0.8:
						author := w.d.Users[r.IntN(len(w.d.Users))]
						err = arts.Publish(ctx, &news.Article{
							Slug:     "newsdemo-" + strconv.FormatInt(runNo, 10) + "-" + strconv.FormatInt(i, 10),
							Title:    "Breaking: request " + strconv.FormatInt(i, 10),
							Summary:  "Published by the demo's writers.",
							Body:     "…",
							Category: w.d.Categories[r.IntN(len(w.d.Categories))].Slug,
							AuthorID: author.ID,
						})
					default:
						u := w.d.Users[authorZipf.Uint64()]
						u.Bio = "Bio revision " + strconv.FormatInt(i, 10)
						_, err = users.UpdateProfile(ctx, &u)
					}
				} else {
					reads.Add(1)
					switch x := r.Float64(); {
					case x < 0.70:
						if r.Float64() < 0.015 {
							_, err = arts.Get(ctx, unknownBase+int64(r.IntN(20)))
							if errors.Is(err, news.ErrNotFound) {
								err = nil
							}
							break
						}
						k := article()
						perArticle[k].Add(1)
						_, err = arts.Get(ctx, w.d.Articles[k].ID)
					case x < 0.78:
						k := article()
						perArticle[k].Add(1)
						_, err = arts.BySlug(ctx, w.d.Articles[k].Slug)
					case x < 0.88:
						_, err = arts.HomepageFeed(ctx, int(pageZipf.Uint64()))
					case x < 0.94:
						c := w.d.Categories[r.IntN(len(w.d.Categories))].Slug
						_, err = arts.CategoryFeed(ctx, c, int(catPageZipf.Uint64()))
					default:
						_, err = users.Profile(ctx, w.d.Users[authorZipf.Uint64()].ID)
					}
				}
				lat = append(lat, time.Since(t0))
				if err != nil {
					errs.Add(1)
					errOnce.Do(func() { res.firstErr = err })
				}
				done.Add(1)
			}
			lats[worker] = lat
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if first.Stop() { // the run was shorter than the window
		res.firstReqs, res.firstQueries = done.Load(), db.Queries()-q0
	}
	close(stop)
	pwg.Wait()

	res.queries = db.Queries() - q0
	res.reads, res.writes, res.errors = reads.Load(), writes.Load(), errs.Load()
	res.requests = res.reads + res.writes
	for _, l := range lats {
		res.lat = append(res.lat, l...)
	}
	slices.Sort(res.lat)
	for i := range perArticle {
		res.articleReads[i] = perArticle[i].Load()
	}
	return res
}

// showProgress redraws one line on a terminal; elsewhere (CI logs, pipes) it
// prints a line at every quarter.
func showProgress(w io.Writer, label string, total int64, done *atomic.Int64, start time.Time, stop <-chan struct{}) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	line := func() string {
		n := done.Load()
		return fmt.Sprintf("%-14s %7d/%d requests  %5.1fs", label, n, total, time.Since(start).Seconds())
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	quarter := int64(0)
	for {
		select {
		case <-stop:
			if tty {
				fmt.Fprintf(w, "\r%s\n", line())
			} else {
				fmt.Fprintln(w, line())
			}
			return
		case <-tick.C:
			if tty {
				fmt.Fprintf(w, "\r%s", line())
			} else if q := done.Load() * 4 / total; q > quarter && q < 4 {
				quarter = q
				fmt.Fprintln(w, line())
			}
		}
	}
}

// stampedeDirect: n goroutines read one article at once from the database.
func stampedeDirect(ctx context.Context, src source, n int) int64 {
	q0 := src.Queries()
	together(n, func(int) { _, _ = src.Get(ctx, 1) })
	return src.Queries() - q0
}

// stampedeCached: n goroutines spread over `processes` Caches (as many
// application instances sharing one Redis) read one cold key at once. The
// article is the oldest one, and its entry is invalidated first.
func stampedeCached(ctx context.Context, rdb redis.UniversalClient, opts []runtime.Option, src source, n, processes int, d *news.Dataset) (int64, error) {
	repos := make([]*news.CachedArticles, processes)
	for i := range repos {
		repos[i] = news.NewCachedArticles(src, runtime.New(rdb, opts...))
	}
	id := d.Articles[0].ID
	if err := repos[0].InvalidateGet(ctx, id); err != nil {
		return 0, err
	}
	q0 := src.Queries()
	var errs atomic.Int64
	together(n, func(i int) {
		if a, err := repos[i%processes].Get(ctx, id); err != nil || a.ID != id {
			errs.Add(1)
		}
	})
	if errs.Load() > 0 {
		return 0, fmt.Errorf("stampede: %d of %d reads failed", errs.Load(), n)
	}
	return src.Queries() - q0, nil
}

// together runs f(0..n-1) in n goroutines released at the same moment.
func together(n int, f func(i int)) {
	var ready, wg sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(n)
	wg.Add(n)
	for i := range n {
		go func() {
			defer wg.Done()
			ready.Done()
			<-gate
			f(i)
		}()
	}
	ready.Wait()
	close(gate)
	wg.Wait()
}

func printReport(out io.Writer, cfg config, w *workload, direct, cached, warmed *result) {
	// How skewed the reads were: the share of article reads that went to the
	// hottest 5 % of articles.
	counts := slices.Clone(direct.articleReads)
	slices.SortFunc(counts, func(a, b int64) int { return int(b - a) })
	var top, all int64
	for i, c := range counts {
		if i < len(counts)/20 {
			top += c
		}
		all += c
	}
	row := func(name, a, b, note string) {
		fmt.Fprintln(out, strings.TrimRight(fmt.Sprintf("%-40s %15s %15s  %s", name, a, b, note), " "))
	}
	ms := func(d time.Duration) string {
		if d < 10*time.Microsecond { // an in-process hit: show it, not 0.00 ms
			return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
		}
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	fmt.Fprintln(out)
	row("", "without cache", "with cache", "")
	row("requests (reads / writes)", fmt.Sprintf("%d / %d", direct.reads, direct.writes),
		fmt.Sprintf("%d / %d", cached.reads, cached.writes), "")
	row("wall time", direct.elapsed.Round(time.Millisecond).String(), cached.elapsed.Round(time.Millisecond).String(), "")
	row("throughput", fmt.Sprintf("%.0f req/s", float64(direct.requests)/direct.elapsed.Seconds()),
		fmt.Sprintf("%.0f req/s", float64(cached.requests)/cached.elapsed.Seconds()), "")
	row("cache hit rate", "-", fmt.Sprintf("%.1f %%", 100*cached.stats.HitRate()), "")
	row("database queries", strconv.FormatInt(direct.queries, 10), strconv.FormatInt(cached.queries, 10),
		fmt.Sprintf("-%.1f %%", 100*(1-float64(cached.queries)/float64(max(direct.queries, 1)))))
	// Every read method is one query; with the cache only the loads reach
	// the database. Writes are queries either way.
	loads := cached.stats.Get(runtime.EventLoad)
	row("  of which reads", strconv.FormatInt(direct.reads, 10), strconv.FormatUint(loads, 10),
		fmt.Sprintf("-%.1f %%", 100*(1-float64(loads)/float64(max(direct.reads, 1)))))
	for _, p := range []struct {
		name string
		q    float64
	}{{"latency p50", 0.50}, {"latency p95", 0.95}, {"latency p99", 0.99}} {
		row(p.name, ms(direct.percentile(p.q)), ms(cached.percentile(p.q)), "")
	}
	row(fmt.Sprintf("stampede: %d concurrent Gets, cold key", cfg.stampede), strconv.FormatInt(direct.stampedeCalls, 10),
		strconv.FormatInt(cached.stampedeCalls, 10), fmt.Sprintf("source calls (cached: %d processes sharing Redis)", cfg.processes))
	if direct.errors+cached.errors > 0 {
		row("errors", strconv.FormatInt(direct.errors, 10), strconv.FormatInt(cached.errors, 10),
			fmt.Sprint("first: ", errors.Join(direct.firstErr, cached.firstErr)))
	}
	fmt.Fprintln(out)
	s := cached.stats
	fmt.Fprintf(out, "reads: the hottest 5 %% of articles got %.1f %% of article reads\n", 100*float64(top)/float64(max(all, 1)))
	fmt.Fprintf(out, "cache: %d in-process (L1) hits, %d Redis hits, %d negative hits, %d misses, %d source loads, %d fills (%d rejected), %d lease waits, %d invalidations, %d Redis errors, %d bypasses (breaker open), %d subscription gaps\n",
		s.Get(runtime.EventLocalHit), s.Get(runtime.EventHit), s.Get(runtime.EventNegativeHit), s.Get(runtime.EventMiss), s.Get(runtime.EventLoad),
		s.Get(runtime.EventFill), s.Get(runtime.EventFillRejected), s.Get(runtime.EventLeaseWait),
		s.Get(runtime.EventInvalidate), s.Get(runtime.EventRedisError), s.Get(runtime.EventBypass), s.Get(runtime.EventLocalGap))
	if cfg.verify > 0 {
		fmt.Fprintf(out, "consistency checker (%.1f %% of hits): inconsistent reads: %d of %d verified (%d source calls, not counted above)\n",
			100*cfg.verify, s.Get(runtime.EventInconsistent), s.Get(runtime.EventVerified), cached.verifyCalls)
	}
	if cached.redisErr != "" {
		fmt.Fprintf(out, "first Redis error (the call was served from the source): %s\n", cached.redisErr)
	}
	perQuery := func(r *result) string {
		return fmt.Sprintf("%d requests, %d database queries", r.firstReqs, r.firstQueries)
	}
	fmt.Fprintf(out, "first %v of each run: without cache %s; cold cache %s", firstWindow, perQuery(direct), perQuery(cached))
	if warmed != nil {
		fmt.Fprintf(out, "; warmed cache (%d articles warmed in %v, %d queries) %s, hit rate %.1f %% over the whole run",
			cfg.warm, warmed.warmTook.Round(time.Millisecond), warmed.warmQueries, perQuery(warmed), 100*warmed.stats.HitRate())
	}
	fmt.Fprintln(out)
}
