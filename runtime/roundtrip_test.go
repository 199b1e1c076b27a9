package runtime

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// The corpus of result types of the round-trip property: what real
// repositories return (times in every kind of location, nil and empty
// containers, pointers, embedded and nested structs, named types, bytes,
// integers at their limits, NaN and infinities).
type (
	rtName  string
	rtIDs   []int64
	rtMeta  map[string]string
	rtAudit struct {
		CreatedAt time.Time
		UpdatedAt *time.Time
		DeletedAt time.Time `msgpack:"deleted_at"`
	}
	rtTag struct {
		Name  rtName
		Since time.Time
	}
	rtArticle struct {
		rtAudit // embedded value
		Owner   *RTOwner
		ID      int64 `msgpack:"id"`
		Title   string
		Body    []byte
		Tags    []rtTag
		ByName  map[string]rtTag
		ByID    map[int64]*rtTag
		Scores  []float64
		Score32 float32
		Small   int8
		Big     uint64
		Min     int64
		IDs     rtIDs
		Meta    rtMeta
		Grid    [2][]time.Time
		Nested  *rtArticle
		Secret  string `msgpack:"-"`
	}
	RTOwner struct {
		Login string
		Seen  []*time.Time
	}
	rtPage struct {
		Items []rtArticle
		Next  string
		Total int
	}
)

var rtZones = func() []*time.Location {
	l := []*time.Location{time.UTC, time.Local, time.FixedZone("", 0), time.FixedZone("", 3600), time.FixedZone("EST", -5*3600), time.FixedZone("+05:45", 5*3600+45*60)}
	for _, n := range []string{"Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"} {
		if z, err := time.LoadLocation(n); err == nil {
			l = append(l, z)
		}
	}
	return l
}()

// gen fills v (addressable) with random contents; depth bounds recursion.
func gen(r *rand.Rand, v reflect.Value, depth int) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		sec := r.Int64N(4e9) - 1e9
		t := time.Unix(sec, r.Int64N(1e9)).In(rtZones[r.IntN(len(rtZones))])
		switch r.IntN(8) {
		case 0:
			t = time.Time{}
		case 1:
			t = time.Now() // a monotonic reading, never stored
		}
		v.Set(reflect.ValueOf(t))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if depth > 3 || r.IntN(3) == 0 {
			return
		}
		p := reflect.New(v.Type().Elem())
		gen(r, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		switch r.IntN(4) {
		case 0: // nil
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, r.IntN(3)))
		default:
			if depth > 3 {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
				return
			}
			n := 1 + r.IntN(3)
			s := reflect.MakeSlice(v.Type(), n, n)
			for i := range n {
				gen(r, s.Index(i), depth+1)
			}
			v.Set(s)
		}
	case reflect.Array:
		for i := range v.Len() {
			gen(r, v.Index(i), depth+1)
		}
	case reflect.Map:
		switch r.IntN(4) {
		case 0:
		case 1:
			v.Set(reflect.MakeMap(v.Type()))
		default:
			m := reflect.MakeMap(v.Type())
			for range 1 + r.IntN(4) {
				k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
				gen(r, k, depth+1)
				gen(r, e, depth+1)
				m.SetMapIndex(k, e)
			}
			v.Set(m)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() || f.Anonymous {
				if f.Tag.Get("msgpack") != "-" {
					gen(r, v.Field(i), depth+1)
				}
			}
		}
	case reflect.String:
		v.SetString([]string{"", "a", "héllo", "x:y{z}", strconv.Itoa(r.IntN(1000))}[r.IntN(5)])
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		bits := v.Type().Bits()
		v.SetInt([]int64{0, -1, 1, -1 << (bits - 1), 1<<(bits-1) - 1, r.Int64() >> (64 - bits)}[r.IntN(6)])
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		bits := v.Type().Bits()
		v.SetUint([]uint64{0, 1, 1<<bits - 1, r.Uint64() >> (64 - bits)}[r.IntN(4)])
	case reflect.Float32, reflect.Float64:
		v.SetFloat([]float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat32, math.SmallestNonzeroFloat32, r.Float64()}[r.IntN(8)])
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	}
}

