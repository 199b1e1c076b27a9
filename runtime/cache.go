package runtime

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cache is the engine behind every generated repository. It is safe for
// concurrent use; create one per Redis deployment and namespace and share it.
type Cache struct {
	rdb     redis.UniversalClient
	cfg     config
	sharded bool // tag checks cannot run inside one script (Cluster, Ring)
	ctxTO   bool // the client honours context deadlines

	ns     string // escaped namespace followed by ':'
	seqKey string // global invalidation sequence
	nsDep  string // marker bumped by InvalidateNamespace

	epoch   atomic.Uint64 // bumped by every local invalidation; keys the flights
	flights flightGroup
	lookups lookupGroup
	brk     breaker
	stats   counters
	pend    pending

	lastLog   atomic.Int64 // UnixNano of the last Redis error logged
	tokenBase string
	tokenSeq  atomic.Uint64
}

// New returns a Cache over any go-redis v9 client: *redis.Client (single node or
// Sentinel failover), *redis.ClusterClient or *redis.Ring. New(client) alone is
// production-safe: every Redis call is bounded by a 100ms budget, failures fall
// back to the source and a circuit breaker skips a sick Redis.
func New(client redis.UniversalClient, opts ...Option) *Cache {
	c := &Cache{rdb: client, cfg: defaultConfig()}
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
	c.ns = string(AppendString(nil, c.cfg.namespace)) + ":"
	c.seqKey = c.ns + "seq"
	c.nsDep = c.ns + "ns"
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	c.tokenBase = hex.EncodeToString(tok[:]) + "."
	c.brk.init(c)
	return c
}

// Namespace returns the escaped key prefix of this Cache, colon included.
func (c *Cache) Namespace() string { return c.ns }

// token returns a lease token unique to this process and call.
func (c *Cache) token() string {
	return c.tokenBase + strconv.FormatUint(c.tokenSeq.Add(1), 36)
}

// Repo is one generated repository: its keys share a prefix and a version, and
// InvalidateAll drops all of them in O(1).
type Repo struct {
	c    *Cache
	name string // "<prefix>:<version>", escaped
	dep  string // marker bumped by InvalidateAll
}

// Repo returns the handle of the repository with the given prefix and version.
// Bumping version (the generator's version=) orphans every old entry.
func (c *Cache) Repo(prefix string, version int) *Repo {
	name := string(strconv.AppendInt(append(AppendString(nil, prefix), ':'), int64(version), 10))
	return &Repo{c: c, name: name, dep: c.ns + "r:" + name}
}

// Cache returns the Cache the repository lives on.
func (r *Repo) Cache() *Cache { return r.c }

// Name returns "<prefix>:<version>".
func (r *Repo) Name() string { return r.name }

// Spec describes one cached key template of a repository: the get method that
// reads it and the put and evict directives that write it share it.
type Spec[T any] struct {
	// Template is the key template with placeholders emptied, e.g. "user:{}".
	// It names the pattern group of the keyspace.
	Template string
	// Schema is a hash of the result type, so a changed type never decodes old bytes.
	Schema string
	// TTL of a positive entry; Negative of a negative one (0 disables negative caching).
	TTL, Negative time.Duration
	// Jitter spreads both TTLs.
	Jitter Jitter
	// NotFound, when set, is the sentinel error whose results are cached negatively.
	NotFound error
	// IsNil reports a nil result (pointer, slice, map); nil for value types.
	IsNil func(T) bool
}

// Keyspace is the runtime form of a Spec.
type Keyspace[T any] struct {
	space
	spec Spec[T]
}

// space is the type-independent part of a Keyspace.
type space struct {
	c      *Cache
	repo   *Repo
	prefix string   // "<ns>e:{<repo>:<id>:"
	group  string   // pattern-group marker
	deps   []string // markers every entry depends on: namespace, repo, group
	label  string   // "<repo>/<template>" for events and logs
}

// NewKeyspace registers a key template of r. Generated code calls it once per
// get method, in the repository constructor.
func NewKeyspace[T any](r *Repo, spec Spec[T]) *Keyspace[T] {
	h := sha256.Sum256([]byte(spec.Template + "\x00" + spec.Schema))
	id := hex.EncodeToString(h[:8])
	ks := &Keyspace[T]{spec: spec}
	ks.c, ks.repo = r.c, r
	ks.prefix = r.c.ns + "e:{" + r.name + ":" + id + ":"
	ks.group = r.c.ns + "g:" + r.name + ":" + id
	ks.deps = []string{r.c.nsDep, r.dep, ks.group}
	ks.label = r.name + "/" + spec.Template
	return ks
}

// AppendPrefix appends the key prefix of this keyspace to b; generated code then
// appends the template's literals and Append* values, and finishes with Key.
func (s *space) AppendPrefix(b []byte) []byte { return append(b, s.prefix...) }

// Key finishes a key started with AppendPrefix.
func (s *space) Key(b []byte) Key { return Key(append(b, '}')) }

// Group returns the pattern group of this keyspace, for Invalidation.Groups.
func (s *space) Group() Group { return Group(s.group) }

// leaseKey derives the lease key from an entry key: same hash slot, 'l' for 'e'.
func (c *Cache) leaseKey(k Key) string {
	b := []byte(k)
	b[len(c.ns)] = 'l'
	return string(b)
}

// Group is a pattern group: every key of one key template.
type Group string

// Jitter spreads a TTL uniformly over [ttl-spread, ttl+spread].
type Jitter struct {
	frac   float64
	spread time.Duration
}

// Percent is a jitter of p percent of the TTL (Percent(10): 30m becomes 27m–33m).
func Percent(p float64) Jitter { return Jitter{frac: p / 100} }

// Spread is a jitter of a fixed duration either side of the TTL.
func Spread(d time.Duration) Jitter { return Jitter{spread: d} }

// ttl returns the jittered TTL, never below one millisecond nor above max.
func (j Jitter) ttl(base, max time.Duration, r uint64) time.Duration {
	span := j.spread
	if j.frac > 0 {
		span = time.Duration(float64(base) * j.frac)
	}
	t := base
	if span > 0 {
		t += time.Duration(r%uint64(2*span+1)) - span
	}
	if t > max {
		t = max
	}
	if t < time.Millisecond {
		t = time.Millisecond
	}
	return t
}

// Invalidation names what a write makes stale. Keys are entries of this
// repository; Tags are shared by every repository on the Cache; Groups are
// pattern groups (static patterns resolved by the generator).
type Invalidation struct {
	Keys   []Key
	Tags   []string
	Groups []Group
}

func (inv Invalidation) empty() bool {
	return len(inv.Keys) == 0 && len(inv.Tags) == 0 && len(inv.Groups) == 0
}
