package annotations

import (
	"go/token"
	"strconv"
	"strings"
	"time"
)

// Verbs and the options each accepts, in the order messages list them.
var options = map[string][]string{
	"repo":  {"prefix", "version", "ttl", "jitter", "negative", "notfound", "local", "refresh", "stale"},
	"get":   {"key", "ttl", "jitter", "negative", "notfound", "local", "refresh", "stale", "tags", "ignore"},
	"put":   {"key", "value", "evict", "tags", "patterns"},
	"evict": {"keys", "tags", "patterns"},
}

// Duration is an optional duration option.
type Duration struct {
	D   time.Duration
	Set bool
	Pos token.Position
}

// Jitter is a percentage of the TTL ("10%") or a fixed spread ("5s").
type Jitter struct {
	Percent   float64
	Spread    time.Duration
	IsPercent bool
	Set       bool
	Pos       token.Position
}

// Percent is an optional percentage option ("80" or "80%").
type Percent struct {
	P   float64
	Set bool
	Pos token.Position
}

// Ident names a Go identifier, optionally qualified by a package name.
type Ident struct {
	Pkg, Name string
	Star      bool // notfound=*T: a pointer to the named type
	Set       bool
	Pos       token.Position
	// As is the second item of notfound="IsNotFound,*NotFoundError": the
	// error type whose fields a cached not-found keeps.
	As *Ident
}

func (id Ident) String() string {
	s := id.Name
	if id.Pkg != "" {
		s = id.Pkg + "." + id.Name
	}
	if id.Star {
		s = "*" + s
	}
	if id.As != nil {
		s += "," + id.As.String()
	}
	return s
}

// Repo is a decoded //cache:repo directive.
type Repo struct {
	Pos       token.Position
	Prefix    string
	PrefixSet bool
	PrefixPos token.Position
	Version   int
	TTL       Duration
	Negative  Duration
	Jitter    Jitter
	NotFound  Ident
	Local     Duration // default L1 lifetime of its gets; 0 (or unset) keeps them out of the L1
	Refresh   Percent  // default refresh-ahead point of its gets, percent of the TTL; 0 (or unset): none
	Stale     Duration // default stale-while-revalidate window of its gets; 0 (or unset): none
}

// Method is a decoded //cache:get, //cache:put or //cache:evict directive.
type Method struct {
	Verb     string
	Pos      token.Position
	Key      Template   // get, put
	KeyArg   Arg        // the key= argument, for messages
	TTL      Duration   // get
	Negative Duration   // get
	Jitter   Jitter     // get
	NotFound Ident      // get
	Local    Duration   // get: L1 lifetime; Set with D 0 turns off the repo's default
	Refresh  Percent    // get: refresh-ahead point, percent of the TTL; Set with P 0 turns off the repo's default
	Stale    Duration   // get: how long past its TTL an entry may be served; Set with D 0 turns off the repo's default
	Value    Ident      // put: the parameter to store instead of the result
	Tags     []Template // get: attached to the entry; put, evict: invalidated
	Keys     []Template // evict keys=, put evict=
	Patterns []Pattern  // put, evict
	Ignore   []Ident    // get: parameters that do not affect the result, so the key need not hold them
}

// Decoded is a decoded directive: exactly one of Repo (//cache:repo) and
// Method (//cache:get, put, evict) is set, or neither when the verb is
// unknown.
type Decoded struct {
	Repo   *Repo
	Method *Method
}

// Decode checks the verb and keys of d and decodes it. Only an unknown verb
// leaves the result empty; every other error comes with the options that
// could be read.
func Decode(d Directive) (Decoded, Errors) {
	allowed, ok := options[d.Verb]
	if !ok {
		return Decoded{}, Errors{{d.VerbPos, "unknown verb " + strconv.Quote(d.Verb) + " (want repo, get, put or evict)"}}
	}
	var errs Errors
	for _, a := range d.Args {
		if !contains(allowed, a.Key) {
			errs = append(errs, Error{a.Pos, "unknown option " + strconv.Quote(a.Key) + " for " + Prefix + d.Verb + " (want " + strings.Join(allowed, ", ") + ")"})
		}
	}
	if d.Verb == "repo" {
		r, more := decodeRepo(d)
		return Decoded{Repo: r}, append(errs, more...)
	}
	m, more := decodeMethod(d)
	return Decoded{Method: m}, append(errs, more...)
}

