package annotations

import (
	"go/token"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var at = token.Position{Filename: "x.go", Line: 7, Column: 2, Offset: 100}

// col returns the position of byte i of a directive that starts at at.
func col(i int) token.Position {
	p := at
	p.Column += i
	p.Offset += i
	return p
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		text string
		verb string
		args map[string]string
		err  string // substring of the first error, "" for none
		col  int    // byte offset the first error points at
	}{
		{text: `//cache:get key="user:{id}" ttl=30m`, verb: "get", args: map[string]string{"key": "user:{id}", "ttl": "30m"}},
		{text: "//cache:repo\tprefix=users  version=1 ", verb: "repo", args: map[string]string{"prefix": "users", "version": "1"}},
		{text: `//cache:evict tags="a b,c\"d"`, verb: "evict", args: map[string]string{"tags": `a b,c"d`}},
		{text: `//cache:get`, verb: "get", args: map[string]string{}},
		{text: `//cache:`, err: "missing verb", col: 8},
		{text: `//cache:get key`, err: `expected key=value, found "key"`, col: 12},
		{text: `//cache:get key= ttl=1m`, err: "missing value for key", col: 12},
		{text: `//cache:get key="abc`, err: "unterminated string", col: 16},
		{text: `//cache:get key="a\qb"`, err: "invalid string", col: 16},
		{text: `//cache:get key="a"b`, err: "missing space after", col: 19},
		{text: `//cache:get key=a"b"`, err: "stray quote", col: 16},
		{text: `//cache:get ttl=1m ttl=2m`, err: "duplicate option ttl", col: 19},
		{text: `//cache:get =x`, err: "expected key=value", col: 12},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			d, errs := ParseLine(at, tt.text)
			if tt.err != "" {
				if len(errs) == 0 {
					t.Fatalf("no error, want %q", tt.err)
				}
				if !strings.Contains(errs[0].Msg, tt.err) {
					t.Fatalf("error %q, want %q", errs[0].Msg, tt.err)
				}
				if errs[0].Pos != col(tt.col) {
					t.Fatalf("error at %v, want %v", errs[0].Pos, col(tt.col))
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("unexpected errors: %v", errs)
			}
			if d.Verb != tt.verb {
				t.Fatalf("verb %q, want %q", d.Verb, tt.verb)
			}
			got := map[string]string{}
			for _, a := range d.Args {
				got[a.Key] = a.Value
			}
			if !reflect.DeepEqual(got, tt.args) {
				t.Fatalf("args %v, want %v", got, tt.args)
			}
		})
	}
}

