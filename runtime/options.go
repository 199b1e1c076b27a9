package runtime

import (
	"log/slog"
	"math/rand/v2"
	"time"
)

// Option configures a Cache.
type Option func(*config)

type config struct {
	namespace        string
	timeout          time.Duration
	leaseTTL         time.Duration
	leaseWait        time.Duration
	pollMin, pollMax time.Duration
	maxTTL           time.Duration
	breakerFailures  int
	breakerCooldown  time.Duration
	logger           *slog.Logger
	observer         func(Event)
	now              func() time.Time
	rand             func() uint64
	cluster          *bool
	maxPending       int
	replicaAcks      int // -1: one when the state's master has replicas
	mirrorLimit      int
	maxMarks         int
	localBytes       int64
	localBound       time.Duration
	batchChunk       int
	batchParallel    int
	refreshParallel  int
	logPeriod        time.Duration
	metrics          bool    // latency histograms of the hit path
	verify           float64 // fraction of hits re-read from the source
	verifyRate       int     // at most this many verifications a second
	verifyDelay      time.Duration
}

func defaultConfig() config {
	return config{
		namespace:       "cg",
		timeout:         100 * time.Millisecond,
		leaseTTL:        3 * time.Second,
		leaseWait:       3 * time.Second,
		batchChunk:      500,
		batchParallel:   4,
		refreshParallel: 64,
		pollMin:         2 * time.Millisecond,
		pollMax:         50 * time.Millisecond,
		maxTTL:          24 * time.Hour,
		breakerFailures: 5,
		breakerCooldown: time.Second,
		logger:          slog.Default(),
		now:             time.Now,
		rand:            rand.Uint64,
		maxPending:      10000,
		replicaAcks:     -1,
		mirrorLimit:     200_000,
		maxMarks:        10_000_000,
		localBytes:      64 << 20,
		localBound:      250 * time.Millisecond,
		logPeriod:       10 * time.Second,
		metrics:         true,
		verifyRate:      50,
		verifyDelay:     time.Second,
	}
}

// WithNamespace prefixes every key this Cache touches, so several applications
// or tenants can share one Redis. Default "cg".
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

// WithTimeout is the budget of one Redis operation. When it runs out the call is
// served from the source. It holds even for clients built with go-redis defaults
// (ContextTimeoutEnabled false). Default 100ms.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithLease sets how long a loader's lease lives (ttl) and how long other callers
// wait for the leaseholder's value before loading from the source themselves
// (wait). Defaults 3s and 3s.
func WithLease(ttl, wait time.Duration) Option {
	return func(c *config) { c.leaseTTL, c.leaseWait = ttl, wait }
}

// WithPoll sets the first and the longest interval between two looks at a key
// while waiting for another loader. Defaults 2ms and 50ms.
func WithPoll(first, longest time.Duration) Option {
	return func(c *config) { c.pollMin, c.pollMax = first, longest }
}

// WithMaxTTL caps every entry TTL (jitter included). Invalidation markers
// are kept this long (plus the lease TTL and a minute) after their last bump,
// which is what keeps the invalidation state bounded. Use one value for every
// process of a namespace; the state keeps the longest retention it has seen
// as a safeguard. Default 24h.
func WithMaxTTL(d time.Duration) Option { return func(c *config) { c.maxTTL = d } }

// WithBreaker opens the circuit after failures consecutive Redis failures and
// tries Redis again after cooldown. Defaults 5 and 1s.
func WithBreaker(failures int, cooldown time.Duration) Option {
	return func(c *config) { c.breakerFailures, c.breakerCooldown = failures, cooldown }
}

