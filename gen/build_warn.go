package gen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"

	"github.com/cachegen/cachegen/annotations"
)

// Warnings are printed and do not stop generation (Config.Strict makes
// them errors). They catch what is legal but most likely a mistake.

var verbs = []string{"repo", "get", "put", "evict"}

// nearMiss matches comments that look like a directive but are not one:
// "// cache:get", "//cache: get", "//Cache:get", "//cahce:get".
var nearMiss = regexp.MustCompile(`^//(\s*)([A-Za-z]{3,7})(\s*):(\s*)(repo|get|put|evict)(\s*$|\s+[a-z]+=)`)

// nearMissDirective explains why a comment is not a directive, or "".
func nearMissDirective(text string) string {
	if annotations.IsDirective(text) {
		return ""
	}
	m := nearMiss.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	word, verb := m[2], m[5]
	want := annotations.Prefix + verb
	switch {
	case word == "cache" && m[1] != "":
		return "a space after // makes this a comment, not a directive: it is ignored; write " + want
	case word == "cache":
		return "spaces around ':' make this a comment, not a directive: it is ignored; write " + want
	case strings.EqualFold(word, "cache") || editDistance(strings.ToLower(word), "cache") <= 2:
		return "//" + word + ": is not //cache: — this comment is ignored; write " + want
	}
	return ""
}

// editDistance is the Levenshtein distance, with a transposition counted
// as one edit (cahce).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// nearMisses warns about the comments of f that look like directives.
func nearMisses(fset *token.FileSet, f *ast.File) Errors {
	var out Errors
	for _, g := range f.Comments {
		for _, c := range g.List {
			if why := nearMissDirective(c.Text); why != "" {
				out = append(out, annotations.Error{Pos: fset.Position(c.Slash), Msg: why})
			}
		}
	}
	return out
}

// repoDirective finds the first //cache:repo comment of a file the build
// does not load.
func repoDirective(path string) (token.Position, bool) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return token.Position{}, false
	}
	for _, g := range f.Comments {
		for _, c := range g.List {
			if strings.HasPrefix(c.Text, annotations.Prefix+"repo") {
				return fset.Position(c.Slash), true
			}
		}
	}
	return token.Position{}, false
}

// skippedFiles warns about the files of p that hold //cache:repo
// directives but are not generated: test files, and files the build
// constraints exclude.
func skippedFiles(p *packages.Package) Errors {
	var out Errors
	files := append([]string(nil), p.IgnoredFiles...)
	if dir := pkgDir(p); dir != "" {
		tests, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		files = append(files, tests...)
	}
	sort.Strings(files)
	for _, f := range files {
		if !strings.HasSuffix(f, ".go") {
			continue
		}
		pos, ok := repoDirective(f)
		if !ok {
			continue
		}
		if strings.HasSuffix(f, "_test.go") {
			out = append(out, annotations.Error{Pos: pos, Msg: "skipped: cachegen does not generate for test files (and -check does not look at them); move the interface to a non-test file"})
		} else {
			out = append(out, annotations.Error{Pos: pos, Msg: "skipped: this file is excluded by build constraints in this run (and -check does not look at it); run cachegen with -tags to generate it"})
		}
	}
	return out
}

func pkgDir(p *packages.Package) string {
	if p.Dir != "" {
		return p.Dir
	}
	if len(p.GoFiles) > 0 {
		return filepath.Dir(p.GoFiles[0])
	}
	return ""
}

// writePrefixes name methods that, by their name, change the source.
var writePrefixes = []string{"Add", "Archive", "Assign", "Clear", "Create", "Decr", "Delete", "Drop", "Edit", "Incr", "Insert", "Mark", "Move", "Patch", "Publish", "Purge", "Put", "Remove", "Rename", "Replace", "Reset", "Save", "Set", "Store", "Update", "Upsert", "Write"}

// isWriteName reports whether a method's name starts with a write verb
// (Update, UpdateUser; not Settings).
func isWriteName(name string) bool {
	for _, p := range writePrefixes {
		for _, q := range []string{p, strings.ToLower(p)} {
			rest, ok := strings.CutPrefix(name, q)
			if ok && (rest == "" || rest[0] >= 'A' && rest[0] <= 'Z' || rest[0] >= '0' && rest[0] <= '9' || rest[0] == '_') {
				return true
			}
		}
	}
	return false
}

// tagNorm is a tag template with its placeholders emptied: "user:{}".
func tagNorm(t *Tmpl) string {
	var b strings.Builder
	for _, s := range t.Segs {
		if s.Val != nil {
			b.WriteString("{}")
		} else {
			b.WriteString(s.Lit)
		}
	}
	return b.String()
}

// tagIndex answers which carried tags an invalidated tag can name, without
// comparing every pair: invalidated shapes by norm, and the shapes of
// carried tags compiled once, for the constant tags that may spell them.
type tagIndex struct {
	norms    map[string]bool // shapes of the tags
	statics  []string        // constant tags, as written
	compiled map[string]*regexp.Regexp
}

func newTagIndex(tags []*Tmpl) *tagIndex {
	ix := &tagIndex{norms: map[string]bool{}, compiled: map[string]*regexp.Regexp{}}
	for _, t := range tags {
		ix.norms[tagNorm(t)] = true
		if t.Static() {
			ix.statics = append(ix.statics, t.Text)
		}
	}
	return ix
}

