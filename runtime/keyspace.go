package runtime

import (
	"crypto/sha256"
	"encoding/base64"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ksidBytes is the length of a keyspace id: 48 bits of SHA-256, 8 characters
// in a key. Only keyspaces of one repository could ever meet, and a few
// dozen of them collide with odds below 1e-11.
const ksidBytes = 6

// Repo is one generated repository: its keys share a prefix and a version, and
// InvalidateAll drops all of them in O(1).
type Repo struct {
	c     *Cache
	name  string // "<prefix>:<version>", escaped
	given string // the prefix as given, for statistics
	ver   int
	dep   uint64 // marker bumped by InvalidateAll
	local uint64 // marker bumped by DeletePattern, that only L1 entries depend on
	tagNS string // "": tags shared by the Cache; RepoOf: the instantiation's own
}

// Repo returns the handle of the repository with the given prefix and version.
// Bumping version (the generator's version=) orphans every old entry.
func (c *Cache) Repo(prefix string, version int) *Repo {
	name := string(strconv.AppendInt(append(AppendString(nil, prefix), ':'), int64(version), 10))
	return &Repo{c: c, name: name, given: prefix, ver: version, dep: markerID(markRepo, name), local: markerID(markLocal, name)}
}

// RepoOf is Repo for one instantiation of a generic repository: the type
// arguments (spelled by TypeName) join the prefix, so each instantiation has
// its own keys and InvalidateAll, and its tags are its own (tags of its
// entries and of its writes, through Repo.Invalidate, never meet another
// repository's).
func (c *Cache) RepoOf(prefix string, version int, typeArgs ...string) *Repo {
	full := prefix + "[" + strings.Join(typeArgs, ",") + "]"
	r := c.Repo(full, version)
	r.tagNS = full + "\x00"
	return r
}

// TypeName spells T stably across processes and builds, for RepoOf: named
// types by package path and name ("example.com/app/model.User"), with their
// type arguments; composite types in Go syntax over those.
func TypeName[T any]() string { return typeName(reflect.TypeFor[T]()) }

func typeName(t reflect.Type) string {
	if t.Name() != "" {
		if t.PkgPath() == "" {
			return t.Name() // predeclared
		}
		return t.PkgPath() + "." + t.Name() // reflect spells type arguments by path too
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + typeName(t.Elem())
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Array:
		return "[" + strconv.Itoa(t.Len()) + "]" + typeName(t.Elem())
	case reflect.Map:
		return "map[" + typeName(t.Key()) + "]" + typeName(t.Elem())
	}
	return t.String()
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
	// Shape is what the generator predicted SchemaOf[T]() returns, when it
	// could; "" skips the check. A different shape at run time means T was
	// changed after its file was generated: NewKeyspace then logs that the
	// generated file is stale and mixes the real shape into the keyspace,
	// so entries of the old type are never decoded into the new one.
	Shape string
	// TTL of a positive entry; Negative of a negative one (0: nil results and
	// the not-found error are not cached).
	TTL, Negative time.Duration
	// Jitter spreads both TTLs.
	Jitter Jitter
	// NotFound, when set, is the sentinel error whose results are cached
	// negatively (errors.Is).
	NotFound error
	// NotFoundAs, when set, is an error type whose values are not-found
	// results (errors.As, when NotFound is nil): a cached not-found keeps
	// its exported fields, and errors.As on the error a hit returns gives
	// a value of the type with them. With NotFound it says how the
	// sentinel's kind of error is stored.
	NotFoundAs *NotFoundType
	// NotFoundIf, when set, decides which errors are not-found results in
	// place of NotFound and NotFoundAs (a predicate such as ent.IsNotFound).
	// A not-found is cached only when the error a hit would return passes
	// it too.
	NotFoundIf func(error) bool
	// IsNil reports a nil result (pointer, slice, map); nil for value types.
	IsNil func(T) bool
	// Local is how long a read may be served from this process's memory
	// (the two-level cache's L1, docs/runtime.md), never longer than the
	// Redis entry it came from lives; 0 keeps the keyspace out of the L1.
	Local time.Duration
	// Refresh is the fraction of the TTL (0 < Refresh < 1; refresh=80 is
	// 0.8) after which a hit also starts one background reload of the entry
	// (refresh-ahead, docs/runtime.md "Freshness"); 0: off.
	Refresh float64
	// Stale is how long a positive entry may still be served after its TTL
	// while one background reload runs — and while the source fails
	// (stale-while-revalidate, stale-if-error); 0: never. An invalidated
	// entry is never served, fresh or stale.
	Stale time.Duration
	// Clone returns a deep copy of a value, so that no two callers ever
	// share (and race on) one: a value served from the L1, or one load's
	// result handed to several callers. nil when T holds no references
	// (assignment copies it). The generator emits one per result type, or
	// CloneCodec for types it cannot copy field by field.
	Clone func(T) T
	// Method names the get method, for statistics and exporters ("Get");
	// empty, the template names the keyspace.
	Method string
}

// keyspace is a Keyspace as the protocol sees it: over V = *T, so that the
// protocol's code is compiled once for every result type (typed.go).
type keyspace[V any] struct {
	space
	spec  Spec[V]  // the Spec over *T: IsNil is set (a nil *T is a nil result), Clone as given
	zones timeWalk // finds the times of a T (zones.go); nil when a T holds none
	alloc func() V // new(T)
}

// space is the type-independent part of a Keyspace.
type space struct {
	c      *Cache
	repo   *Repo
	prefix string    // "<ns>e:{<repo>:<id>:"
	group  uint64    // pattern-group marker
	deps   [3]uint64 // markers every entry depends on: namespace, repo, group
	depMem [3]string // their sorted-set members
	label  *ksStats  // its counters; prints as "<repo>/<template>" in logs

	loadAvg atomic.Int64 // moving average of source calls, ns (paces waiters)
}

// init registers a key template of r (NewKeyspace, after the shape check).
func initKeyspace[V any](ks *keyspace[V], r *Repo, spec Spec[V], zones timeWalk, alloc func() V) {
	if !(spec.Refresh > 0 && spec.Refresh < 1) { // NaN too
		spec.Refresh = 0
	}
	spec.Stale = max(spec.Stale, 0)
	schema := spec.Schema
	if zones != nil {
		// Entries written before times kept their zones live elsewhere.
		schema += "/zones1"
	}
	h := sha256.Sum256([]byte(spec.Template + "\x00" + schema))
	id := base64.RawURLEncoding.EncodeToString(h[:ksidBytes])
	ks.spec, ks.zones, ks.alloc = spec, zones, alloc
	ks.c, ks.repo = r.c, r
	ks.prefix = r.c.ns + "e:{" + r.name + ":" + id + ":"
	ks.group = markerID(markGroup, r.name+":"+id)
	ks.deps = [3]uint64{r.c.nsDep, r.dep, ks.group}
	for i, d := range ks.deps {
		ks.depMem[i] = memberOf(d)
	}
	ks.label = r.c.reg.register(ks.prefix, ks.group, func() *ksStats {
		return &ksStats{name: r.name + "/" + spec.Template, repo: r.name, prefix: r.given, version: r.ver,
			template: spec.Template, method: spec.Method, local: spec.Local > 0}
	})
	if spec.Local > 0 {
		r.c.localOn()
	}
}

// noEqual makes a struct incomparable: the compiler writes an equality
// function for every comparable struct type a program has a descriptor of,
// and for a type of the protocol, that is one for every result type.
type noEqual [0]func()

// space has no methods: keyspace[V] embeds it, and a method of an
// embedded field is compiled again (a wrapper) for every result type.

// tagIDs returns the marker ids of tags in the tag namespace ns ("": the
// Cache's, shared by every repository).
func tagIDs(ns string, dst []uint64, tagLists ...[]string) []uint64 {
	for _, ts := range tagLists {
		for _, t := range ts {
			dst = append(dst, tagID(ns, t))
		}
	}
	return dst
}

// tagIDs returns the marker ids of the tags of r's entries.
func (r *Repo) tagIDs(dst []uint64, tagLists ...[]string) []uint64 {
	return tagIDs(r.tagNS, dst, tagLists...)
}

// tagID is markerID(markTag, ns+t), without building the string.
func tagID(ns, t string) uint64 {
	h := uint64(fnvOffset)
	h ^= uint64(markTag)
	h *= fnvPrime
	for i := 0; i < len(ns); i++ {
		h ^= uint64(ns[i])
		h *= fnvPrime
	}
	for i := 0; i < len(t); i++ {
		h ^= uint64(t[i])
		h *= fnvPrime
	}
	return h
}

// Group is a pattern group: every key of one key template.
type Group uint64

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
