package runtime

import (
	"context"
	"reflect"
)

// The typed layer: what generated code calls. Everything here is a thin
// wrapper, compiled once per result type T; the protocol underneath — lookup,
// L1, load, lease, fill, hand-off, batch, refresh, put, verify — runs over
// V = *T. Go compiles a generic function once per GC shape, and every pointer
// type is one shape, so the protocol is compiled once for all result types
// (a struct value, a slice, a map, each its own shape, would compile it
// again: ~80 functions each). docs/runtime.md, "One shape for every result
// type".
//
// What crosses the boundary: a V is never nil for a value (nil is a
// negative hit, or an id the source did not return); a V the protocol hands
// back is the caller's own, except a read.shared one, which the L1 keeps and
// which the caller gets a clone of (Spec.Clone). Values are copied out with
// *v, so a T that holds no references needs no clone.

// Keyspace is the runtime form of a Spec.
type Keyspace[T any] struct {
	// core is not embedded: the methods of an embedded field would be
	// promoted, and *Keyspace[T]'s method table (its type descriptor, which
	// every program that holds one needs) would make the compiler write a
	// wrapper of each of them for every T.
	core  keyspace[*T]
	clone func(T) T // Spec.Clone: for values the L1 keeps
}

// AppendPrefix appends the key prefix of this keyspace to b; generated code then
// appends the template's literals and Append* values, and finishes with Key.
func (ks *Keyspace[T]) AppendPrefix(b []byte) []byte { return append(b, ks.core.prefix...) }

// Key finishes a key started with AppendPrefix.
func (ks *Keyspace[T]) Key(b []byte) Key { return Key(append(b, '}')) }

// Group returns the pattern group of this keyspace, for Invalidation.Groups.
func (ks *Keyspace[T]) Group() Group { return Group(ks.core.group) }

// Bypass counts a call that went straight to the source (a nil pointer in a
// key placeholder, a MarshalText error).
func (ks *Keyspace[T]) Bypass() { ks.core.c.emit(EventBypass, ks.core.label, nil) }

// NewKeyspace registers a key template of r. Generated code calls it once per
// get method, in the repository constructor.
func NewKeyspace[T any](r *Repo, spec Spec[T]) *Keyspace[T] {
	if spec.Shape != "" {
		if got := SchemaOf[T](); got != spec.Shape {
			r.c.cfg.logger.Warn("cachegen: the generated file is stale: the result type changed after it was generated; run go generate (entries of the old type are left alone)",
				"repo", r.name, "template", spec.Template, "type", reflect.TypeFor[T]().String())
			spec.Schema += "/" + got
		}
	}
	ks := &Keyspace[T]{clone: spec.Clone}
	initKeyspace(&ks.core, r, pointerSpec(spec), timeWalkOf(reflect.TypeFor[T]()), newOf[T])
	return ks
}

func newOf[T any]() *T { return new(T) }

// pointerSpec is spec over *T: a nil *T is a nil result, and a clone is a
// new *T (TestPointerSpecCopiesEveryField).
func pointerSpec[T any](s Spec[T]) Spec[*T] {
	p := Spec[*T]{Template: s.Template, Schema: s.Schema, Shape: s.Shape, TTL: s.TTL, Negative: s.Negative,
		Jitter: s.Jitter, NotFound: s.NotFound, NotFoundAs: s.NotFoundAs, NotFoundIf: s.NotFoundIf,
		Local: s.Local, Refresh: s.Refresh, Stale: s.Stale, Method: s.Method}
	isNil := s.IsNil
	p.IsNil = func(v *T) bool { return v == nil || isNil != nil && isNil(*v) }
	if clone := s.Clone; clone != nil {
		p.Clone = func(v *T) *T {
			if v == nil {
				return nil
			}
			c := clone(*v)
			return &c
		}
	}
	return p
}

