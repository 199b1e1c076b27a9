package runtime

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime/debug"
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
			// Re-panicked in every caller; keep the loader's stack in the value.
			f.panic = fmt.Errorf("cachegen: loader panicked: %v\n\n%s", r, debug.Stack())
			if err, ok := r.(error); ok {
				f.panic = fmt.Errorf("cachegen: loader panicked: %w\n\n%s", err, debug.Stack())
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

// lookupGroup collapses concurrent hit checks of one key in this process: a
// burst of a thousand readers costs Redis one round trip, not a thousand that
// queue past the time budget and send everyone to the source. The first
// caller makes the call inline; the others wait for its reply and decode their
// own copy. The epoch in the key keeps a read that starts after an
// invalidation from taking a reply fetched before it.
type lookupGroup struct {
	shards [64]struct {
		mu sync.Mutex
		m  map[flightKey]*lookupCall
	}
}

type lookupCall struct {
	done    sync.WaitGroup // not a channel: one allocation less per hit
	raw     []byte
	found   bool
	err     error
	corrupt sync.Once // one delete and one log line per corrupt reply
}

func (g *lookupGroup) do(ctx context.Context, s *space, key Key) *lookupCall {
	k := flightKey{key, s.c.epoch.Load()}
	sh := &g.shards[maphash.String(lookupSeed, string(key))%uint64(len(g.shards))]
	sh.mu.Lock()
	if lc, ok := sh.m[k]; ok {
		sh.mu.Unlock()
		lc.done.Wait() // bounded by the leader's time budget
		return lc
	}
	if sh.m == nil {
		sh.m = make(map[flightKey]*lookupCall)
	}
	lc := &lookupCall{}
	lc.done.Add(1)
	sh.m[k] = lc
	sh.mu.Unlock()
	defer func() {
		sh.mu.Lock()
		delete(sh.m, k)
		sh.mu.Unlock()
		lc.done.Done()
	}()
	lc.raw, lc.found, lc.err = s.lookupRaw(ctx, key)
	return lc
}

var lookupSeed = maphash.MakeSeed()
