package runtime

// Hostile bytes (issue 2, guarantee 5): whatever sits at an entry key —
// truncated, bit-flipped, garbage, another format version, or a well-formed
// envelope around a hostile msgpack payload — a read is a miss: no panic, the
// entry is deleted, counted and logged once, and decoding allocates in
// proportion to the entry's size (msgpack v5.4.1 itself would allocate what a
// 5-byte array32 header asks for).

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// countingHandler counts log records whose message contains a substring.
type countingHandler struct {
	substr string
	n      atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substr) {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// sealed wraps payload in an envelope with a correct CRC, as a fill would.
func sealed(ks *Keyspace[*user], flags byte, payload []byte) []byte {
	st := currentState(ks.core.c)
	return appendEnvelope(nil, flags, time.Now().UnixMilli(), time.Now().Add(time.Hour).UnixMilli(), st.inc, st.seq, []uint64{markerID(markTag, "user:1")}, payload)
}

// currentState is the invalidation state's clock (created if missing); a
// Cache without a client gets a fixed one.
func currentState(c *Cache) stateReply {
	if c.rdb == nil {
		return stateReply{inc: 1 << 40, seq: 1}
	}
	st, err := c.ensureState(context.Background())
	if err != nil {
		panic(err)
	}
	return st
}

// reseal recomputes the CRC of an envelope after its header was edited.
func reseal(b []byte) []byte {
	b = bytes.Clone(b)
	p := envFixed + 8*int(b[envFixed-1])
	sum := crc32.Update(crc32.Checksum(b[:p], castagnoli), castagnoli, b[p+4:])
	binary.BigEndian.PutUint32(b[p:], sum)
	return b
}

func hostilePayloads() map[string][]byte {
	deep := append(bytes.Repeat([]byte{0x91}, 100_000), 0xc0)
	userMap, _ := msgpack.Marshal(&user{ID: 1, Name: "Ada", Email: "ada@example.com"})
	return map[string][]byte{
		"array32 huge header":  {0xdd, 0xff, 0xff, 0xff, 0xff},
		"array32 huge + items": {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03},
		"array16 short":        {0xdc, 0x00, 0x03, 0x01, 0x02},
		"map32 huge header":    {0xdf, 0xff, 0xff, 0xff, 0xff},
		"map16 odd":            {0xde, 0x00, 0x01, 0xa1, 'k'},
		"str32 huge header":    {0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b'},
		"bin32 huge header":    {0xc6, 0xff, 0xff, 0xff, 0xff, 0x00},
		"ext32 huge header":    {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
		"deep nesting 100k":    deep,
		"never-used 0xc1":      {0xc1},
		"empty payload":        {},
		"trailing byte":        append(bytes.Clone(userMap), 0x00),
		"two values":           append(bytes.Clone(userMap), userMap...),
		"truncated value":      userMap[:len(userMap)-1],
		"wrong type (string)":  {0xa5, 'h', 'e', 'l', 'l', 'o'},
		"wrong type (array)":   {0x93, 0x01, 0x02, 0x03},
		"field of wrong type":  {0x81, 0xa2, 'I', 'D', 0xa3, 'x', 'y', 'z'},
		"user with huge name":  {0x81, 0xa4, 'N', 'a', 'm', 'e', 0xdb, 0x7f, 0xff, 0xff, 0xff},
		"user with huge field": {0x81, 0xa2, 'I', 'D', 0xdd, 0xff, 0xff, 0xff, 0xff},
	}
}

// hostileEntries are whole values for an entry key, each of which must read
// as a corrupt miss.
func hostileEntries(t *testing.T, ks *Keyspace[*user]) map[string][]byte {
	good, _ := msgpack.Marshal(&user{ID: 1, Name: "Ada", Email: "ada@example.com"})
	valid := sealed(ks, 0, good)
	out := map[string][]byte{}
	for name, p := range hostilePayloads() {
		out["sealed "+name] = sealed(ks, 0, p)
	}
	v2 := bytes.Clone(valid)
	v2[1] = envVersion + 1
	out["format version+1, CRC right"] = reseal(v2)
	v0 := bytes.Clone(valid)
	v0[1] = 0
	out["format version 0, CRC right"] = reseal(v0)
	m := bytes.Clone(valid)
	m[0] = 'x'
	out["wrong magic"] = m
	many := bytes.Clone(valid)
	many[envFixed-1] = 0xff
	out["tag count 255, CRC over a wrong layout"] = many
	out["empty string"] = []byte{}
	out["magic only"] = []byte{envMagic}
	out["header only"] = valid[:envFixed]
	for i := 0; i < len(valid); i++ {
		out["truncated to "+itoa(i)] = valid[:i]
	}
	for i := 0; i < 8*len(valid); i++ {
		f := bytes.Clone(valid)
		f[i/8] ^= 1 << (i % 8)
		out["bit flip "+itoa(i)] = f
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		g := make([]byte, r.IntN(300))
		for j := range g {
			g[j] = byte(r.Uint32())
		}
		if i%2 == 0 && len(g) >= 2 { // past the magic and version checks
			g[0], g[1] = envMagic, envVersion
		}
		out["garbage "+itoa(i)] = g
	}
	if _, ok := decodeEnvelope(valid); !ok {
		t.Fatal("the valid entry does not decode")
	}
	return out
}

func itoa(i int) string { return string(AppendInt(nil, int64(i))) }

// TestHostileEntries writes every hostile value straight into Redis at the
// entry key, on the single-node (script) path and the sharded path.
func TestHostileEntries(t *testing.T) {
	for _, mode := range []struct {
		name    string
		sharded bool
	}{{"single", false}, {"sharded", true}} {
		t.Run(mode.name, func(t *testing.T) {
			rdb := redisClient(t)
			logs := &countingHandler{substr: "corrupt"}
			c := newTestCache(t, rdb, WithCluster(mode.sharded), WithLogger(slog.New(logs)))
			ks := userSpace(c)
			ctx := context.Background()
			key := userKey(ks, 1)

			// The untouched entry is a hit: the cases below differ from it only
			// by the damage they name.
			good, _ := msgpack.Marshal(&user{ID: 1, Name: "Ada", Email: "ada@example.com"})
			if err := rdb.Set(ctx, string(key), sealed(ks, 0, good), time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if u, hit, err := lookup3(ctx, ks, key); !hit || err != nil || u == nil || u.Name != "Ada" {
				t.Fatalf("valid entry: (%v, %v, %v), want a hit", u, hit, err)
			}

			entries := hostileEntries(t, ks)
			var corrupt int64
			for name, raw := range entries {
				if err := rdb.Set(ctx, string(key), raw, time.Minute).Err(); err != nil {
					t.Fatal(err)
				}
				before := c.Stats()
				u, hit, err := lookup3(ctx, ks, key)
				after := c.Stats()
				if hit || err != nil || u != nil {
					t.Errorf("%s: Lookup = (%v, %v, %v), want a miss", name, u, hit, err)
				}
				if n := after.Get(EventCorrupt) - before.Get(EventCorrupt); n != 1 {
					t.Errorf("%s: %d corrupt events, want 1", name, n)
				}
				if n := after.Get(EventRedisError) - before.Get(EventRedisError); n != 0 {
					t.Errorf("%s: counted as %d redis errors", name, n)
				}
				if n := rdb.Exists(ctx, string(key)).Val(); n != 0 {
					t.Errorf("%s: entry not deleted", name)
				}
				corrupt++
			}
			if n := logs.n.Load(); n != 1 {
				t.Errorf("%d corrupt entries logged %d times, want once (one line per log period)", corrupt, n)
			}
			if !c.healthy() {
				t.Errorf("breaker tripped by hostile entries: %v", c.Stats())
			}
			t.Logf("%d hostile entries, stats %v", corrupt, c.Stats())
		})
	}
}

// TestHostileStateKeys: keys of another type where the invalidation state
// belongs (the clock a hash, the marker set a string) neither fail reads
// nor make invalidations impossible (which would hold the breaker open for
// good while the replay kept failing): the state starts over.
func TestHostileStateKeys(t *testing.T) {
	for _, mode := range []struct {
		name    string
		sharded bool
	}{{"single", false}, {"sharded", true}} {
		t.Run(mode.name, func(t *testing.T) {
			rdb := redisClient(t)
			c := newTestCache(t, rdb, WithCluster(mode.sharded))
			ks := userSpace(c)
			ctx := context.Background()
			src := &fakeUsers{rows: map[int64]*user{1: {ID: 1, Name: "Ada"}}}
			for _, foreign := range []func() error{
				func() error { return rdb.HSet(ctx, c.state.clock, "f", "v").Err() },
				func() error {
					if err := rdb.Set(ctx, c.state.clock, "1099511627777:5", 0).Err(); err != nil {
						return err
					}
					return rdb.Set(ctx, c.state.marks, "not a set", 0).Err()
				},
				func() error { return rdb.Set(ctx, c.state.clock, "garbage", 0).Err() },
			} {
				rdb.Del(ctx, c.state.clock, c.state.marks)
				if err := foreign(); err != nil {
					t.Fatal(err)
				}
				if _, err := getUser(ctx, ks, src, 1); err != nil {
					t.Fatal(err)
				}
				if err := c.Invalidate(ctx, Invalidation{Tags: []string{"user:1"}}); err != nil {
					t.Fatalf("invalidation over a foreign state key: %v", err)
				}
				if _, err := getUser(ctx, ks, src, 1); err != nil {
					t.Fatal(err)
				}
				if u, hit, err := lookup3(ctx, ks, userKey(ks, 1)); !hit || err != nil || u == nil {
					t.Fatalf("no hit after the state started over: %v %v %v", u, hit, err)
				}
			}
			if s := c.Stats(); s.Get(EventRedisError) != 0 || !c.healthy() {
				t.Errorf("foreign state keys counted as Redis failures (stats %v, healthy=%v)", s, c.healthy())
			}
		})
	}
}

// bytesAllocated reports the heap bytes allocated while f runs.
func bytesAllocated(f func()) uint64 {
	var a, b goruntime.MemStats
	goruntime.ReadMemStats(&a)
	f()
	goruntime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// decoder is the type-independent view of a Keyspace for the allocation and
// fuzz tests.
type decoder struct {
	name   string
	decode func(e envelope) (ok bool)
}

func decoders(c *Cache) []decoder {
	r := c.Repo("hostile", 1)
	return []decoder{
		dec(NewKeyspace(r, Spec[*user]{Template: "u:{}", Schema: "1"}), "*user"),
		dec(NewKeyspace(r, Spec[[]int64]{Template: "i:{}", Schema: "1"}), "[]int64"),
		dec(NewKeyspace(r, Spec[[]user]{Template: "s:{}", Schema: "1"}), "[]user"),
		dec(NewKeyspace(r, Spec[map[string]string]{Template: "m:{}", Schema: "1"}), "map[string]string"),
		dec(NewKeyspace(r, Spec[string]{Template: "str:{}", Schema: "1"}), "string"),
		dec(NewKeyspace(r, Spec[[]byte]{Template: "b:{}", Schema: "1"}), "[]byte"),
		dec(NewKeyspace(r, Spec[any]{Template: "a:{}", Schema: "1"}), "any"),
	}
}

func dec[T any](ks *Keyspace[T], name string) decoder {
	return decoder{name: name, decode: func(e envelope) bool { _, _, ok := ks.decode(e); return ok }}
}

// TestHostileAllocationBounded: a 5-byte array32 header must not make the
// decoder allocate what it announces. The control shows the measurement
// catches it: msgpack itself allocates 8 MB for a 5-byte header announcing a
// million int64s.
func TestHostileAllocationBounded(t *testing.T) {
	const limit = 1 << 20
	control := bytesAllocated(func() {
		var v []int64
		_ = msgpack.Unmarshal([]byte{0xdd, 0x00, 0x10, 0x00, 0x00}, &v)
	})
	if control < 8<<20 {
		t.Fatalf("control: msgpack allocated %d bytes for a 1M-element header; the premise of this test changed", control)
	}
	c := New(nil, WithLogger(quietLogger()))
	payloads := hostilePayloads()
	for _, name := range []string{"array32 huge header", "map32 huge header", "str32 huge header",
		"bin32 huge header", "ext32 huge header", "user with huge field", "user with huge name"} {
		entry := appendEnvelope(nil, 0, 0, 0, 1<<40, 0, []uint64{1}, payloads[name])
		for _, d := range decoders(c) {
			var ok bool
			n := bytesAllocated(func() {
				e, eok := decodeEnvelope(entry)
				ok = eok && d.decode(e)
			})
			if ok {
				t.Errorf("%s into %s: accepted", name, d.name)
			}
			if n > limit {
				t.Errorf("%s into %s: allocated %d bytes for a %d-byte entry", name, d.name, n, len(entry))
			}
		}
	}
	// The same through Redis and Lookup.
	rdb := redisClient(t)
	tc := newTestCache(t, rdb)
	ks := NewKeyspace(tc.Repo("hostile", 1), Spec[[]int64]{Template: "i:{}", Schema: "1", TTL: time.Minute})
	key := ks.Key(AppendInt(ks.AppendPrefix(nil), 1))
	ctx := context.Background()
	st := currentState(tc)
	entry := appendEnvelope(nil, 0, time.Now().UnixMilli(), time.Now().Add(time.Hour).UnixMilli(), st.inc, st.seq, nil, payloads["array32 huge header"])
	for i := 0; i < 3; i++ {
		if err := rdb.Set(ctx, string(key), entry, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		var hit bool
		n := bytesAllocated(func() { _, hit, _ = lookup3(ctx, ks, key) })
		if hit || n > limit {
			t.Errorf("Lookup of a 5-byte array32 header: hit=%v, %d bytes allocated", hit, n)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		e, _ := decodeEnvelope(entry)
		_, _, _ = ks.decode(e)
	})
	if allocs > 2 {
		t.Errorf("rejecting a hostile header costs %.0f allocations", allocs)
	}
}

// validShapes are msgpack encodings a Keyspace may legitimately store.
func validShapes(t *testing.T) map[string][]byte {
	type inner struct {
		A []int
		M map[string]*inner
		T time.Time
		B []byte
		F float32
	}
	type outer struct {
		ID      int64
		Neg     int64
		U       uint64
		Name    string
		Tags    []string
		Inner   inner
		Ptr     *inner
		Nil     *inner
		Map     map[int]string
		Any     any
		Empty   struct{}
		Skipped string `msgpack:"-"`
		Omit    string `msgpack:",omitempty"`
		Arr     [3]byte
	}
	now := time.Date(2026, 11, 23, 18, 0, 0, 123456789, time.UTC)
	nested := any(1)
	for i := 0; i < 90; i++ {
		nested = []any{nested}
	}
	bigMap := map[string]int{}
	for i := 0; i < 70000; i++ {
		bigMap[itoa(i)] = i
	}
	values := map[string]any{
		"nil":            nil,
		"true":           true,
		"false":          false,
		"0":              0,
		"127":            127,
		"128":            128,
		"255":            255,
		"256":            256,
		"65535":          65535,
		"65536":          65536,
		"-1":             -1,
		"-32":            -32,
		"-33":            -33,
		"-128":           -128,
		"-129":           -129,
		"-32769":         -32769,
		"-2^31-1":        int64(math.MinInt32) - 1,
		"maxint64":       int64(math.MaxInt64),
		"minint64":       int64(math.MinInt64),
		"maxuint64":      uint64(math.MaxUint64),
		"int8":           int8(-5),
		"uint16":         uint16(40000),
		"float32":        float32(1.5),
		"float64":        math.Pi,
		"NaN":            math.NaN(),
		"-Inf":           math.Inf(-1),
		"-0.0":           math.Copysign(0, -1),
		"empty string":   "",
		"fixstr 31":      strings.Repeat("x", 31),
		"str8":           strings.Repeat("x", 32),
		"str16":          strings.Repeat("x", 256),
		"str32":          strings.Repeat("x", 70000),
		"utf8":           "Zoë 日本 🎉",
		"empty bytes":    []byte{},
		"bin8":           []byte("x"),
		"bin16":          bytes.Repeat([]byte{0}, 256),
		"bin32":          bytes.Repeat([]byte{0xdd}, 70000),
		"time":           now,
		"time seconds":   time.Unix(1_700_000_000, 0),
		"time zero":      time.Time{},
		"time pre-1970":  time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC),
		"empty slice":    []int{},
		"nil slice":      []int(nil),
		"fixarray":       []int{1, 2, 3},
		"array16":        make([]int, 16),
		"array32":        make([]int8, 70000),
		"empty map":      map[string]int{},
		"nil map":        map[string]int(nil),
		"fixmap":         map[string]int{"a": 1},
		"map16":          map[int]bool{1: true, 2: false, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true, 10: true, 11: true, 12: true, 13: true, 14: true, 15: true, 16: true},
		"map32":          bigMap,
		"user":           &user{ID: 1, Name: "Ada", Email: "ada@example.com"},
		"zero user":      user{},
		"nil *user":      (*user)(nil),
		"users":          []*user{{ID: 1}, nil, {ID: -3, Name: "x"}},
		"nested structs": outer{ID: 1, Neg: -1 << 40, U: 1 << 63, Name: "n", Tags: []string{"a", ""}, Inner: inner{A: []int{}, M: map[string]*inner{"x": {T: now}, "nil": nil}, T: now, B: []byte{1}, F: -2.5}, Ptr: &inner{}, Map: map[int]string{-1: "m"}, Any: []any{nil, 1.5, "s", map[string]any{}}, Arr: [3]byte{1, 2, 3}},
		"any slice":      []any{nil, true, 1, -1, 1.5, "s", []byte("b"), []any{}, map[string]any{"k": []any{now}}},
		"nested 90":      nested,
		"byte array":     [16]byte{1},
	}
	out := map[string][]byte{}
	for name, v := range values {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = b
		// The encoder's other modes.
		for mode, set := range map[string]func(*msgpack.Encoder){
			"compact":   func(e *msgpack.Encoder) { e.UseCompactInts(true); e.UseCompactFloats(true) },
			"loose":     func(e *msgpack.Encoder) { e.UseCompactInts(false) },
			"arrays":    func(e *msgpack.Encoder) { e.UseArrayEncodedStructs(true) },
			"sorted":    func(e *msgpack.Encoder) { e.SetSortMapKeys(true) },
			"interned":  func(e *msgpack.Encoder) { e.UseInternedStrings(true) },
			"omitempty": func(e *msgpack.Encoder) { e.SetOmitEmpty(true) },
		} {
			var buf bytes.Buffer
			enc := msgpack.NewEncoder(&buf)
			set(enc)
			if err := enc.Encode(v); err != nil {
				t.Fatalf("%s/%s: %v", name, mode, err)
			}
			out[name+"/"+mode] = buf.Bytes()
		}
	}
	// Extension types of every size class, as msgpack frames them.
	for _, n := range []int{1, 2, 4, 8, 16, 0, 3, 17, 255, 256, 65535, 65536} {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		if err := enc.EncodeExtHeader(42, n); err != nil {
			t.Fatal(err)
		}
		buf.Write(bytes.Repeat([]byte{0xc1}, n))
		out["ext "+itoa(n)] = buf.Bytes()
	}
	return out
}

func TestValidMsgpackAcceptsEncodings(t *testing.T) {
	for name, b := range validShapes(t) {
		if !validMsgpack(b) {
			t.Errorf("%s: valid encoding rejected: % x", name, head(b))
			continue
		}
		if !skipsExactly(b) {
			t.Errorf("%s: msgpack's own Skip disagrees", name)
		}
		// msgpack is self-delimiting: no proper prefix is a whole value, and
		// nothing may follow the value. (Long values: a sample of prefixes.)
		prefixes := func(yield func(int) bool) {
			for i := 0; i < len(b); i++ {
				if len(b) > 1024 && i > 64 && i < len(b)-64 {
					i = len(b) - 64 // long values: the first and last 64 prefixes
				}
				if !yield(i) {
					return
				}
			}
		}
		for i := range prefixes {
			if validMsgpack(b[:i]) {
				t.Errorf("%s: prefix of %d/%d bytes accepted", name, i, len(b))
				break
			}
		}
		if validMsgpack(append(bytes.Clone(b), 0xc0)) {
			t.Errorf("%s: trailing byte accepted", name)
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

func TestValidMsgpackRejectsMalformed(t *testing.T) {
	for name, b := range hostilePayloads() {
		switch name {
		case "wrong type (string)", "wrong type (array)", "field of wrong type":
			if !validMsgpack(b) {
				t.Errorf("%s: well-formed msgpack rejected (only decoding into T should fail)", name)
			}
			continue
		}
		if validMsgpack(b) {
			t.Errorf("%s: accepted % x", name, head(b))
		}
	}
	for name, b := range map[string][]byte{
		"nil input":              nil,
		"fixext1 without data":   {0xd4, 0x01},
		"fixext16 short":         append([]byte{0xd8, 0x01}, make([]byte, 15)...),
		"ext8 without type":      {0xc7, 0x00},
		"ext16 length short":     {0xc8, 0x00},
		"float64 short":          {0xcb, 0, 0, 0},
		"uint64 short":           {0xcf, 0},
		"str8 short":             {0xd9, 0x05, 'a'},
		"str16 header short":     {0xda, 0x00},
		"bin8 header missing":    {0xc4},
		"map with key only":      {0x81, 0x01},
		"array missing item":     {0x92, 0x01},
		"nested array 101 deep":  append(bytes.Repeat([]byte{0x91}, 101), 0x01),
		"array with 0xc1 inside": {0x91, 0xc1},
	} {
		if validMsgpack(b) {
			t.Errorf("%s: accepted % x", name, head(b))
		}
	}
}

// skipsExactly reports whether msgpack's decoder skips b as exactly one value.
func skipsExactly(b []byte) bool {
	r := bytes.NewReader(b)
	return msgpack.NewDecoder(r).Skip() == nil && r.Len() == 0
}

// TestValidMsgpackAgreesWithDecoder mutates valid encodings at random and
// checks validMsgpack against msgpack's own Skip: whatever validMsgpack
// accepts msgpack can walk to the end, and whatever msgpack walks to the end
// in at most 101 bytes (so nesting cannot pass validMsgpack's depth bound)
// validMsgpack accepts.
func TestValidMsgpackAgreesWithDecoder(t *testing.T) {
	var seeds [][]byte
	for _, b := range validShapes(t) {
		if len(b) <= 101 {
			seeds = append(seeds, b)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 50_000; i++ {
		b := bytes.Clone(seeds[r.IntN(len(seeds))])
		for m := 1 + r.IntN(3); m > 0 && len(b) > 0; m-- {
			switch r.IntN(4) {
			case 0:
				b[r.IntN(len(b))] ^= 1 << r.IntN(8)
			case 1:
				b[r.IntN(len(b))] = byte(r.Uint32())
			case 2:
				b = b[:r.IntN(len(b))]
			case 3:
				j := r.IntN(len(b) + 1)
				b = append(b[:j], append([]byte{byte(r.Uint32())}, b[j:]...)...)
			}
		}
		agree(t, b)
	}
}

func agree(t *testing.T, b []byte) {
	t.Helper()
	v, s := validMsgpack(b), skipsExactly(b)
	if v && !s {
		t.Fatalf("validMsgpack accepts what msgpack cannot walk: % x", b)
	}
	if s && !v && len(b) <= 101 {
		t.Fatalf("validMsgpack rejects a well-formed value: % x", b)
	}
}

// FuzzDecodeEnvelope: any bytes, as a whole entry or as the payload of an
// intact envelope, never panic decodeEnvelope or Keyspace.decode; an accepted
// entry re-encodes to the same bytes; an accepted payload re-encodes to a
// value that decodes equal; validMsgpack agrees with msgpack's own walk.
func FuzzDecodeEnvelope(f *testing.F) {
	c := New(nil, WithLogger(quietLogger()))
	ks := userSpace(c)
	good, _ := msgpack.Marshal(&user{ID: 1, Name: "Ada", Email: "ada@example.com"})
	f.Add(sealed(ks, 0, good))
	f.Add(sealed(ks, flagNil, nil))
	f.Add(sealed(ks, flagNotFound, []byte("user 2: user not found")))
	f.Add(good)
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x92, 0x01, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x81, 0xa2, 'I', 'D', 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0})
	for _, p := range hostilePayloads() {
		if len(p) < 1000 {
			f.Add(sealed(ks, 0, p))
			f.Add(p)
		}
	}
	users := NewKeyspace(c.Repo("fuzz", 1), Spec[*user]{Template: "u", Schema: "1", NotFound: errNotFound})
	ints := NewKeyspace(c.Repo("fuzz", 1), Spec[[]int64]{Template: "i", Schema: "1"})
	maps := NewKeyspace(c.Repo("fuzz", 1), Spec[map[string]string]{Template: "m", Schema: "1"})
	anys := NewKeyspace(c.Repo("fuzz", 1), Spec[any]{Template: "a", Schema: "1"})
	f.Fuzz(func(t *testing.T, data []byte) {
		if e, ok := decodeEnvelope(data); ok {
			tags := make([]uint64, e.numTags())
			for i := range tags {
				tags[i] = e.tagAt(i)
			}
			if re := appendEnvelope(nil, e.flags, e.storedAt, e.expiresAt, e.inc, e.seq, tags, e.payload); !bytes.Equal(re, data) {
				t.Fatalf("accepted entry re-encodes differently:\n% x\n% x", data, re)
			}
			decodeAll(t, e, users, ints, maps, anys)
		}
		for _, flags := range []byte{0, flagNil, flagNotFound} {
			env := appendEnvelope(nil, flags, 5, 1, 1<<40, 2, []uint64{3}, data)
			e, ok := decodeEnvelope(env)
			if !ok || !bytes.Equal(e.payload, data) || e.flags != flags || e.storedAt != 5 || e.expiresAt != 1 || e.seq != 2 {
				t.Fatalf("intact envelope rejected or misread: %+v %v", e, ok)
			}
			decodeAll(t, e, users, ints, maps, anys)
		}
		agree(t, data)
	})
}

func decodeAll(t *testing.T, e envelope, users *Keyspace[*user], ints *Keyspace[[]int64], maps *Keyspace[map[string]string], anys *Keyspace[any]) {
	t.Helper()
	roundTrip(t, users, e)
	roundTrip(t, ints, e)
	roundTrip(t, maps, e)
	if v, err, ok := anys.decode(e); ok && e.flags == 0 {
		if err != nil {
			t.Fatalf("positive entry decoded with error %v", err)
		}
		b, merr := msgpack.Marshal(v)
		if merr == nil && !validMsgpack(b) {
			t.Fatalf("re-encoding of an accepted value is rejected: % x", b)
		}
	}
}

// roundTrip: a payload accepted as T re-encodes to bytes that are accepted
// and decode to an equal T.
func roundTrip[T any](t *testing.T, ks *Keyspace[T], e envelope) {
	t.Helper()
	v, err, ok := ks.decode(e)
	if !ok {
		return
	}
	switch {
	case e.flags&flagNotFound != 0:
		if ks.core.spec.NotFound == nil || err == nil || err.Error() != string(e.payload) {
			t.Fatalf("not-found entry decoded as (%v, %v)", v, err)
		}
		return
	case e.flags&flagNil != 0:
		if err != nil || !reflect.ValueOf(&v).Elem().IsZero() {
			t.Fatalf("nil entry decoded as (%v, %v)", v, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("positive entry decoded with error %v", err)
	}
	b, merr := msgpack.Marshal(v)
	if merr != nil {
		t.Fatalf("cannot re-encode %#v: %v", v, merr)
	}
	w, _, ok := ks.decode(envelope{payload: b})
	if !ok || !reflect.DeepEqual(v, w) {
		t.Fatalf("re-encoded value does not decode equal: %#v -> % x -> %#v (%v)", v, b, w, ok)
	}
}