func decodeRepo(d Directive) (*Repo, Errors) {
	r := &Repo{Pos: d.Pos, Version: 1}
	var errs Errors
	for _, a := range d.Args {
		switch a.Key {
		case "prefix":
			r.Prefix, r.PrefixSet, r.PrefixPos = a.Value, true, a.ValuePos
			for i := 0; i < len(a.Value); i++ {
				if c := a.Value[i]; c <= ' ' || c == 0x7f {
					errs = append(errs, Error{a.At(i), "prefix must not contain spaces or control characters"})
					break
				}
			}
			if a.Value == "" {
				errs = append(errs, Error{a.ValuePos, "empty prefix"})
			}
		case "version":
			v, err := strconv.Atoi(a.Value)
			if err != nil || v < 0 || v > 1<<31-1 {
				errs = append(errs, Error{a.ValuePos, "bad version " + strconv.Quote(a.Value) + ": want a non-negative integer"})
			}
			r.Version = v
		case "ttl", "negative", "jitter", "notfound", "local":
			errs = append(errs, decodeCommon(a, &r.TTL, &r.Negative, &r.Local, &r.Jitter, &r.NotFound)...)
		case "refresh", "stale":
			errs = append(errs, decodeFreshness(a, &r.Refresh, &r.Stale)...)
		}
	}
	return r, errs
}

func decodeMethod(d Directive) (*Method, Errors) {
	m := &Method{Verb: d.Verb, Pos: d.Pos}
	var errs Errors
	hasKey := false
	for _, a := range d.Args {
		switch a.Key {
		case "key":
			t, e := ParseTemplate(a, 0, a.Value, "key")
			m.Key, m.KeyArg, hasKey = t, a, true
			errs = append(errs, e...)
		case "ttl", "negative", "jitter", "notfound", "local":
			errs = append(errs, decodeCommon(a, &m.TTL, &m.Negative, &m.Local, &m.Jitter, &m.NotFound)...)
		case "refresh", "stale":
			errs = append(errs, decodeFreshness(a, &m.Refresh, &m.Stale)...)
		case "value":
			id, e := decodeIdent(a)
			if id.Pkg != "" {
				e = append(e, Error{a.ValuePos, "value must name a parameter, found " + strconv.Quote(a.Value)})
			}
			m.Value = id
			errs = append(errs, e...)
		case "tags":
			items, offs := splitList(a.Value)
			for i, s := range items {
				t, e := ParseTemplate(a, offs[i], s, "tag")
				m.Tags = append(m.Tags, t)
				errs = append(errs, e...)
			}
		case "keys", "evict":
			items, offs := splitList(a.Value)
			for i, s := range items {
				t, e := ParseTemplate(a, offs[i], s, "key")
				m.Keys = append(m.Keys, t)
				errs = append(errs, e...)
			}
		case "ignore":
			items, offs := splitList(a.Value)
			for i, s := range items {
				p := a.At(offs[i])
				if (!isIdent(s) || s == "_") && Position(s) == 0 {
					errs = append(errs, Error{p, "bad ignore " + strconv.Quote(s) + ": want parameter names or positions (ignore=opts,trace or ignore=$3)"})
					continue
				}
				m.Ignore = append(m.Ignore, Ident{Name: s, Set: true, Pos: p})
			}
		case "patterns":
			items, offs := splitList(a.Value)
			for i, s := range items {
				p, e := ParsePattern(a, offs[i], s)
				m.Patterns = append(m.Patterns, p)
				errs = append(errs, e...)
			}
		}
	}
	switch {
	case (m.Verb == "get" || m.Verb == "put") && !hasKey:
		errs = append(errs, Error{d.VerbPos, Prefix + m.Verb + " needs a key=\"...\" option"})
	case m.Verb == "evict" && len(m.Keys) == 0 && len(m.Tags) == 0 && len(m.Patterns) == 0:
		errs = append(errs, Error{d.VerbPos, Prefix + "evict names nothing to invalidate (want keys=, tags= or patterns=)"})
	}
	return m, errs
}

// decodeFreshness decodes refresh= and stale=, shared by repo and get.
func decodeFreshness(a Arg, refresh *Percent, stale *Duration) Errors {
	if a.Key == "refresh" {
		f, err := strconv.ParseFloat(strings.TrimSuffix(a.Value, "%"), 64)
		if err != nil || f != f || f < 0 || f >= 100 || (f > 0 && f < 1) {
			return Errors{{a.ValuePos, "bad refresh " + strconv.Quote(a.Value) + ": want a percentage of the ttl from 1 up to below 100 (refresh=80 reloads hot entries in the background after 80% of their ttl), or 0 for none"}}
		}
		*refresh = Percent{P: f, Set: true, Pos: a.ValuePos}
		return nil
	}
	d, err := parseDuration(a.Value)
	if err != "" {
		return Errors{{a.ValuePos, "bad stale " + strconv.Quote(a.Value) + ": " + err + " (how long past its ttl an entry may still be served while it is reloaded; 0 for never)"}}
	}
	*stale = Duration{D: d, Set: true, Pos: a.ValuePos}
	return nil
}

