package runtime

import (
	"context"
	"fmt"
	"sync"
)

// flightGroup collapses concurrent loads of one key in this process. It is
// x/sync/singleflight plus two things that package cannot give: the load runs
// under its own context, cancelled only when every caller has gone, so one
// impatient caller cannot fail the others; and the key carries the local
// invalidation epoch, so a read that starts after an invalidation returned
// never joins a load that started before it.
type flightGroup struct {
	mu sync.Mutex
	m  map[flightKey]*flight
}

type flightKey struct {
	key   Key
	epoch uint64
}

type flight struct {
	done    chan struct{}
	val     any
	err     error
	panic   any
	waiters int
	cancel  context.CancelFunc
}

// do runs fn once for all concurrent callers of the same key and returns its
// result, or ctx's error if this caller's context ends first.
func (g *flightGroup) do(ctx context.Context, k flightKey, fn func(context.Context) (any, error)) (any, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[flightKey]*flight)
	}
	f, ok := g.m[k]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		g.m[k] = f
		go g.run(fctx, k, f, fn)
	}
	f.waiters++
	g.mu.Unlock()

	select {
	case <-f.done:
		if f.panic != nil {
			panic(f.panic)
		}
		return f.val, f.err
	case <-ctx.Done():
		g.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			f.cancel()
		}
		g.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (g *flightGroup) run(ctx context.Context, k flightKey, f *flight, fn func(context.Context) (any, error)) {
	defer func() {
		if r := recover(); r != nil {
			f.panic = fmt.Errorf("cachegen: loader panicked: %v", r)
			if err, ok := r.(error); ok {
				f.panic = fmt.Errorf("cachegen: loader panicked: %w", err)
			}
		}
		g.mu.Lock()
		delete(g.m, k)
		g.mu.Unlock()
		f.cancel()
		close(f.done)
	}()
	f.val, f.err = fn(ctx)
}
