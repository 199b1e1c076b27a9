package runtime

import "sync/atomic"

// Repeated warnings are rate-limited per kind: at most one per WithLogPeriod,
// carrying how many were suppressed since the last one. A sick Redis or a
// stream of corrupt entries must not flood the logs of a service that keeps
// working.

type logKind uint8

const (
	logRedis        logKind = iota // a Redis call failed
	logCorrupt                     // a corrupt entry was deleted
	logEncode                      // a result could not be encoded
	logTags                        // a result had more than 255 tags
	logInconsistent                // WithVerify found a hit the source disagrees with
	logRefresh                     // a background reload failed
	numLogKinds
)

type logLimits struct {
	last       [numLogKinds]atomic.Int64 // UnixNano of the last line logged
	suppressed [numLogKinds]atomic.Int64
}

// allow reports whether a warning of kind k may be logged now, and how many
// were suppressed since the last one that was.
func (c *Cache) allowLog(k logKind) (suppressed int64, ok bool) {
	l := &c.logs
	now := c.cfg.now().UnixNano()
	last := l.last[k].Load()
	if now-last < int64(c.cfg.logPeriod) || !l.last[k].CompareAndSwap(last, now) {
		l.suppressed[k].Add(1)
		return 0, false
	}
	return l.suppressed[k].Swap(0), true
}