// decodeCommon decodes the options shared by repo and get.
func decodeCommon(a Arg, ttl, negative, local *Duration, jitter *Jitter, notfound *Ident) Errors {
	switch a.Key {
	case "ttl":
		d, err := parseDuration(a.Value)
		switch {
		case err != "":
			return Errors{{a.ValuePos, "bad ttl " + strconv.Quote(a.Value) + ": " + err}}
		case d <= 0:
			return Errors{{a.ValuePos, "ttl must be positive"}}
		}
		*ttl = Duration{D: d, Set: true, Pos: a.ValuePos}
	case "negative":
		d, err := parseDuration(a.Value)
		if err != "" {
			return Errors{{a.ValuePos, "bad negative " + strconv.Quote(a.Value) + ": " + err + " (0 disables negative caching)"}}
		}
		*negative = Duration{D: d, Set: true, Pos: a.ValuePos}
	case "local":
		// Checked against the method's ttl by the generator, which knows it.
		d, err := parseDuration(a.Value)
		switch {
		case err == errNegative:
			return Errors{{a.ValuePos, "bad local " + strconv.Quote(a.Value) + ": " + err}}
		case err != "":
			return Errors{{a.ValuePos, "bad local " + strconv.Quote(a.Value) + ": " + err + " (0 turns the in-process cache off)"}}
		}
		*local = Duration{D: d, Set: true, Pos: a.ValuePos}
	case "jitter":
		j := Jitter{Set: true, Pos: a.ValuePos}
		if p, ok := strings.CutSuffix(a.Value, "%"); ok {
			f, err := strconv.ParseFloat(p, 64)
			if err != nil || f < 0 || f >= 100 || f != f {
				return Errors{{a.ValuePos, "bad jitter percentage " + strconv.Quote(a.Value) + ": want 0% up to below 100%"}}
			}
			j.Percent, j.IsPercent = f, true
		} else {
			d, err := parseDuration(a.Value)
			if err != "" {
				return Errors{{a.ValuePos, "bad jitter " + strconv.Quote(a.Value) + ": want a percentage (10%) or a duration (5s)"}}
			}
			j.Spread = d
		}
		*jitter = j
	case "notfound":
		id, errs := decodeNotFound(a)
		*notfound = id
		return errs
	}
	return nil
}

const errNegative = "must not be negative"

func parseDuration(s string) (time.Duration, string) {
	if s == "0" {
		return 0, ""
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, "want a Go duration such as 30s, 10m or 1h30m"
	}
	if d < 0 {
		return 0, errNegative
	}
	return d, ""
}

func decodeIdent(a Arg) (Ident, Errors) {
	id := Ident{Set: true, Pos: a.ValuePos}
	pkg, name, qualified := strings.Cut(a.Value, ".")
	if !qualified {
		pkg, name = "", a.Value
	}
	if !isIdent(name) || qualified && !isIdent(pkg) || name == "_" {
		return id, Errors{{a.ValuePos, "bad " + a.Key + " " + strconv.Quote(a.Value) + ": want an identifier, optionally qualified (ErrNotFound, store.ErrNotFound)"}}
	}
	id.Pkg, id.Name = pkg, name
	return id, nil
}

// decodeNotFound decodes notfound=: an error variable, an error type (*T),
// a predicate, or a predicate and a type ("IsNotFound,*NotFoundError"), each
// optionally qualified. What each names is for the generator to say.
func decodeNotFound(a Arg) (Ident, Errors) {
	items, offs := splitList(a.Value)
	bad := func() (Ident, Errors) {
		return Ident{Set: true, Pos: a.ValuePos}, Errors{{a.ValuePos, "bad notfound " + strconv.Quote(a.Value) + ": want an error variable (ErrNotFound, sql.ErrNoRows), an error type (*NotFoundError, *ent.NotFoundError), a predicate (ent.IsNotFound), or a predicate and a type (\"IsNotFound,*NotFoundError\")"}}
	}
	if len(items) == 0 || len(items) > 2 {
		return bad()
	}
	var ids []Ident
	for i, s := range items {
		id := Ident{Set: true, Pos: a.At(offs[i])}
		s, id.Star = strings.CutPrefix(s, "*")
		pkg, name, qualified := strings.Cut(s, ".")
		if !qualified {
			pkg, name = "", s
		}
		if !isIdent(name) || qualified && !isIdent(pkg) || name == "_" {
			return bad()
		}
		id.Pkg, id.Name = pkg, name
		ids = append(ids, id)
	}
	id := ids[0]
	id.Pos = a.ValuePos
	if len(ids) == 2 {
		if id.Star {
			return bad()
		}
		id.As = &ids[1]
	}
	return id, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
