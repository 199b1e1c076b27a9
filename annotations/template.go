package annotations

import (
	"go/token"
	"strconv"
	"strings"
)

// Template is a key or tag template such as "user:{id}" or "org:{u.Org.ID}".
type Template struct {
	Text  string
	Pos   token.Position
	Parts []Part
}

// Part is a literal run or a placeholder of a Template.
type Part struct {
	Lit  string   // literal text, when Path is nil
	Path []string // placeholder {a.b.c} as ["a", "b", "c"]; {$2.ID}: ["$2", "ID"]
	Hash bool     // {a.b#}: the value is written as a hash of its encoding
	Pos  token.Position
}

// IsPlaceholder reports whether p is a {placeholder}.
func (p Part) IsPlaceholder() bool { return p.Path != nil }

// Name is the placeholder as written, without braces: "u.Org.ID", "filter#".
func (p Part) Name() string {
	n := strings.Join(p.Path, ".")
	if p.Hash {
		n += "#"
	}
	return n
}

// Position returns N for a parameter referred to by its position, $N (the
// first parameter, the context, is $1); 0 for a name.
func Position(root string) int {
	if len(root) < 2 || root[0] != '$' || root[1] == '0' {
		return 0
	}
	n := 0
	for i := 1; i < len(root); i++ {
		c := root[i]
		if c < '0' || c > '9' || n > 1000 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Norm is the template with placeholder names removed ("user:{}"): two
// templates with the same Norm produce the same keys from the same values.
func (t Template) Norm() string {
	var b strings.Builder
	for _, p := range t.Parts {
		if p.IsPlaceholder() {
			b.WriteString("{}")
		} else {
			b.WriteString(p.Lit)
		}
	}
	return b.String()
}

// Placeholders returns the placeholder parts in order.
func (t Template) Placeholders() []Part {
	var out []Part
	for _, p := range t.Parts {
		if p.IsPlaceholder() {
			out = append(out, p)
		}
	}
	return out
}

// Static reports whether the template has no placeholders.
func (t Template) Static() bool { return len(t.Placeholders()) == 0 }

// litReason explains why c cannot appear literally in a key, tag or pattern.
func litReason(c byte) string {
	switch c {
	case '*', '?', '[', ']':
		return "it is a Redis glob character"
	case '\\', '%':
		return "it is an escape character"
	case '{', '}':
		return "braces only delimit placeholders"
	}
	if c <= ' ' || c == 0x7f {
		return "spaces and control characters are not allowed"
	}
	return ""
}

// ParseTemplate parses s, found in argument a at byte offset off of its value.
// what names the template in messages ("key", "tag").
func ParseTemplate(a Arg, off int, s, what string) (Template, Errors) {
	t := Template{Text: s, Pos: a.At(off)}
	var errs Errors
	if s == "" {
		return t, Errors{{a.At(off), "empty " + what}}
	}
	lit := 0 // start of the current literal run
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{':
			if i > lit {
				t.Parts = append(t.Parts, Part{Lit: s[lit:i], Pos: a.At(off + lit)})
			}
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return t, append(errs, Error{a.At(off + i), "unclosed { in " + what + " " + strconv.Quote(s)})
			}
			name := s[i+1 : i+end]
			p := Part{Pos: a.At(off + i)}
			path, hashed := strings.CutSuffix(name, "#")
			p.Path, p.Hash = strings.Split(path, "."), hashed
			bad := path == ""
			for j, id := range p.Path {
				if !isIdent(id) && (j > 0 || Position(id) == 0) {
					bad = true
				}
			}
			if bad {
				errs = append(errs, Error{p.Pos, "invalid placeholder {" + name + "} in " + what + " (want {param}, {param.Field.Sub}, {$2} for the second parameter, or a # at the end for a hash: {filter#})"})
				p.Path, p.Hash = []string{"_"}, false
			}
			t.Parts = append(t.Parts, p)
			i += end
			lit = i + 1
		case litReason(c) != "":
			errs = append(errs, Error{a.At(off + i), "character " + strconv.QuoteRune(rune(c)) + " is not allowed in " + what + " " + strconv.Quote(s) + ": " + litReason(c)})
		}
	}
	if lit < len(s) {
		t.Parts = append(t.Parts, Part{Lit: s[lit:], Pos: a.At(off + lit)})
	}
	// Values never contain ':', so a ':' between two placeholders tells where
	// one value ends; without it "a"+"bc" and "ab"+"c" would be the same key.
	for i := 1; i < len(t.Parts); i++ {
		if !t.Parts[i].IsPlaceholder() {
			continue
		}
		for j := i - 1; j >= 0; j-- {
			if !t.Parts[j].IsPlaceholder() && strings.Contains(t.Parts[j].Lit, ":") {
				break
			}
			if t.Parts[j].IsPlaceholder() {
				errs = append(errs, Error{t.Parts[i].Pos, "placeholders {" + t.Parts[j].Name() + "} and {" + t.Parts[i].Name() + "} in " + what + " " + strconv.Quote(s) + " need a ':' between them, or their values could run together"})
				break
			}
		}
	}
	return t, errs
}