// shapeRe matches the constants a tag shape can spell: "user:{}" matches
// "user:7".
func (ix *tagIndex) shapeRe(norm string) *regexp.Regexp {
	if re, ok := ix.compiled[norm]; ok {
		return re
	}
	var b strings.Builder
	b.WriteString("^")
	for i, part := range strings.Split(norm, "{}") {
		if i > 0 {
			b.WriteString(".+")
		}
		b.WriteString(regexp.QuoteMeta(part))
	}
	b.WriteString("$")
	re := regexp.MustCompile(b.String())
	ix.compiled[norm] = re
	return re
}

// names reports whether some tag of the index (invalidated) can name
// entries tagged like carried.
func (ix *tagIndex) names(carried *Tmpl) bool {
	n := tagNorm(carried)
	if ix.norms[n] {
		return true
	}
	if carried.Static() {
		return false
	}
	re := ix.shapeRe(n)
	for _, s := range ix.statics {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// carriedBy reports whether an invalidated tag names entries of some
// carried tag: the same shape, or a constant a carried shape can spell.
func carriedBy(t *Tmpl, carried *tagIndex) bool {
	if carried.norms[tagNorm(t)] {
		return true
	}
	if !t.Static() {
		return false
	}
	for n := range carried.norms {
		if strings.Contains(n, "{}") && carried.shapeRe(n).MatchString(t.Text) {
			return true
		}
	}
	return false
}

// invalidationWarnings looks at every repository generated in this run
// together (tags are shared by every repository on one runtime.Cache):
// a tag some write invalidates that no read carries, a cached read nothing
// invalidates, and a method named like a write that invalidates nothing.
func invalidationWarnings(files []*File) Errors {
	var out Errors
	// Tags are shared by the repositories of a Cache, except that a generic
	// repository's are its own (each instantiation's, runtime.RepoOf): each
	// generic repository is a scope of its own, the rest share scope nil.
	scopeOf := func(r *Repo) *Repo {
		if len(r.TypeParams) > 0 {
			return r
		}
		return nil
	}
	carried := map[*Repo][]*Tmpl{} // tags of gets, from parameters or results
	type write struct {
		r *Repo
		m *Method
	}
	var writes []write
	for _, f := range files {
		for _, r := range f.Repos {
			for _, m := range r.Methods {
				switch m.Verb {
				case "get":
					carried[scopeOf(r)] = append(carried[scopeOf(r)], m.Tags...)
				case "put", "evict":
					writes = append(writes, write{r, m})
				}
			}
		}
	}
	invalidatedTags := map[*Repo][]*Tmpl{}
	for _, w := range writes {
		invalidatedTags[scopeOf(w.r)] = append(invalidatedTags[scopeOf(w.r)], w.m.Tags...)
	}
	invs, cars := map[*Repo]*tagIndex{}, map[*Repo]*tagIndex{}
	index := func(m map[*Repo]*tagIndex, tags map[*Repo][]*Tmpl, r *Repo) *tagIndex {
		if m[r] == nil {
			m[r] = newTagIndex(tags[r])
		}
		return m[r]
	}
	for _, w := range writes {
		car := index(cars, carried, scopeOf(w.r))
		for _, t := range w.m.Tags {
			if !carriedBy(t, car) {
				msg := w.m.Name + " invalidates tag " + quote(t.Text) + ", which no //cache:get of this run carries: a typo, or a tag of a repository generated separately?"
				if scopeOf(w.r) != nil {
					msg = w.m.Name + " invalidates tag " + quote(t.Text) + ", which no //cache:get of " + w.r.Name + " carries (the tags of a generic repository are its own)"
				}
				out = append(out, annotations.Error{Pos: t.Pos, Msg: msg})
			}
		}
	}
	for _, f := range files {
		for _, r := range f.Repos {
			hasGet, hasWrite := len(r.Spaces) > 0, false
			for _, m := range r.Methods {
				hasWrite = hasWrite || m.Verb == "put" || m.Verb == "evict"
			}
			inv := index(invs, invalidatedTags, scopeOf(r))
			// A repository without writes relies on its ttls by design.
			for _, ks := range r.Spaces {
				if hasWrite && !invalidated(ks, r, inv) {
					out = append(out, annotations.Error{Pos: ks.Get.Pos, Msg: ks.Get.Name + ": nothing invalidates " + quote(ks.Get.Key.Text) + ": no put or evict names its key, a pattern over it or one of its tags (entries live out their ttl unless Invalidate" + ks.Get.Name + " is called)"})
				}
			}
			for _, m := range r.Methods {
				if hasGet && m.Verb == "" && isWriteName(m.Name) {
					out = append(out, annotations.Error{Pos: m.Decl, Msg: r.Name + "." + m.Name + " looks like a write but has no //cache:put or //cache:evict: what it changes stays cached until the ttl"})
				}
			}
		}
	}
	return out
}

// invalidated reports whether some write drops entries of ks: its key
// (put, evict keys=) or a pattern over it, in its repository, or one of its
// tags, anywhere (inv indexes every invalidated tag of the run).
func invalidated(ks *Keyspace, r *Repo, inv *tagIndex) bool {
	for _, m := range r.Methods {
		switch m.Verb {
		case "get":
			if m.Space == ks {
				for _, c := range m.Tags {
					if inv.names(c) {
						return true
					}
				}
			}
		case "put", "evict":
			if m.Space == ks {
				return true
			}
			for _, e := range m.Evict {
				if e.Space == ks {
					return true
				}
			}
			for _, g := range m.Groups {
				if g == ks {
					return true
				}
			}
		}
	}
	return false
}

func quote(s string) string { return `"` + s + `"` }