// Read is what Lookup found. On a hit, Value and Err are the method's results
// (Err is the cached not-found error of a negative entry); on a miss, pass it
// on to Load, which uses the clock it was read with.
//
// Its other fields are the protocol's read, embedded (one copy of the
// state on the hit path, not two):
//
//	Err        error // the cached not-found error of a negative hit
//	Hit        bool  // a hit: Value and Err are the method's results
//	Background bool  // the hit wants its Loader (see below)
//
// Background marks a hit that wants its Loader for work after the caller
// has the value: a refresh= or stale= reload is due, or WithVerify sampled
// it. Pass the Read on to Load with the Loader: Load returns the hit at once
// and starts that work. Generated code returns a hit without building its
// Loader unless Background is set.
type Read[T any] struct {
	Value T
	read[*T]
}

// typed fills rd.Value from the protocol's read: the caller's own copy.
func (ks *Keyspace[T]) typed(rd *Read[T]) {
	if p := rd.v; p != nil {
		rd.Value = *p
		if rd.shared && ks.clone != nil {
			rd.Value = ks.clone(rd.Value)
		}
		rd.v = nil // Load needs the rest only
	}
}

// Lookup is the hit path. A local keyspace first asks the L1 (local.go).
// Then: one MGET of the entry and the invalidation clock on
// a single node, one parallel round (entry ∥ clock) on Cluster, no script and
// no per-tag work in Redis. The entry is served if its incarnation is the
// clock's and no marker it depends on moved past its fill seq, which the
// process's mirror of the markers answers (docs/runtime.md). A miss — no
// entry, a stale or corrupt one, Redis unavailable — returns Hit false.
func Lookup[T any](ctx context.Context, ks *Keyspace[T], key Key) (rd Read[T]) {
	lookup(ctx, &ks.core, key, true, &rd.read)
	ks.typed(&rd)
	return rd
}

// LookupBytes is Lookup for a key still in the caller's buffer (b, as
// AppendPrefix and the Append* helpers built it, without the closing brace
// Key adds): an L1 hit reads the key in place, so it allocates nothing for
// it; the key string is made only when Redis must be asked.
func LookupBytes[T any](ctx context.Context, ks *Keyspace[T], b []byte) (rd Read[T]) {
	lookupBytes(ctx, &ks.core, b, &rd.read)
	ks.typed(&rd)
	return rd
}

// Load is the miss path (docs/runtime.md, "The miss path and the lease
// protocol"). Concurrent callers in this process that read the same clock
// share one load; across processes a Redis lease lets one caller load while
// the others wait, bounded by the lease wait, for its value — or for its
// hand-off when an invalidation rejected its fill. The fill is conditional:
// it is dropped when the lease was lost or any marker of the entry (its key,
// tags, group, repository, the namespace) moved after the clock rd was read
// with. Redis trouble never fails the call: the source's answer is returned.
func Load[T any](ctx context.Context, rd Read[T], l Loader[T]) (T, error) {
	if rd.Hit { // rd.Background: a reload is due, or WithVerify sampled it
		if rd.Background {
			_, _ = loadRead(ctx, rd.read, loaderOf(l))
		}
		return rd.Value, rd.Err
	}
	v, err := loadRead(ctx, rd.read, loaderOf(l))
	if v == nil {
		var zero T
		return zero, err
	}
	return *v, err
}

// loaderOf is l over *T.
func loaderOf[T any](l Loader[T]) loader[*T] {
	p := loader[*T]{Tags: l.Tags}
	if load := l.Load; load != nil {
		p.Load = func(ctx context.Context) (*T, error) {
			v, err := load(ctx)
			return &v, err
		}
	}
	if rt := l.ResultTags; rt != nil {
		p.ResultTags = func(v *T) ([]string, bool) { return rt(*v) }
	}
	return p
}

// Put is the write-through of a put directive: it invalidates inv and the
// key's own marker, then stores v under key with the keyspace's TTL and
// jitter and the given entry tags, at the seq of that invalidation, voiding
// any read lease on the key. Redis errors are logged, never returned. Two
// concurrent puts of one key store in the order they reach Redis, which may
// differ from the order their database writes committed; use evict for rows
// with concurrent writers.
func Put[T any](ctx context.Context, ks *Keyspace[T], key Key, v T, tags []string, inv Invalidation) {
	put(ctx, &ks.core, key, &v, tags, inv)
}

