package runtime

import (
	"context"

	"golang.org/x/time/rate"
)

// WarmOption configures Warm.
type WarmOption func(*warmConfig)

type warmConfig struct {
	rate     float64
	chunk    int
	progress func(done, total int)
}

// WarmRate caps warming at perSecond ids a second (0: no cap), so a warm-up
// never floods the source.
func WarmRate(perSecond float64) WarmOption { return func(w *warmConfig) { w.rate = perSecond } }

// WarmChunk sets how many ids one step of the warm-up reads (default: the
// Cache's batch chunk, 500).
func WarmChunk(n int) WarmOption {
	return func(w *warmConfig) {
		if n > 0 {
			w.chunk = n
		}
	}
}

// WarmProgress is called after each step with the ids done so far and the
// total (repeated ids counted once).
func WarmProgress(f func(done, total int)) WarmOption {
	return func(w *warmConfig) { w.progress = f }
}

// warm is Warm; the values read go to b.src.put (which drops them).
func warm[K comparable, V any](ctx context.Context, ks *keyspace[V], ids []K, b batch[K, V], opts ...WarmOption) error {
	w := warmConfig{chunk: ks.c.cfg.batchChunk}
	for _, o := range opts {
		o(&w)
	}
	uniq := uniqueIDs(ids)
	var lim *rate.Limiter
	if w.rate > 0 {
		lim = rate.NewLimiter(rate.Limit(w.rate), w.chunk)
	}
	for lo := 0; lo < len(uniq); lo += w.chunk {
		part := uniq[lo:min(lo+w.chunk, len(uniq))]
		if lim != nil {
			if err := lim.WaitN(ctx, len(part)); err != nil {
				return err
			}
		}
		filled, err := getMany(ctx, ks, part, b)
		for _, done := range filled {
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err != nil {
			return err
		}
		if w.progress != nil {
			w.progress(lo+len(part), len(uniq))
		}
	}
	return nil
}