// Pattern is a static Redis glob over the key templates of a repository,
// such as "feed:*".
type Pattern struct {
	Text string
	Pos  token.Position
}

// ParsePattern checks a pattern found at byte offset off of a's value.
func ParsePattern(a Arg, off int, s string) (Pattern, Errors) {
	p := Pattern{Text: s, Pos: a.At(off)}
	if s == "" {
		return p, Errors{{p.Pos, "empty pattern"}}
	}
	var errs Errors
	inClass := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' || c == '}':
			return p, Errors{{a.At(off + i), "pattern " + strconv.Quote(s) + " has a placeholder: patterns are static globs, resolved when generating"}}
		case c == '[':
			if inClass {
				errs = append(errs, Error{a.At(off + i), "nested [ in pattern " + strconv.Quote(s)})
			}
			inClass = true
		case c == ']':
			if !inClass {
				errs = append(errs, Error{a.At(off + i), "unmatched ] in pattern " + strconv.Quote(s)})
			}
			inClass = false
		case c == '*' || c == '?' || c == '^' || c == '-':
		case litReason(c) != "":
			errs = append(errs, Error{a.At(off + i), "character " + strconv.QuoteRune(rune(c)) + " is not allowed in pattern " + strconv.Quote(s) + ": " + litReason(c)})
		}
	}
	if inClass {
		errs = append(errs, Error{p.Pos, "unclosed [ in pattern " + strconv.Quote(s)})
	}
	return p, errs
}

// Covers reports whether every key the template can produce matches the
// glob pattern: a placeholder's value is unknown, so only a '*' can absorb it.
func Covers(pattern string, t Template) bool {
	// tokens of the template: a literal byte, or -1 for a placeholder.
	var toks []int
	for _, p := range t.Parts {
		if p.IsPlaceholder() {
			toks = append(toks, -1)
			continue
		}
		for i := 0; i < len(p.Lit); i++ {
			toks = append(toks, int(p.Lit[i]))
		}
	}
	memo := map[[2]int]bool{}
	var match func(pi, ti int) bool
	match = func(pi, ti int) bool {
		k := [2]int{pi, ti}
		if v, ok := memo[k]; ok {
			return v
		}
		var r bool
		switch {
		case pi == len(pattern):
			r = ti == len(toks)
		case pattern[pi] == '*':
			r = match(pi+1, ti) || ti < len(toks) && match(pi, ti+1)
		case ti == len(toks) || toks[ti] < 0:
			r = false
		case pattern[pi] == '?':
			r = match(pi+1, ti+1)
		case pattern[pi] == '[':
			end := strings.IndexByte(pattern[pi:], ']')
			if end < 0 {
				break
			}
			r = classMatch(pattern[pi+1:pi+end], byte(toks[ti])) && match(pi+end+1, ti+1)
		default:
			r = int(pattern[pi]) == toks[ti] && match(pi+1, ti+1)
		}
		memo[k] = r
		return r
	}
	return match(0, 0)
}

func classMatch(class string, c byte) bool {
	neg := strings.HasPrefix(class, "^")
	if neg {
		class = class[1:]
	}
	in := false
	for i := 0; i < len(class); i++ {
		if i+2 < len(class) && class[i+1] == '-' {
			lo, hi := class[i], class[i+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			if c >= lo && c <= hi {
				in = true
			}
			i += 2
			continue
		}
		if class[i] == c {
			in = true
		}
	}
	return in != neg
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// splitList splits a comma-separated value, ignoring commas inside braces,
// and returns the trimmed items with their byte offsets.
func splitList(s string) (items []string, offs []int) {
	depth, start := 0, 0
	flush := func(end int) {
		item := s[start:end]
		lead := len(item) - len(strings.TrimLeft(item, " \t"))
		items = append(items, strings.TrimSpace(item))
		offs = append(offs, start+lead)
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				flush(i)
				start = i + 1
			}
		}
	}
	flush(len(s))
	return items, offs
}
