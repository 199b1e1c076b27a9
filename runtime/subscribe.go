package runtime

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscription listens to the invalidations every process publishes (see
// invalidateScript) and applies them to the mirror. It is live while the
// server has confirmed the subscription; an L1 read also needs a PONG and a
// caught-up clock read sent less than the bound ago (fresh). Each gap (a
// failed connection, a server-side (un)subscribe, a bound without a PONG)
// starts a new generation, which kills every L1 entry.
type subscription struct {
	c  *Cache
	l  *l1
	ps atomic.Pointer[redis.PubSub]

	gen      atomic.Uint64 // odd: live; even: not live (each change adds one)
	answered atomic.Int64  // monoNow of the PING the last PONG answered
	synced   atomic.Int64  // monoNow of the last clock read the mirror has caught up with
}

func (s *subscription) init(c *Cache, l *l1) { s.c, s.l = c, l }

// liveGen is the generation while live, 0 when not.
func (s *subscription) liveGen() uint64 {
	g := s.gen.Load()
	if g&1 == 0 {
		return 0
	}
	return g
}

// up marks the subscription live (the server confirmed it).
func (s *subscription) up() {
	s.answered.Store(monoNow())
	if g := s.gen.Load(); g&1 == 0 {
		s.gen.CompareAndSwap(g, g+1)
	}
}

// down ends a live period: every L1 entry made in it is dead.
func (s *subscription) down(why string) {
	for {
		g := s.gen.Load()
		if g&1 == 0 {
			return
		}
		if s.gen.CompareAndSwap(g, g+1) {
			break
		}
	}
	s.l.clear()
	s.c.emit(EventLocalGap, nil, nil)
	s.c.cfg.logger.Debug("cachegen: invalidation subscription lost; the in-process cache is off until it is back", "why", why)
}

func (s *subscription) open(ctx context.Context) *redis.PubSub {
	ch := s.c.state.channel
	if s.c.state.pub == 's' {
		return s.c.rdb.SSubscribe(ctx, ch)
	}
	return s.c.rdb.Subscribe(ctx, ch)
}

// run subscribes, applies messages and watches the PONGs until Close.
func (s *subscription) run() {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.c.closed
		cancel()
		if ps := s.ps.Load(); ps != nil {
			_ = ps.Close() // ends a blocked receive now
		}
	}()
	defer cancel()
	bound := s.c.cfg.localBound
	retry := 10 * time.Millisecond
	for ctx.Err() == nil {
		// The SUBSCRIBE (and the connection's handshake) under a deadline: a
		// server that accepts and never answers must not hold up Close.
		octx, ocancel := context.WithTimeout(ctx, max(bound, s.c.cfg.timeout))
		ps := s.open(octx)
		ocancel()
		s.ps.Store(ps)
		ok := s.session(ctx, ps, bound)
		s.ps.Store(nil)
		_ = ps.Close()
		s.down("connection")
		if ok {
			retry = 10 * time.Millisecond
		} else {
			retry = min(2*retry, time.Second)
		}
		if !s.c.pause(retry) {
			return
		}
	}
}

// session runs one subscription connection; ok reports that it was
// confirmed (so a retry need not back off).
func (s *subscription) session(ctx context.Context, ps *redis.PubSub, bound time.Duration) (ok bool) {
	// Until the server confirms, nothing is live.
	msg, err := ps.ReceiveTimeout(ctx, max(bound, s.c.cfg.timeout))
	if err != nil {
		return false
	}
	sub, isSub := msg.(*redis.Subscription)
	if !isSub || !strings.HasSuffix(sub.Kind, "subscribe") || strings.HasSuffix(sub.Kind, "unsubscribe") {
		return false
	}
	s.up()
	pctx, stop := context.WithCancel(ctx)
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		s.ping(pctx, ps, bound)
	}()
	defer func() { // Close waits for run, run for this: no goroutine outlives the Cache
		stop()
		<-pinged
	}()
	for {
		msg, err := ps.ReceiveTimeout(ctx, bound)
		if err != nil {
			return true
		}
		switch m := msg.(type) {
		case *redis.Message:
			s.apply(m.Payload)
		case *redis.Pong:
			if t, err := strconv.ParseInt(m.Payload, 10, 64); err == nil && t > s.answered.Load() {
				s.answered.Store(t)
			}
		case *redis.Subscription:
			// An unsubscribe (the slot moved away) or a new confirmation
			// (go-redis reconnected by itself, e.g. inside a PING): either
			// way messages may have been missed in between.
			return true
		}
	}
}

// ping sends a PING every bound/4 and ends the live period when the last
// answered one was sent more than bound ago. Each tick also reads the clock
// and catches the mirror up with it: a message that never arrives (published
// where this subscription does not listen, e.g. from the node importing the
// state's slot mid-migration) is then learned from the state itself, so the
// bound holds whatever pub/sub does.
func (s *subscription) ping(ctx context.Context, ps *redis.PubSub, bound time.Duration) {
	t := time.NewTicker(max(bound/4, time.Millisecond))
	defer t.Stop()
	s.syncClock(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if monoNow()-s.answered.Load() > int64(bound) {
				s.down("no PONG within the bound")
				_ = ps.Close() // the session ends and starts over
				return
			}
			_ = ps.Ping(ctx, strconv.FormatInt(monoNow(), 10))
			s.syncClock(ctx)
		}
	}
}

// syncClock reads the clock and brings the mirror up to it; on success every
// invalidation that returned before the read is in the mirror.
func (s *subscription) syncClock(ctx context.Context) {
	c := s.c
	sent := monoNow()
	clock, err := call(c, ctx, func(ctx context.Context) (string, error) {
		v, err := c.rdb.Get(ctx, c.state.clock).Result()
		if err == redis.Nil {
			return "", nil
		}
		return v, err
	})
	if err != nil {
		return
	}
	if inc, n, ok := parseClock(clock); ok {
		if c.syncMirror(ctx, inc, n) != nil {
			return
		}
	} // no state: nothing was invalidated since it was lost, or its writer recreated it
	s.synced.Store(sent)
}

// fresh is the send time of the older of the last answered PING and the last
// clock read caught up with: an L1 read needs it recent.
func (s *subscription) fresh() int64 { return min(s.answered.Load(), s.synced.Load()) }

// apply takes one message "<inc>:<seq>:<prev>|<ids>" into the mirror, as if
// this process had made the invalidation.
func (s *subscription) apply(p string) {
	head, ids, ok := strings.Cut(p, "|")
	if !ok || len(ids)%8 != 0 {
		return
	}
	parts := strings.SplitN(head, ":", 3)
	if len(parts) != 3 {
		return
	}
	var r stateReply
	var err error
	for i, dst := range []*uint64{&r.inc, &r.seq, &r.prev} {
		if *dst, err = strconv.ParseUint(parts[i], 10, 64); err != nil {
			return
		}
	}
	if r.inc == 0 {
		return
	}
	list := make([]uint64, 0, len(ids)/8)
	for i := 0; i < len(ids); i += 8 {
		id, _ := idOf(ids[i : i+8])
		list = append(list, id)
	}
	s.c.mirror.applyOwn(r, list)
}

// monoBase anchors monoNow: the monotonic clock only (one vDSO read; a
// time.Now is two), for the L1's freshness and deadline checks.
var monoBase = time.Now()

// monoNow is the monotonic time in ns since monoBase.
func monoNow() int64 { return int64(time.Since(monoBase)) }
