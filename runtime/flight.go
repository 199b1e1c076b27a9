package runtime

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// flightGroup collapses concurrent loads of one key in this process. It is
// x/sync/singleflight plus what that package cannot give: the load runs under
// its own context, cancelled only when every caller has gone, so one impatient
// caller cannot fail the others; and who may join is decided by what the
// caller read. A flight is keyed by the key and the clock its callers read
// with the (missing) entry: every write that returned before any of them began
// bumped the clock to at most that value, before the load read the source. A
// flight without a clock (Redis unavailable) takes callers only until its
// source call starts.
type flightGroup struct {
	mu sync.Mutex
	m  map[flightKey]*flight
}

type flightKey struct {
	key        Key
	inc, clock uint64
}

type flight struct {
	done    chan struct{}
	val     any
	err     error
	panic   any
	waiters int
	cancel  context.CancelFunc
	closed  bool // no longer in the map: takes no more callers
}

// do runs fn once for all concurrent callers of the same flight key and
// returns its result, or ctx's error if this caller's context ends first. fn
// calls seal, when given, right before a source call that later callers must
// not share.
func (g *flightGroup) do(ctx context.Context, k flightKey, fn func(ctx context.Context, seal func()) (any, error)) (any, error) {
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

// close removes f from the map so that later callers start a new flight.
func (g *flightGroup) close(k flightKey, f *flight) {
	g.mu.Lock()
	if !f.closed {
		f.closed = true
		if g.m[k] == f {
			delete(g.m, k)
		}
	}
	g.mu.Unlock()
}

func (g *flightGroup) run(ctx context.Context, k flightKey, f *flight, fn func(context.Context, func()) (any, error)) {
	defer func() {
		if r := recover(); r != nil {
			// Re-panicked in every caller; keep the loader's stack in the value.
			f.panic = fmt.Errorf("cachegen: loader panicked: %v\n\n%s", r, debug.Stack())
			if err, ok := r.(error); ok {
				f.panic = fmt.Errorf("cachegen: loader panicked: %w\n\n%s", err, debug.Stack())
			}
		}
		g.close(k, f)
		f.cancel()
		close(f.done)
	}()
	f.val, f.err = fn(ctx, func() { g.close(k, f) })
}