func TestArgPositions(t *testing.T) {
	d, errs := ParseLine(at, `//cache:get key="user:{id}" ttl=30m`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	key, _ := d.Arg("key")
	if key.Pos != col(12) || key.ValuePos != col(16) {
		t.Fatalf("key at %v value at %v", key.Pos, key.ValuePos)
	}
	if key.At(5) != col(22) { // the '{' of {id}
		t.Fatalf("At(5) = %v", key.At(5))
	}
	ttl, _ := d.Arg("ttl")
	if ttl.At(1) != col(33) {
		t.Fatalf("ttl At(1) = %v", ttl.At(1))
	}
}

func decode(t *testing.T, text string) (Decoded, Errors) {
	t.Helper()
	d, errs := ParseLine(at, text)
	if len(errs) > 0 {
		t.Fatalf("parse %q: %v", text, errs)
	}
	return Decode(d)
}

// Positions and hashes parse: {$2.ID}, {filter#}, {$3#}.
func TestPositionsAndHashes(t *testing.T) {
	got, errs := decode(t, `//cache:get key="a:{$2.ID}:{filter#}:{$3#}" ignore=$4`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	m := got.Method
	ps := m.Key.Placeholders()
	if len(ps) != 3 || ps[0].Name() != "$2.ID" || ps[0].Hash || !ps[1].Hash || ps[1].Path[0] != "filter" || ps[2].Name() != "$3#" {
		t.Fatalf("placeholders %+v", ps)
	}
	if Position("$2") != 2 || Position("$12") != 12 || Position("$0") != 0 || Position("$") != 0 || Position("x") != 0 || Position("$2a") != 0 {
		t.Fatal("Position")
	}
	if len(m.Ignore) != 1 || m.Ignore[0].Name != "$4" {
		t.Fatalf("ignore %+v", m.Ignore)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		text, err string
		col       int
	}{
		{`//cache:gte key=x`, `unknown verb "gte"`, 8},
		{`//cache:get key=x ignore=a,2b`, `bad ignore "2b": want parameter names or positions (ignore=opts,trace or ignore=$3)`, 27},
		{`//cache:get key=x ignore=$0`, `bad ignore "$0"`, 25},
		{`//cache:get key=x tll=1m`, `unknown option "tll" for //cache:get (want key, ttl, jitter, negative, notfound, local, refresh, stale, tags, ignore)`, 18},
		{`//cache:repo lokal=1m`, `unknown option "lokal" for //cache:repo (want prefix, version, ttl, jitter, negative, notfound, local, refresh, stale)`, 13},
		{`//cache:put key=x local=1m`, `unknown option "local" for //cache:put`, 18},
		{`//cache:get key=x local=10`, `bad local "10": want a Go duration such as 30s, 10m or 1h30m (0 turns the in-process cache off)`, 24},
		{`//cache:get key=x local=soon`, `bad local "soon": want a Go duration`, 24},
		{`//cache:get key=x local=-5s`, `bad local "-5s": must not be negative`, 24},
		{`//cache:repo local=1x`, `bad local "1x"`, 19},
		{`//cache:get key=x ttl=10`, `bad ttl "10"`, 22},
		{`//cache:get key=x ttl=0`, `ttl must be positive`, 22},
		{`//cache:get key=x ttl=-1m`, `bad ttl "-1m": must not be negative`, 22},
		{`//cache:get key=x negative=soon`, `bad negative "soon"`, 27},
		{`//cache:get key=x jitter=100%`, `bad jitter percentage`, 25},
		{`//cache:get key=x jitter=abc%`, `bad jitter percentage`, 25},
		{`//cache:get key=x jitter=ten`, `bad jitter "ten"`, 25},
		{`//cache:get key=x notfound=a.b.c`, `bad notfound "a.b.c"`, 27},
		{`//cache:get ttl=1m`, `needs a key=`, 8},
		{`//cache:put key=x value=p.q`, `value must name a parameter`, 24},
		{`//cache:evict`, `names nothing to invalidate`, 8},
		{`//cache:repo version=-2`, `bad version "-2"`, 21},
		{`//cache:repo prefix=""`, `empty prefix`, 20},
		{`//cache:get key="user:{id"`, `unclosed {`, 22},
		{`//cache:get key="user:{}"`, `invalid placeholder {}`, 22},
		{`//cache:get key="user:{a-b}"`, `invalid placeholder {a-b}`, 22},
		{`//cache:get key="user:{$0}"`, `invalid placeholder {$0}`, 22},
		{`//cache:get key="user:{a.$2}"`, `invalid placeholder {a.$2}`, 22},
		{`//cache:get key="user:{#}"`, `invalid placeholder {#}`, 22},
		{`//cache:get key="user:{a#.b}"`, `invalid placeholder {a#.b}`, 22},
		{`//cache:get key="user:*"`, `character '*' is not allowed in key "user:*": it is a Redis glob character`, 22},
		{`//cache:get key="a b"`, `character ' ' is not allowed`, 18},
		{`//cache:get key="user:}"`, `character '}' is not allowed`, 22},
		{`//cache:get key="u:{a}{b}"`, `placeholders {a} and {b} in key "u:{a}{b}" need a ':' between them`, 22},
		{`//cache:get key="u:{a}-{b}"`, `placeholders {a} and {b}`, 23},
		{`//cache:evict keys="a:{x},b:{y}{z}"`, `placeholders {y} and {z}`, 31},
		{`//cache:evict patterns="feed:{x}"`, `has a placeholder`, 29},
		{`//cache:evict patterns="a,feed[:*"`, `unclosed [`, 26},
		{`//cache:evict patterns="feed]"`, `unmatched ]`, 28},
		{`//cache:evict tags="a,,b"`, `empty tag`, 22},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			_, errs := decode(t, tt.text)
			if len(errs) == 0 {
				t.Fatalf("no error, want %q", tt.err)
			}
			if !strings.Contains(errs[0].Msg, tt.err) {
				t.Fatalf("error %q, want %q", errs[0].Msg, tt.err)
			}
			if errs[0].Pos != col(tt.col) {
				t.Fatalf("error %q at column %d, want %d", errs[0].Msg, errs[0].Pos.Column-at.Column, tt.col)
			}
		})
	}
}

func TestDecodeCollectsAllErrors(t *testing.T) {
	_, errs := decode(t, `//cache:get key="a:{x}{y}" ttl=1 jitter=x bogus=1`)
	if len(errs) != 4 {
		t.Fatalf("got %d errors, want 4: %v", len(errs), errs)
	}
}

