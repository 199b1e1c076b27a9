package runtime

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime/debug"
	"sync"
	"time"
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
// not share. The first caller runs fn on its own goroutine (a goroutine hop
// per miss costs a quarter of a cold read on two cores); if its context ends
// meanwhile it leaves the flight like any caller — the load is cancelled once
// every caller has gone — but returns only when fn does.
func (g *flightGroup) do(ctx context.Context, k flightKey, fn func(ctx context.Context, seal func()) (any, error)) (any, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[flightKey]*flight)
	}
	f, ok := g.m[k]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel, waiters: 1}
		g.m[k] = f
		g.mu.Unlock()
		stop := context.AfterFunc(ctx, func() { g.leave(f) })
		g.run(fctx, k, f, fn)
		if !stop() && ctx.Err() != nil { // this caller's context ended while it loaded
			return nil, ctx.Err()
		}
		if f.panic != nil {
			panic(f.panic)
		}
		return f.val, f.err
	}
	f.waiters++
	g.mu.Unlock()
	return g.wait(ctx, f)
}

// wait is a joined caller's wait for f (it counts among f's waiters).
func (g *flightGroup) wait(ctx context.Context, f *flight) (any, error) {
	select {
	case <-f.done:
		if f.panic != nil {
			panic(f.panic)
		}
		return f.val, f.err
	case <-ctx.Done():
		g.leave(f)
		return nil, ctx.Err()
	}
}

// claim is do in two steps, for a batch that resolves many flights with one
// load: it joins k's flight (own false: wait for it) or opens one owned by the
// caller (own true: end it with finish). cancel is the owned flight's; it
// runs when every caller has left, or at finish.
func (g *flightGroup) claim(k flightKey, cancel context.CancelFunc) (f *flight, own bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = make(map[flightKey]*flight)
	}
	if f, ok := g.m[k]; ok {
		f.waiters++
		return f, false
	}
	f = &flight{done: make(chan struct{}), cancel: cancel, waiters: 1}
	g.m[k] = f
	return f, true
}

// finish ends an owned flight with its result (or a panic for its callers).
func (g *flightGroup) finish(k flightKey, f *flight, val any, p any) {
	f.val, f.panic = val, p
	g.close(k, f)
	f.cancel()
	close(f.done)
}

// leave drops a caller of f; the last one to go cancels the load.
func (g *flightGroup) leave(f *flight) {
	g.mu.Lock()
	f.waiters--
	if f.waiters == 0 {
		f.cancel()
	}
	g.mu.Unlock()
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
			f.panic = loaderPanic(r)
		}
		g.close(k, f)
		f.cancel()
		close(f.done)
	}()
	f.val, f.err = fn(ctx, func() { g.close(k, f) })
}

// hitGroup collapses concurrent hits of one key in this process without
// ever handing a caller a reply that was requested before it began (that
// reply could predate a write that returned before the caller began): while
// one round trip for the key is in flight, later callers gather behind it
// and share the next one, sent when it returns. A burst of a thousand readers
// costs two round trips, not a thousand that queue past the time budget.
type hitGroup struct {
	shards [64]hitShard
}

type hitShard struct {
	mu    sync.Mutex
	m     map[Key]*hitCall      // the round in flight for each key
	fills map[Key]chan struct{} // fills of this process still on their way
}

type hitCall struct {
	done       sync.WaitGroup // not a channel: one allocation less per hit
	next       *hitCall       // the round gathering behind this one (under the shard lock)
	raw, clock string
	found      bool
	err        error
	corrupt    sync.Once // one delete and one log line per corrupt reply
}

func (g *hitGroup) shard(key Key) *hitShard {
	return &g.shards[maphash.String(hitSeed, string(key))%uint64(len(g.shards))]
}

// filling registers a fill of key that runs after its caller has returned;
// done ends it. A lookup of the key in this process waits for it first, so a
// process reads its own fills (and never queues behind its own lease).
func (g *hitGroup) filling(key Key) (done func()) {
	sh := g.shard(key)
	ch := make(chan struct{})
	sh.mu.Lock()
	if sh.fills == nil {
		sh.fills = make(map[Key]chan struct{})
	}
	prev := sh.fills[key]
	sh.fills[key] = ch
	sh.mu.Unlock()
	return func() {
		sh.mu.Lock()
		if sh.fills[key] == ch {
			delete(sh.fills, key)
		}
		sh.mu.Unlock()
		close(ch)
		_ = prev // an older fill of the key ends on its own
	}
}

func (g *hitGroup) do(ctx context.Context, c *Cache, key Key) *hitCall {
	sh := g.shard(key)
	sh.mu.Lock()
	if len(sh.fills) != 0 {
		if ch := sh.fills[key]; ch != nil {
			sh.mu.Unlock()
			t := time.NewTimer(c.cfg.timeout)
			select { // bounded: a fill is one budgeted round trip
			case <-ch:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			sh.mu.Lock()
		}
	}
	if sh.m == nil {
		sh.m = make(map[Key]*hitCall)
	}
	cur := sh.m[key]
	if cur == nil {
		hc := &hitCall{}
		hc.done.Add(1)
		sh.m[key] = hc
		sh.mu.Unlock()
		g.send(ctx, c, key, sh, hc)
		return hc
	}
	if hc := cur.next; hc != nil { // join the round sent after the one in flight
		sh.mu.Unlock()
		hc.done.Wait() // bounded by two time budgets
		return hc
	}
	hc := &hitCall{}
	hc.done.Add(1)
	cur.next = hc
	sh.mu.Unlock()
	cur.done.Wait()
	sh.mu.Lock()
	sh.m[key] = hc // no one joins hc from here on: it is being sent
	sh.mu.Unlock()
	g.send(ctx, c, key, sh, hc)
	return hc
}

func (g *hitGroup) send(ctx context.Context, c *Cache, key Key, sh *hitShard, hc *hitCall) {
	defer func() {
		sh.mu.Lock()
		if sh.m[key] == hc && hc.next == nil {
			delete(sh.m, key)
		}
		sh.mu.Unlock()
		hc.done.Done()
	}()
	hc.raw, hc.found, hc.clock, hc.err = c.hit(ctx, key)
}

var hitSeed = maphash.MakeSeed()

// loaderPanic is a recovered panic of a source call as it is re-panicked in
// every caller: the loader's stack kept in the value.
func loaderPanic(r any) error {
	if err, ok := r.(error); ok {
		return fmt.Errorf("cachegen: loader panicked: %w\n\n%s", err, debug.Stack())
	}
	return fmt.Errorf("cachegen: loader panicked: %v\n\n%s", r, debug.Stack())
}

// awaitFills waits for this process's fills of keys still on their way
// (hitGroup.filling), all within one time budget: a batch lookup, like a
// single one, reads its own fills.
func (g *hitGroup) awaitFills(ctx context.Context, c *Cache, keys []Key) {
	var t *time.Timer
	for _, k := range keys {
		sh := g.shard(k)
		sh.mu.Lock()
		var ch chan struct{}
		if len(sh.fills) != 0 {
			ch = sh.fills[k]
		}
		sh.mu.Unlock()
		if ch == nil {
			continue
		}
		if t == nil {
			t = time.NewTimer(c.cfg.timeout)
			defer t.Stop()
		}
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
