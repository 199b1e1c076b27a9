package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cachegen/cachegen/example/news"
	"github.com/cachegen/cachegen/runtime"
)

// warmArticles loads the n newest articles (the workload reads the newest
// most) into the cache through WarmByIDs, with a progress bar on a terminal
// and one line elsewhere. It returns how long it took and the database
// queries it cost.
func warmArticles(ctx context.Context, arts *news.CachedArticles, db interface{ Queries() int64 }, d *news.Dataset, n int, progress io.Writer) (time.Duration, int64, error) {
	n = min(n, len(d.Articles))
	ids := make([]int64, 0, n)
	for _, a := range d.Articles[len(d.Articles)-n:] {
		ids = append(ids, a.ID)
	}
	opts := []runtime.WarmOption{runtime.WarmChunk(100)}
	if isTerminal(progress) {
		bar := progressbar.NewOptions(n, progressbar.OptionSetWriter(progress), progressbar.OptionSetDescription("warming"),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
		opts = append(opts, runtime.WarmProgress(func(done, _ int) { _ = bar.Set(done) }))
		defer bar.Finish()
	}
	q0, start := db.Queries(), time.Now()
	if err := arts.WarmByIDs(ctx, ids, opts...); err != nil {
		return 0, 0, fmt.Errorf("warming: %w", err)
	}
	took, queries := time.Since(start), db.Queries()-q0
	fmt.Fprintf(progress, "warmed %d articles in %v with %d database queries\n", n, took.Round(time.Millisecond), queries)
	return took, queries, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