func TestDecodeRepo(t *testing.T) {
	v, errs := decode(t, `//cache:repo prefix=users version=3 ttl=10m jitter=12.5% negative=0 notfound=store.ErrMissing`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	r := v.Repo
	if r.Prefix != "users" || r.Version != 3 || r.TTL.D != 10*time.Minute || !r.Negative.Set || r.Negative.D != 0 {
		t.Fatalf("repo %+v", r)
	}
	if !r.Jitter.IsPercent || r.Jitter.Percent != 12.5 {
		t.Fatalf("jitter %+v", r.Jitter)
	}
	if r.NotFound.Pkg != "store" || r.NotFound.Name != "ErrMissing" {
		t.Fatalf("notfound %+v", r.NotFound)
	}
	v, errs = decode(t, `//cache:repo ttl=1m local=1500ms`)
	if r := v.Repo; len(errs) > 0 || !r.Local.Set || r.Local.D != 1500*time.Millisecond || r.Local.Pos != col(26) {
		t.Fatalf("local %+v %v", r.Local, errs)
	}
	v, _ = decode(t, `//cache:repo`)
	if r := v.Repo; r.Version != 1 || r.PrefixSet || r.TTL.Set || r.Local.Set {
		t.Fatalf("defaults %+v", r)
	}
}

func TestDecodeMethod(t *testing.T) {
	v, errs := decode(t, `//cache:put key="user:{result.ID}" evict="user:email:{u.Email}, user:name:{u.Name}" tags="feed,org:{u.Org.ID}" patterns="feed:*" value=u`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	m := v.Method
	if m.Key.Norm() != "user:{}" || m.Key.Placeholders()[0].Name() != "result.ID" {
		t.Fatalf("key %+v", m.Key)
	}
	if len(m.Keys) != 2 || m.Keys[1].Text != "user:name:{u.Name}" {
		t.Fatalf("evict %+v", m.Keys)
	}
	// The second evict item starts after ", " at byte 64 of the directive.
	if m.Keys[1].Pos != col(64) {
		t.Fatalf("second evict key at column %d", m.Keys[1].Pos.Column-at.Column)
	}
	if len(m.Tags) != 2 || !m.Tags[0].Static() || m.Tags[1].Placeholders()[0].Name() != "u.Org.ID" {
		t.Fatalf("tags %+v", m.Tags)
	}
	if len(m.Patterns) != 1 || m.Patterns[0].Text != "feed:*" || m.Value.Name != "u" {
		t.Fatalf("patterns %+v value %+v", m.Patterns, m.Value)
	}
	for text, want := range map[string]time.Duration{`//cache:get key=feed local=0`: 0, `//cache:get key=feed local=0s`: 0, `//cache:get key=feed local=2m`: 2 * time.Minute} {
		v, errs := decode(t, text)
		if m := v.Method; len(errs) > 0 || !m.Local.Set || m.Local.D != want {
			t.Fatalf("%s: local %+v %v", text, m.Local, errs)
		}
	}
	v, _ = decode(t, `//cache:get key=feed jitter=5s`)
	if m := v.Method; m.Jitter.IsPercent || m.Jitter.Spread != 5*time.Second {
		t.Fatalf("jitter %+v", m.Jitter)
	}
}

func tmpl(t *testing.T, s string) Template {
	t.Helper()
	tp, errs := ParseTemplate(Arg{ValuePos: at}, 0, s, "key")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return tp
}

func TestCovers(t *testing.T) {
	tests := []struct {
		pattern, template string
		want              bool
	}{
		{"feed:*", "feed:{page}", true},
		{"feed:*", "feed:{a}:x:{b}", true},
		{"feed*", "feed:{page}", true},
		{"*", "user:{id}", true},
		{"user:*", "user:email:{e}", true},
		{"user:?", "user:{id}", false}, // a value may be longer than one byte
		{"feed:1*", "feed:{page}", false},
		{"user:*", "feed:{page}", false},
		{"conf", "conf", true},
		{"con?", "conf", true},
		{"con[a-g]", "conf", true},
		{"con[^f]", "conf", false},
		{"*:x", "a:{v}:x", true},
		{"*:x", "a:{v}", false},
	}
	for _, tt := range tests {
		if got := Covers(tt.pattern, tmpl(t, tt.template)); got != tt.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tt.pattern, tt.template, got, tt.want)
		}
	}
}

func TestNorm(t *testing.T) {
	if n := tmpl(t, "org:{o.ID}:user:{id}").Norm(); n != "org:{}:user:{}" {
		t.Fatal(n)
	}
}