// same is deep equality as a caller sees it: times equal in instant,
// location name, zone abbreviation and offset (a decoded location is
// another *time.Location with the same rules; the monotonic reading is
// dropped), NaN equal to NaN and -0 apart from 0; everything else as
// reflect.DeepEqual, nil apart from empty.
func same(a, b reflect.Value, path string) string {
	if a.Type() == reflect.TypeFor[time.Time]() {
		x, y := a.Interface().(time.Time), b.Interface().(time.Time)
		xa, xo := x.Zone()
		ya, yo := y.Zone()
		if !x.Equal(y) || x.Location().String() != y.Location().String() || xa != ya || xo != yo ||
			x.Format(time.RFC3339Nano) != y.Format(time.RFC3339Nano) {
			return path + ": " + x.String() + " came back as " + y.String()
		}
		return ""
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		if a.IsNil() != b.IsNil() {
			return path + ": nil " + strconv.FormatBool(a.IsNil()) + " came back as nil " + strconv.FormatBool(b.IsNil())
		}
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		return same(a.Elem(), b.Elem(), "(*"+path+")")
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return path + ": length " + strconv.Itoa(a.Len()) + " came back as " + strconv.Itoa(b.Len())
		}
		for i := range a.Len() {
			if d := same(a.Index(i), b.Index(i), path+"["+strconv.Itoa(i)+"]"); d != "" {
				return d
			}
		}
	case reflect.Map:
		if a.Len() != b.Len() {
			return path + ": map length differs"
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() {
				return path + ": key missing"
			}
			if d := same(a.MapIndex(k), bv, path+"[k]"); d != "" {
				return d
			}
		}
	case reflect.Struct:
		for i := range a.NumField() {
			f := a.Type().Field(i)
			if f.Tag.Get("msgpack") == "-" {
				continue
			}
			if d := same(a.Field(i), b.Field(i), path+"."+f.Name); d != "" {
				return d
			}
		}
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		if math.IsNaN(x) && math.IsNaN(y) {
			return ""
		}
		if x != y || math.Signbit(x) != math.Signbit(y) {
			return path + ": " + strconv.FormatFloat(x, 'g', -1, 64) + " came back as " + strconv.FormatFloat(y, 'g', -1, 64)
		}
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			return path + ": differs"
		}
	}
	return ""
}

func roundTripProperty[T any](t *testing.T, c *Cache, n int) {
	t.Helper()
	ks := NewKeyspace(c.Repo("rt", 1), Spec[T]{Template: reflect.TypeFor[T]().String(), TTL: time.Minute})
	r := rand.New(rand.NewPCG(1, uint64(n)))
	for i := range n {
		var v T
		gen(r, reflect.ValueOf(&v).Elem(), 0)
		flags, payload, err := ks.encode(v)
		if err != nil {
			t.Fatalf("%T #%d: encode: %v", v, i, err)
		}
		got, gerr, ok := ks.decode(envelope{flags: flags, payload: payload})
		if !ok || gerr != nil {
			t.Fatalf("%T #%d: decode failed (%v)", v, i, gerr)
		}
		if d := same(reflect.ValueOf(v), reflect.ValueOf(got), "result"); d != "" {
			t.Fatalf("%T #%d: %s", v, i, d)
		}
		if d := same(reflect.ValueOf(v), reflect.ValueOf(CloneCodec(v)), "result"); d != "" {
			t.Fatalf("%T #%d: CloneCodec: %s", v, i, d)
		}
	}
}

// TestRoundTripProperty: decode(encode(v)) is v, as a caller compares
// values, over random values of the corpus.
func TestRoundTripProperty(t *testing.T) {
	c := newTestCache(t, redisClient(t))
	roundTripProperty[time.Time](t, c, 300)
	roundTripProperty[*time.Time](t, c, 100)
	roundTripProperty[[]time.Time](t, c, 100)
	roundTripProperty[map[string]time.Time](t, c, 100)
	roundTripProperty[rtArticle](t, c, 500)
	roundTripProperty[*rtArticle](t, c, 300)
	roundTripProperty[[]rtArticle](t, c, 200)
	roundTripProperty[rtPage](t, c, 200)
	roundTripProperty[map[rtName][]*rtTag](t, c, 200)
	roundTripProperty[rtIDs](t, c, 100)
	roundTripProperty[rtMeta](t, c, 100)
	roundTripProperty[[]byte](t, c, 100)
	roundTripProperty[struct {
		A []rtArticle
		N string
		T int
	}](t, c, 100)
}

