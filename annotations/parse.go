// Package annotations parses cachegen's //cache: directives. It is pure: it
// sees comment text and positions, never Go types, and every error it reports
// carries the position of the directive or of the offending key=value in it.
package annotations

import (
	"go/token"
	"sort"
	"strconv"
	"strings"
)

// Prefix starts every directive comment. Like //go: directives it has no space.
const Prefix = "//cache:"

// Error is a positioned problem in a directive.
type Error struct {
	Pos token.Position
	Msg string
}

func (e Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errors is a list of errors, all reported together.
type Errors []Error

func (l Errors) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Sort orders the list by file, line, column and message, and drops duplicates.
func (l *Errors) Sort() {
	s := *l
	sort.SliceStable(s, func(i, j int) bool { return Less(s[i], s[j]) })
	out := s[:0]
	for i, e := range s {
		if i > 0 && e == s[i-1] {
			continue
		}
		out = append(out, e)
	}
	*l = out
}

// Less orders errors by file, line, column, then message.
func Less(a, b Error) bool {
	if a.Pos.Filename != b.Pos.Filename {
		return a.Pos.Filename < b.Pos.Filename
	}
	if a.Pos.Line != b.Pos.Line {
		return a.Pos.Line < b.Pos.Line
	}
	if a.Pos.Column != b.Pos.Column {
		return a.Pos.Column < b.Pos.Column
	}
	return a.Msg < b.Msg
}

// Arg is one key=value of a directive.
type Arg struct {
	Key      string
	Value    string         // unquoted
	Pos      token.Position // of the key
	ValuePos token.Position // of the value's first byte (the quote, if quoted)
	Quoted   bool
	// raw is the value as written between the quotes; it maps offsets of
	// Value back to source columns when the two agree byte for byte.
	raw string
}

// At returns the source position of byte i of Value, or ValuePos when escapes
// make the mapping ambiguous.
func (a Arg) At(i int) token.Position {
	p := a.ValuePos
	if !a.Quoted {
		p.Column += i
		p.Offset += i
		return p
	}
	if a.raw == a.Value {
		p.Column += i + 1
		p.Offset += i + 1
	}
	return p
}

// Directive is one parsed //cache:VERB line.
type Directive struct {
	Verb    string
	Pos     token.Position // of the leading "//"
	VerbPos token.Position
	Args    []Arg
}

// Arg returns the argument with the given key.
func (d *Directive) Arg(key string) (Arg, bool) {
	for _, a := range d.Args {
		if a.Key == key {
			return a, true
		}
	}
	return Arg{}, false
}

// IsDirective reports whether the text of one comment is a cache directive.
func IsDirective(text string) bool { return strings.HasPrefix(text, Prefix) }

// ParseLine parses the text of one comment ("//cache:get key=..."), which
// starts at pos. It checks syntax only; Decode checks verbs and keys.
func ParseLine(pos token.Position, text string) (Directive, Errors) {
	d := Directive{Pos: pos}
	var errs Errors
	at := func(i int) token.Position {
		p := pos
		p.Column += i
		p.Offset += i
		return p
	}
	if !IsDirective(text) {
		return d, Errors{{pos, "not a " + Prefix + " directive"}}
	}
	i := len(Prefix)
	d.VerbPos = at(i)
	for i < len(text) && !isSpace(text[i]) {
		i++
	}
	d.Verb = text[len(Prefix):i]
	if d.Verb == "" {
		return d, Errors{{d.VerbPos, "missing verb after " + Prefix + " (want repo, get, put or evict)"}}
	}
	seen := map[string]bool{}
	for {
		for i < len(text) && isSpace(text[i]) {
			i++
		}
		if i >= len(text) {
			break
		}
		start := i
		for i < len(text) && isKeyByte(text[i]) {
			i++
		}
		key := text[start:i]
		if key == "" || i >= len(text) || text[i] != '=' {
			end := i
			for end < len(text) && !isSpace(text[end]) {
				end++
			}
			errs = append(errs, Error{at(start), "expected key=value, found " + strconv.Quote(text[start:end])})
			i = end
			continue
		}
		i++ // '='
		a := Arg{Key: key, Pos: at(start), ValuePos: at(i)}
		switch {
		case i >= len(text) || isSpace(text[i]):
			errs = append(errs, Error{at(start), "missing value for " + key})
			continue
		case text[i] == '"':
			end := quotedEnd(text, i)
			if end < 0 {
				errs = append(errs, Error{at(i), "unterminated string in value of " + key})
				i = len(text)
				continue
			}
			v, err := strconv.Unquote(text[i:end])
			if err != nil {
				errs = append(errs, Error{at(i), "invalid string in value of " + key + ": " + text[i:end]})
				i = end
				continue
			}
			a.Value, a.Quoted, a.raw = v, true, text[i+1:end-1]
			i = end
			if i < len(text) && !isSpace(text[i]) {
				errs = append(errs, Error{at(i), "missing space after the value of " + key})
				for i < len(text) && !isSpace(text[i]) {
					i++
				}
				continue
			}
		default:
			vs := i
			for i < len(text) && !isSpace(text[i]) {
				i++
			}
			a.Value = text[vs:i]
			if strings.ContainsRune(a.Value, '"') {
				errs = append(errs, Error{at(vs), "stray quote in value of " + key + " (quote the whole value)"})
				continue
			}
		}
		if seen[key] {
			errs = append(errs, Error{a.Pos, "duplicate option " + key})
			continue
		}
		seen[key] = true
		d.Args = append(d.Args, a)
	}
	return d, errs
}

// quotedEnd returns the index just past the closing quote of the Go string
// starting at s[i], or -1.
func quotedEnd(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}
