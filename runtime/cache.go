package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cache is the engine behind every generated repository. It is safe for
// concurrent use; create one per Redis deployment and namespace and share it.
type Cache struct {
	rdb     redis.UniversalClient
	cfg     config
	sharded bool // the state lives in its own slot (Cluster, Ring)
	ctxTO   bool // the client honours context deadlines
	remote  remote
	state   stateKeys

	ns    string // escaped namespace followed by ':'
	nsDep uint64 // marker bumped by InvalidateNamespace
	nsL1  uint64 // marker bumped by Cache.DeletePattern, that only L1 entries depend on

	mirror   mirror
	flights  flightGroup
	hits     hitGroup
	brk      breaker
	stats    counters // cache-wide events; keyspaces count their own (stats.go)
	reg      registry
	obsMu    sync.Mutex
	observer atomic.Pointer[func(Event)] // WithObserver's and AddObserver's, composed
	logs     logLimits
	verify   verifier
	refresh  refresher
	pend     pending
	acks     replicaAcks

	tokenBase string
	tokenSeq  atomic.Uint64

	l1     atomic.Pointer[l1] // the in-process cache, once a keyspace is local
	l1Once sync.Once

	closed chan struct{}
	bg     sync.WaitGroup // background goroutines Close waits for
	fills  sync.WaitGroup // fills still on their way (a subset of bg)
	closer sync.Once
}

// New returns a Cache over any go-redis v9 client: *redis.Client (single node or
// Sentinel failover), *redis.ClusterClient or *redis.Ring. New(client) alone is
// production-safe: every Redis call is bounded by a 100ms budget, failures fall
// back to the source and a circuit breaker skips a sick Redis. New does not
// talk to Redis on the caller's goroutine: it checks the server's
// maxmemory-policy in the background and logs what it found.
func New(client redis.UniversalClient, opts ...Option) *Cache {
	c := &Cache{rdb: client, cfg: defaultConfig(), closed: make(chan struct{})}
	for _, o := range opts {
		o(&c.cfg)
	}
	switch cl := client.(type) {
	case *redis.ClusterClient:
		c.sharded, c.ctxTO = true, cl.Options().ContextTimeoutEnabled
	case *redis.Ring:
		c.sharded, c.ctxTO = true, cl.Options().ContextTimeoutEnabled
	case *redis.Client:
		c.ctxTO = cl.Options().ContextTimeoutEnabled
	}
	if c.cfg.cluster != nil {
		c.sharded = *c.cfg.cluster
	}
	if !c.ctxTO {
		c.cfg.logger.Info("cachegen: the Redis client ignores context deadlines (ContextTimeoutEnabled=false); " +
			"each Redis call runs on a helper goroutine to keep the time budget — set ContextTimeoutEnabled: true for the faster path")
	}
	esc := string(AppendString(nil, c.cfg.namespace))
	c.ns = esc + ":"
	c.nsDep = markerID(markNamespace, "")
	c.nsL1 = markerID(markLocal, "")
	c.state = stateKeys{
		clock:     c.ns + "{" + esc + "}:clock",
		marks:     c.ns + "{" + esc + "}:marks",
		retention: c.ns + "{" + esc + "}:keep",
		keep:      (c.cfg.maxTTL + c.cfg.leaseTTL + time.Minute).Microseconds(),
		limit:     c.cfg.maxMarks,
		newInc:    c.newIncarnation,
		channel:   c.ns + "{" + esc + "}:inv",
		pub:       'p',
	}
	db := 0
	switch cl := client.(type) {
	case *redis.ClusterClient:
		c.state.pub = 's' // sharded pub/sub: the message leaves from the state's master only
	case *redis.Client:
		db = cl.Options().DB
	case *redis.Ring:
		db = cl.Options().DB
	}
	suffix := ""
	if db != 0 { // channels are server-wide: deployments in two databases must not hear each other
		suffix = ":" + strconv.Itoa(db)
	}
	c.state.channel += suffix
	c.state.pubArg = string(c.state.pub) + suffix
	wait := c.cfg.timeout / 2
	if c.sharded {
		c.remote = &sharded{base{rdb: client, st: &c.state, wait: wait, leaseMs: c.cfg.leaseTTL.Milliseconds()}}
	} else {
		c.remote = &single{base{rdb: client, st: &c.state, wait: wait, leaseMs: c.cfg.leaseTTL.Milliseconds()}, c.state.clock}
	}
	c.mirror.limit = c.cfg.mirrorLimit
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	c.tokenBase = hex.EncodeToString(tok[:]) + "."
	c.brk.init(c)
	c.acks.init(c)
	c.verify.init(c)
	c.AddObserver(c.cfg.observer)
	c.background(c.checkServer)
	return c
}

// Close stops the Cache's background work (replays, server checks) and waits
// for it. Invalidations still waiting to be replayed are dropped; a Cache is
// not to be used after Close.
func (c *Cache) Close() error {
	c.closer.Do(func() { close(c.closed) })
	c.bg.Wait()
	return nil
}

// background runs f on a goroutine that Close waits for.
func (c *Cache) background(f func()) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		f()
	}()
}

// waitFills waits for the fills that run after their callers returned
// (tests, and Close through bg).
func (c *Cache) waitFills() { c.fills.Wait() }

// pause sleeps for d unless the Cache is closed first (then false).
func (c *Cache) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.closed:
		return false
	}
}

// isClosed reports whether Close has been called.
func (c *Cache) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Namespace returns the escaped key prefix of this Cache, colon included.
func (c *Cache) Namespace() string { return c.ns }

// newIncarnation draws a new incarnation: at least 13 digits (so its member
// "inc:<n>" is never 8 bytes long, like a marker's) and exact in a Lua number.
func (c *Cache) newIncarnation() uint64 {
	return 1<<40 + c.cfg.rand()%(1<<47)
}