// Batch is what generated code hands to GetMany for a batch read: a get
// whose key template names a slice parameter. Its entries are those of the
// single get of the same template (docs/runtime.md, "Batch reads").
type Batch[K comparable, T any] struct {
	// Key appends id's part of the key (the template's literals and the
	// id) after the keyspace's prefix.
	Key func(b []byte, id K) []byte
	// Load calls the wrapped repository with the ids the cache could not
	// answer; an id it leaves out of the map (or maps to nil) is not found.
	Load func(ctx context.Context, ids []K) (map[K]T, error)
	// Tags, when set, are an id's tags known before the load.
	Tags func(id K) []string
	// ResultTags, when set, returns the tags taken from a positive result.
	ResultTags func(v T) (tags []string, ok bool)
}

// batchOf is a Batch's typed side (batchSource) and the caller's map.
type batchOf[K comparable, T any] struct {
	b     Batch[K, T]
	clone func(T) T
	out   map[K]T // nil: values are dropped (Warm)
}

func (s *batchOf[K, T]) load(ctx context.Context, ids []K, got []*T) error {
	m, err := s.b.Load(ctx, ids)
	if err != nil {
		return err
	}
	for j, id := range ids {
		if v, ok := m[id]; ok {
			got[j] = &v
		}
	}
	return nil
}

func (s *batchOf[K, T]) resultTags() func(*T) ([]string, bool) {
	rt := s.b.ResultTags
	if rt == nil {
		return nil
	}
	return func(v *T) ([]string, bool) { return rt(*v) }
}

func (s *batchOf[K, T]) put(id K, v *T, shared bool) {
	if s.out == nil {
		return
	}
	x := *v
	if shared && s.clone != nil {
		x = s.clone(x)
	}
	s.out[id] = x
}

// batchFor is b as the protocol sees it, putting its values into out.
func batchFor[K comparable, T any](ks *Keyspace[T], b Batch[K, T], out map[K]T) batch[K, *T] {
	return batch[K, *T]{Key: b.Key, Tags: b.Tags, src: &batchOf[K, T]{b: b, clone: ks.clone, out: out}}
}

// GetMany reads ids through the cache: one round trip for the lookups, one
// source call (per chunk) for every id the cache could not answer, one
// round trip for the fills, off the caller's path. Ids the source did not
// return are cached negatively and left out of the map. An empty input
// returns an empty map; an error of the source fails the whole call.
func GetMany[K comparable, T any](ctx context.Context, ks *Keyspace[T], ids []K, b Batch[K, T]) (map[K]T, error) {
	if len(ids) == 0 {
		return map[K]T{}, nil
	}
	uniq := uniqueIDs(ids)
	out := make(map[K]T, len(uniq))
	if _, err := getMany(ctx, &ks.core, uniq, batchFor(ks, b, out)); err != nil {
		return nil, err
	}
	return out, nil
}

// InvalidateMany drops the entries of ids (a batch read's
// Invalidate<Method>): one invalidation for all of them.
func InvalidateMany[K comparable, T any](ctx context.Context, ks *Keyspace[T], ids []K, b Batch[K, T]) error {
	return invalidateKeys(ctx, ks.core.c, batchKeys(&ks.core.space, uniqueIDs(ids), b.Key))
}

// Warm loads ids into the cache through the batch protocol, a chunk at a
// time: ids already cached cost a lookup, and instances warming the same ids
// at once share leases instead of loading them twice. It returns when every
// chunk's fills are done, or at the first error of the source (or ctx).
// Generated code calls it from Warm<Method>.
func Warm[K comparable, T any](ctx context.Context, ks *Keyspace[T], ids []K, b Batch[K, T], opts ...WarmOption) error {
	return warm(ctx, &ks.core, ids, batchFor(ks, b, nil), opts...)
}
