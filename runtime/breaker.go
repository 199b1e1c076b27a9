package runtime

import (
	"sync"
	"sync/atomic"
	"time"
)

// breaker skips Redis after consecutive failures and lets one probe through
// after a cooldown; the probe's success closes it again.
type breaker struct {
	c        *Cache
	failures atomic.Int64
	open     atomic.Bool // fast path: closed breakers read one atomic

	mu        sync.Mutex
	until     time.Time // when the next probe may go
	probing   bool
	probeFrom time.Time
	held      bool // pending invalidations keep it open until flushed
}

func (b *breaker) init(c *Cache) { b.c = c }

// allow reports whether a Redis call may be made now.
func (b *breaker) allow() bool {
	if !b.open.Load() {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open.Load() {
		return true
	}
	if b.held {
		return false
	}
	now := b.c.cfg.now()
	if now.Before(b.until) {
		return false
	}
	// One probe per cooldown; a lost probe (its caller went away) is replaced.
	if b.probing && now.Sub(b.probeFrom) < b.c.cfg.breakerCooldown {
		return false
	}
	b.probing, b.probeFrom = true, now
	return true
}

// record counts the outcome of a Redis call.
func (b *breaker) record(failed bool) {
	if !failed {
		if b.failures.Load() != 0 {
			b.failures.Store(0)
		}
		if b.open.Load() {
			b.mu.Lock()
			if b.open.Load() && !b.held {
				b.open.Store(false)
				b.probing = false
				b.mu.Unlock()
				b.c.cfg.logger.Info("cachegen: redis is back, circuit breaker closed")
				b.c.emit(EventBreakerClose, nil, nil)
				return
			}
			b.mu.Unlock()
		}
		return
	}
	n := b.failures.Add(1)
	if n < int64(b.c.cfg.breakerFailures) && !b.open.Load() {
		return
	}
	b.mu.Lock()
	wasOpen := b.open.Load()
	b.open.Store(true)
	b.probing = false
	b.until = b.c.cfg.now().Add(b.c.cfg.breakerCooldown)
	b.mu.Unlock()
	if !wasOpen {
		b.c.cfg.logger.Info("cachegen: redis failing, circuit breaker open; serving from the source",
			"failures", n, "cooldown", b.c.cfg.breakerCooldown)
		b.c.emit(EventBreakerOpen, nil, nil)
	}
}

// hold keeps the breaker open (reads go to the source) until release, while
// invalidations that could not be delivered wait to be replayed.
func (b *breaker) hold() {
	b.mu.Lock()
	wasOpen := b.open.Load()
	b.held = true
	b.open.Store(true)
	b.mu.Unlock()
	if !wasOpen {
		b.c.cfg.logger.Info("cachegen: invalidations wait to be replayed, circuit breaker held open; serving from the source")
		b.c.emit(EventBreakerOpen, nil, nil)
	}
}

// isHeld reports whether pending invalidations hold the breaker open.
func (b *breaker) isHeld() bool {
	if !b.open.Load() {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

func (b *breaker) release() {
	b.mu.Lock()
	b.held = false
	b.open.Store(false)
	b.probing = false
	b.failures.Store(0)
	b.mu.Unlock()
	b.c.cfg.logger.Info("cachegen: pending invalidations delivered, circuit breaker closed")
	b.c.emit(EventBreakerClose, nil, nil)
}