// WithLogger sets the logger for Redis errors, corrupt entries and breaker
// transitions. Default slog.Default(). Repeated warnings are rate-limited
// (WithLogPeriod); breaker transitions are logged at INFO.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithObserver receives an Event for every hit, miss, fill, invalidation and
// failure, for metrics. It is called synchronously and must be fast. Several
// WithObserver options all receive every Event. Counting needs no observer:
// Stats and Snapshot have the counters.
func WithObserver(f func(Event)) Option {
	return func(c *config) {
		if prev := c.observer; prev != nil && f != nil {
			c.observer = func(e Event) { prev(e); f(e) }
		} else if f != nil {
			c.observer = f
		}
	}
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithRand replaces the random source used for jitter and lease tokens (tests).
// It must be safe for concurrent use.
func WithRand(r func() uint64) Option { return func(c *config) { c.rand = r } }

// WithCluster forces sharded (true) or single-node (false) mode. By default a
// *redis.ClusterClient or *redis.Ring is sharded and anything else single-node.
func WithCluster(sharded bool) Option { return func(c *config) { c.cluster = &sharded } }

// WithReplicaAck sets how many replicas must acknowledge an invalidation
// (Redis WAIT, bounded by half the time budget) before it counts as
// delivered, so that a failover cannot lose it. By default (-1) it is one
// when the invalidation state's master has replicas (checked every few
// seconds) and none otherwise; 0 never waits. An invalidation that is not
// acknowledged is replayed like an undelivered one.
func WithReplicaAck(n int) Option { return func(c *config) { c.replicaAcks = n } }

// WithMirrorLimit bounds the markers this process mirrors (about 40 bytes
// each); past it the mirror starts again at the current clock, which costs
// lookups of older entries' markers, never a wrong answer. Default 200,000.
func WithMirrorLimit(n int) Option { return func(c *config) { c.mirrorLimit = max(n, 1) } }

// WithLocalCapacity bounds the in-process cache (the L1 of keyspaces with
// local=) to about n bytes: an entry weighs its key and its encoded payload.
// Default 64 MiB.
func WithLocalCapacity(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.localBytes = n
		}
	}
}

// WithLocalBound is the longest time an L1 may go on serving after its
// invalidation subscription stopped answering (a network cut nothing has
// noticed yet): the subscriber PINGs every bound/4 and drops the L1 when no
// PONG answered a PING sent within the bound. In normal operation another
// process's invalidation reaches the L1 as soon as its message arrives.
// Default 250ms.
func WithLocalBound(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.localBound = d
		}
	}
}

// WithLogPeriod is the shortest time between two log lines of one kind of
// repeated warning (a Redis call failed, a corrupt entry was deleted, an
// inconsistent read was found, …); each line says how many were suppressed
// since the last. Default 10s.
func WithLogPeriod(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.logPeriod = d
		}
	}
}

// WithMetrics(false) turns off the latency histograms of the hit path (two
// clock reads per Redis lookup). Counters are always kept: one atomic add
// per event, on the keyspace's own counters. Default true.
func WithMetrics(on bool) Option { return func(c *config) { c.metrics = on } }

// WithVerify turns on the consistency checker: a fraction (0 to 1) of hits
// — at most WithVerifyRate a second — is re-read from the source in the
// background, never on the caller's path, and compared with the value the
// cache served (their encodings, map keys sorted). A mismatch is checked
// again a little later (a write racing the check explains it if the source
// or the cache has changed by then); one that persists is counted
// (EventInconsistent, per keyspace) and logged with its key. Every
// verification is a source call: size the fraction for the source's
// headroom. Default 0 (off).
func WithVerify(fraction float64) Option {
	return func(c *config) { c.verify = min(max(fraction, 0), 1) }
}

// WithVerifyRate bounds the verifications of WithVerify to n a second.
// Default 50.
func WithVerifyRate(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.verifyRate = n
		}
	}
}

// WithBatchChunk caps the ids of one source call of a batch read (default
// 500): a batch that misses more ids calls the source once per chunk.
func WithBatchChunk(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.batchChunk = n
		}
	}
}

// WithBatchParallel caps the chunks of one batch read loaded at once
// (default 4).
func WithBatchParallel(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.batchParallel = n
		}
	}
}

// WithRefreshParallel bounds the background reloads of refresh= and stale=
// keyspaces running at once in this Cache (each is one source call); a hit
// that finds the limit reached is served without starting one, and a later
// hit starts it. Default 64.
func WithRefreshParallel(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.refreshParallel = n
		}
	}
}
