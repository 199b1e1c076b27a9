package runtime

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// errBreakerOpen marks calls the breaker skipped.
var errBreakerOpen = errors.New("cachegen: circuit breaker open")

// errTimeout is returned when a Redis call outlives the budget.
var errTimeout = errors.New("cachegen: redis call exceeded the time budget")

// call runs one Redis round trip within the time budget and feeds the breaker.
// redis.Nil counts as success. Clients that honour context deadlines
// (ContextTimeoutEnabled) get a deadline; others — go-redis's default, which
// would wait out its 3s read timeout — run the call on a goroutine the caller
// stops waiting for when the budget is spent.
func call[R any](c *Cache, ctx context.Context, op func(context.Context) (R, error)) (R, error) {
	var zero R
	if !c.brk.allow() {
		return zero, errBreakerOpen
	}
	r, err := bounded(c, ctx, op)
	c.settle(ctx, err)
	return r, err
}

// settle feeds the breaker and the error log with one call's outcome.
func (c *Cache) settle(ctx context.Context, err error) {
	// A corrupt entry is the data's fault, not Redis's.
	// A full Redis (noeviction) refusing a fill is not a sick one.
	failed := err != nil && err != redis.Nil && err != errCorrupt && ctx.Err() == nil && !isOOM(err)
	c.brk.record(failed)
	if failed {
		c.redisError(err)
	}
}

// deadlineCtx carries the budget as a deadline, which go-redis turns into
// socket deadlines when ContextTimeoutEnabled is set. Unlike
// context.WithTimeout it allocates no timer, channel or closure on the hit
// path; the price is that Done does not fire at the deadline, so a wait for a
// pooled connection is bounded by go-redis's PoolTimeout, not the budget.
type deadlineCtx struct {
	context.Context
	d time.Time
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if pd, ok := c.Context.Deadline(); ok && pd.Before(c.d) {
		return pd, true
	}
	return c.d, true
}

// budget returns ctx with the time budget as its deadline.
func (c *Cache) budget(ctx context.Context) *deadlineCtx {
	return &deadlineCtx{ctx, time.Now().Add(c.cfg.timeout)}
}

// timedOut turns a failure past the deadline into errTimeout.
func (c *deadlineCtx) timedOut(err error) error {
	if err != nil && err != redis.Nil && c.Err() == context.DeadlineExceeded {
		return errTimeout
	}
	return err
}

func (c *deadlineCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.d) {
		return context.DeadlineExceeded
	}
	return nil
}

type result[R any] struct {
	v   R
	err error
}

func bounded[R any](c *Cache, ctx context.Context, op func(context.Context) (R, error)) (R, error) {
	if c.ctxTO {
		dctx := c.budget(ctx)
		r, err := op(dctx)
		return r, dctx.timedOut(err)
	}
	ch := make(chan result[R], 1)
	go func() {
		r, err := op(ctx)
		ch <- result[R]{r, err}
	}()
	t := time.NewTimer(c.cfg.timeout)
	defer t.Stop()
	select {
	case res := <-ch:
		return res.v, res.err
	case <-t.C:
		var zero R
		return zero, errTimeout
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
}

// redisError counts a failed Redis call and logs it, at most once per log
// period (logs.go): a sick Redis must not flood the logs of a service that
// keeps working.
func (c *Cache) redisError(err error) {
	c.emit(EventRedisError, nil, err)
	if n, ok := c.allowLog(logRedis); ok {
		c.cfg.logger.Warn("cachegen: redis call failed; serving from the source", "err", err, "suppressed", n)
	}
}

// isOOM reports Redis's refusal of a write when it is full under noeviction.
func isOOM(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(err.Error(), "OOM ")
}