// FuzzParse checks that the parser never panics, that every error points
// inside the directive, and that accepted arguments survive re-quoting.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`//cache:get key="user:{id}" ttl=30m notfound=ErrNotFound tags="user:{id}"`,
		`//cache:repo prefix=users version=1 ttl=10m jitter=10% negative=30s local=5s`,
		`//cache:put key="user:{result.ID}" evict="user:email:{u.Email}" tags="feed"`,
		`//cache:evict keys="user:{u.ID}" tags="user:{u.ID},feed" patterns="feed:*"`,
		`//cache:get key="a\"b" x=`, `//cache:`, `//cache:get key="{`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !IsDirective(text) {
			text = Prefix + text
		}
		d, errs := ParseLine(at, text)
		check := func(errs Errors) {
			for _, e := range errs {
				if e.Pos.Line != at.Line || e.Pos.Column < at.Column || e.Pos.Column > at.Column+len(text) {
					t.Fatalf("error %q at %v, outside the directive", e.Msg, e.Pos)
				}
				if e.Msg == "" {
					t.Fatal("empty message")
				}
			}
		}
		check(errs)
		if len(errs) > 0 {
			return
		}
		_, derrs := Decode(d)
		check(derrs)
		// Re-quote every value: the result must parse to the same arguments.
		var b strings.Builder
		b.WriteString(Prefix + d.Verb)
		for _, a := range d.Args {
			if !utf8.ValidString(a.Value) {
				return
			}
			b.WriteString(" " + a.Key + "=" + quote(a.Value))
		}
		d2, errs2 := ParseLine(at, b.String())
		if len(errs2) > 0 {
			t.Fatalf("re-quoted %q: %v", b.String(), errs2)
		}
		if len(d2.Args) != len(d.Args) {
			t.Fatalf("re-quoted %q: %d args, want %d", b.String(), len(d2.Args), len(d.Args))
		}
		for i := range d.Args {
			if d.Args[i].Key != d2.Args[i].Key || d.Args[i].Value != d2.Args[i].Value {
				t.Fatalf("re-quoted arg %d: %q=%q, want %q=%q", i, d2.Args[i].Key, d2.Args[i].Value, d.Args[i].Key, d.Args[i].Value)
			}
		}
	})
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < ' ' || r == 0x7f:
			b.WriteString(`\x` + string("0123456789abcdef"[r>>4]) + string("0123456789abcdef"[r&15]))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestDecodeFreshness(t *testing.T) {
	v, errs := decode(t, `//cache:repo ttl=1m refresh=80 stale=30s`)
	if r := v.Repo; len(errs) > 0 || !r.Refresh.Set || r.Refresh.P != 80 || !r.Stale.Set || r.Stale.D != 30*time.Second || r.Refresh.Pos != col(28) {
		t.Fatalf("repo %+v %+v %v", r.Refresh, r.Stale, errs)
	}
	for text, want := range map[string]float64{`//cache:get key=x refresh=50%`: 50, `//cache:get key=x refresh=0`: 0, `//cache:get key=x refresh=99.5`: 99.5} {
		v, errs := decode(t, text)
		if m := v.Method; len(errs) > 0 || !m.Refresh.Set || m.Refresh.P != want {
			t.Fatalf("%s: %+v %v", text, m.Refresh, errs)
		}
	}
	if v, errs := decode(t, `//cache:get key=x stale=0`); len(errs) > 0 || !v.Method.Stale.Set || v.Method.Stale.D != 0 {
		t.Fatalf("stale=0: %+v %v", v, errs)
	}
	for _, bad := range []string{"100", "0.5", "-1", "NaN", "fast", "80%%"} {
		if _, errs := decode(t, `//cache:get key=x refresh=`+bad); len(errs) != 1 || !strings.Contains(errs[0].Msg, "bad refresh") {
			t.Errorf("refresh=%s: %v", bad, errs)
		}
	}
	for _, bad := range []string{"-1s", "soon", "5"} {
		if _, errs := decode(t, `//cache:get key=x stale=`+bad); len(errs) != 1 || !strings.Contains(errs[0].Msg, "bad stale") {
			t.Errorf("stale=%s: %v", bad, errs)
		}
	}
	if _, errs := decode(t, `//cache:put key=x refresh=80`); len(errs) != 1 || !strings.Contains(errs[0].Msg, `unknown option "refresh" for //cache:put`) {
		t.Errorf("refresh on a put: %v", errs)
	}
}
