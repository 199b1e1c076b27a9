// Package bench measures cachegen side by side with what users would
// otherwise write: no cache (a pgx primary-key lookup), a hand-written
// cache-aside (GET + msgpack.Unmarshal, SET on a miss), github.com/go-redis/cache/v9
// (Once), and a Redis-set-of-keys tag design, on a real Redis and PostgreSQL.
//
// The package is its own module so the peer libraries never become
// dependencies of github.com/cachegen/cachegen. Run it with `make bench` from
// the repository root; docs/BENCHMARKS.md records a full run.
package bench