// A secret tagged `msgpack:"-"` is not in the payload.
func TestRoundTripDropsTagged(t *testing.T) {
	c := newTestCache(t, redisClient(t))
	ks := NewKeyspace(c.Repo("rt", 1), Spec[rtArticle]{Template: "a:{}", TTL: time.Minute})
	_, payload, err := ks.encode(rtArticle{Secret: "hunter2-secret", Title: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(payload); !contains(s, "t") || contains(s, "hunter2") {
		t.Fatalf("payload %q: want the title and not the secret", s)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// Times of every zone survive Redis: a fill, then a hit from another Cache.
func TestTimesKeepZonesThroughRedis(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	ns := testNamespace(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	want := rtPage{Items: []rtArticle{{rtAudit: rtAudit{CreatedAt: time.Date(2024, 7, 1, 12, 0, 0, 5, berlin), DeletedAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", -3*3600))}}}, Next: "n"}
	spec := Spec[rtPage]{Template: "p:{}", TTL: time.Minute}
	for i, c := range []*Cache{New(rdb, WithNamespace(ns), WithLogger(quietLogger())), New(rdb, WithNamespace(ns), WithLogger(quietLogger()))} {
		ks := NewKeyspace(c.Repo("rt", 1), spec)
		calls := 0
		rd := LookupBytes(ctx, ks, AppendString(ks.AppendPrefix(nil), "x"))
		got, err := Load(ctx, rd, Loader[rtPage]{Load: func(context.Context) (rtPage, error) { calls++; return want, nil }})
		c.waitFills()
		if err != nil {
			t.Fatal(err)
		}
		if d := same(reflect.ValueOf(want), reflect.ValueOf(got), "result"); d != "" {
			t.Fatalf("cache %d: %s", i, d)
		}
		if i == 1 && calls != 0 {
			t.Fatalf("the second cache loaded (%d calls): want a hit", calls)
		}
	}
}

// A zone table that does not fit the value, or that is cut short, is a
// miss, never a panic or a wrong zone.
func TestCorruptZoneTables(t *testing.T) {
	c := newTestCache(t, redisClient(t))
	ks := NewKeyspace(c.Repo("rt", 1), Spec[[]time.Time]{Template: "z:{}", TTL: time.Minute})
	v := []time.Time{time.Unix(1, 0).In(time.FixedZone("A", 60)), time.Unix(2, 0).In(time.FixedZone("B", 120))}
	flags, payload, err := ks.encode(v)
	if err != nil || flags&flagZones == 0 {
		t.Fatalf("flags %d, err %v: want a zone table", flags, err)
	}
	for cut := range len(payload) {
		ks.decode(envelope{flags: flags, payload: payload[:cut]})
	}
	one, _, _ := ks.encode(v[:1])
	_, p1, _ := ks.encode(v[:1])
	if _, _, ok := ks.decode(envelope{flags: one, payload: append(p1[:len(p1)-len(mustMarshal(v[:1]))], mustMarshal(v)...)}); ok {
		t.Fatal("a table of one time decoded a value of two")
	}
	r := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		b := append([]byte(nil), payload...)
		b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
		ks.decode(envelope{flags: flags, payload: b})
	}
}

func mustMarshal(v []time.Time) []byte {
	_, p, _ := (&Keyspace[[]time.Time]{}).encode(v)
	return p
}

type rtNotFound struct {
	Code     int32
	Reason   string
	Metadata map[string]string
	cause    error
}

func (e *rtNotFound) Error() string { return e.Reason + ": not found" }

// Is matches by code and reason, as kratos' errors do.
func (e *rtNotFound) Is(target error) bool {
	t, ok := target.(*rtNotFound)
	return ok && t.Code == e.Code && t.Reason == e.Reason
}

// A not-found error type keeps its exported fields through Redis; a
// sentinel still matches; a predicate that the rebuilt error fails is
// never cached.
func TestNotFoundKinds(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	sentinel := &rtNotFound{Code: 404, Reason: "USER_NOT_FOUND"}
	cases := []struct {
		name   string
		spec   Spec[string]
		cached bool
	}{
		{"type", Spec[string]{NotFoundAs: ErrorType[*rtNotFound]()}, true},
		{"sentinel with type", Spec[string]{NotFound: sentinel, NotFoundAs: ErrorType[*rtNotFound]()}, true},
		{"predicate with type", Spec[string]{NotFoundIf: func(err error) bool {
			var e *rtNotFound
			return errors.As(err, &e) && e.Code == 404
		}, NotFoundAs: ErrorType[*rtNotFound]()}, true},
		{"predicate on text only", Spec[string]{NotFoundIf: func(err error) bool {
			var e *rtNotFound
			return errors.As(err, &e)
		}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := testNamespace(t)
			srcErr := &rtNotFound{Code: 404, Reason: "USER_NOT_FOUND", Metadata: map[string]string{"id": "7"}, cause: errors.New("sql: no rows")}
			calls := 0
			for i := range 2 {
				c := New(rdb, WithNamespace(ns), WithLogger(quietLogger()))
				spec := tc.spec
				spec.Template, spec.TTL, spec.Negative = "u:{}", time.Minute, time.Minute
				ks := NewKeyspace(c.Repo("nf", 1), spec)
				rd := LookupBytes(ctx, ks, AppendString(ks.AppendPrefix(nil), "7"))
				_, err := Load(ctx, rd, Loader[string]{Load: func(context.Context) (string, error) { calls++; return "", srcErr }})
				c.waitFills()
				if err == nil || err.Error() != srcErr.Error() {
					t.Fatalf("read %d: err %v, want %q", i, err, srcErr.Error())
				}
				var got *rtNotFound
				if !errors.As(err, &got) || got.Code != 404 || got.Reason != "USER_NOT_FOUND" {
					t.Fatalf("read %d: errors.As gives %+v", i, got)
				}
				if i == 1 && tc.cached && got.Metadata["id"] != "7" {
					t.Fatalf("hit lost the metadata: %+v", got)
				}
				if tc.spec.NotFound != nil && !errors.Is(err, sentinel) {
					t.Fatalf("read %d: not errors.Is the sentinel", i)
				}
			}
			if want := map[bool]int{true: 1, false: 2}[tc.cached]; calls != want {
				t.Fatalf("%d source calls, want %d", calls, want)
			}
		})
	}
}

// TestLocalTimesNeedNoWalk: times all in time.Local (what pgx and
// database/sql drivers return) come back in time.Local, and their hits do not
// walk the value (flagLocal); one time in another zone brings the table back.
func TestLocalTimesNeedNoWalk(t *testing.T) {
	c := New(nil, WithLogger(quietLogger()))
	ks := NewKeyspace(c.Repo("rt", 1), Spec[rtArticle]{Template: "l:{}", TTL: time.Minute})
	now := time.Unix(1700000000, 42)
	v := rtArticle{rtAudit: rtAudit{CreatedAt: now, UpdatedAt: &now}}
	flags, payload, err := ks.encode(v)
	if err != nil || flags != flagLocal {
		t.Fatalf("flags %b, %v", flags, err)
	}
	env := appendEnvelope(nil, flags, 0, time.Now().Add(time.Hour).UnixMilli(), 1, 1, nil, payload)
	e, _ := decodeEnvelope(env)
	got, _, ok := ks.decode(e)
	if !ok || got.CreatedAt.Location() != time.Local || !got.CreatedAt.Equal(now) || got.UpdatedAt.Location() != time.Local || !got.DeletedAt.IsZero() {
		t.Fatalf("decoded %+v", got)
	}
	v.DeletedAt = now.UTC()
	if flags, _, _ := ks.encode(v); flags != flagZones {
		t.Fatalf("a UTC time among local ones: flags %b", flags)
	}
}
