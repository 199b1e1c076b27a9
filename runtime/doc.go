// Package runtime is the cache engine behind every repository cachegen
// generates. Users touch three things: New (one Cache per Redis deployment
// and namespace), the generated NewCached<Interface> constructors, and the
// Invalidate helpers for event-driven invalidation. The rest — Keyspace,
// Lookup, Load, Put, Invalidation — is what generated code calls.
//
// # Guarantees
//
//   - One source call per key across goroutines and processes: concurrent
//     readers in a process share round trips and, when they read the same
//     invalidation clock, one load; across processes a
//     Redis lease (SET NX PX with a random token) lets one load while the others
//     poll for its value, bounded by the lease wait, after which they load
//     themselves (the safety valve: nobody hangs).
//   - No stale read after a write has returned: a read that begins after an
//     invalidation returned, in any process, never serves an entry it made
//     stale. An entry records the invalidation clock read before its load
//     began and its tags; it is served only while none of its markers (key,
//     tags, pattern group, repository, namespace) moved past that clock. The
//     invalidation state is one clock and one marker set in one hash slot,
//     with an incarnation that every entry carries: state that Redis loses
//     (eviction, a restart, a failover) is recreated under a new incarnation,
//     so a loss is a miss, never a stale hit. Tags taken from the result are
//     covered too: they are compared against the clock at load start.
//   - Negative caching of nil results and of a sentinel error, flagged in the
//     entry's envelope so no real value can look like a placeholder.
//   - TTL jitter, uniformly spread, on positive and negative TTLs.
//   - Bounded decoding: entries carry a CRC-32C and msgpack payloads are
//     structurally validated before decoding, so corrupt or hostile bytes are a
//     miss (deleted, counted, logged) with allocation bounded by their size.
//   - Versioned keys: namespace, repository prefix and version and a hash of the
//     key template and result type are part of every key; InvalidateAll and
//     InvalidateNamespace are O(1) marker bumps, never KEYS or SCAN.
//   - Tags and pattern groups in O(1): invalidating one costs the same for 10
//     or 100,000 entries. A hit is one MGET of the entry and the clock (one
//     parallel round on Cluster), checked against this process's mirror of
//     the marker set, whatever the number of tags.
//   - Works when Redis is full: invalidations run as allow-oom scripts under
//     noeviction, and every maxmemory-policy is supported; with replicas,
//     an invalidation waits for one to acknowledge it (WAIT).
//   - A two-level cache for keyspaces with Spec.Local (local= in directives):
//     decoded values in an otter cache bounded in bytes (WithLocalCapacity),
//     judged on every read by the same rule as a Redis hit. Every invalidation
//     script publishes its bump (PUBLISH; SPUBLISH on Cluster) and every Cache
//     with local keyspaces applies it to its mirror, so another process's
//     write reaches the L1 when its message arrives, and never later than
//     WithLocalBound (PINGs on the subscription prove it is live); a gap in
//     the subscription drops the L1 until it is back. Every caller gets its
//     own copy (Spec.Clone).
//   - Freshness without misses: with Spec.Refresh (refresh=) a hit past that
//     part of its TTL starts one background reload (one per key across
//     processes, under the lease, its fill conditional like a miss's); with
//     Spec.Stale (stale=) an entry past its TTL is served at once while it is
//     reloaded and while the source fails, up to that bound. Hits that want
//     such work set Read.Background; Load returns them at once and starts
//     it. An invalidated entry is never served, fresh or stale.
//   - Fail-open: Redis errors and timeouts are logged and counted, never
//     returned; every call then goes to the source within the time budget,
//     even for clients built with go-redis defaults. A circuit breaker skips a
//     failing Redis and closes by itself; invalidations that could not be
//     delivered are replayed, and until then this process reads from the source.
//
// # Observability
//
// Stats and Snapshot count every event per keyspace (one atomic add, no
// allocation on the hit path) with latency histograms of source loads and
// Redis lookups; the subpackages cacheprom, cacheotel and health export
// them to Prometheus, OpenTelemetry and an HTTP page. WithVerify re-reads a
// sampled fraction of hits from the source in the background and reports
// a cached value the source disagrees with (docs/observability.md).
//
// See docs/runtime.md for the key layout, the envelope, the lease protocol and
// what happens on each failure.
package runtime
