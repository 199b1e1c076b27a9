package gen

import (
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/packages"

	"github.com/cachegen/cachegen/annotations"
)

// ifaceDecl is an interface declaration with its directives.
type ifaceDecl struct {
	file    *ast.File
	spec    *ast.TypeSpec
	itype   *ast.InterfaceType
	name    *types.TypeName
	repo    *annotations.Repo
	methods map[string]*annotations.Method // explicit method name -> directive
	// A directive with errors is reported once, where it is wrong; the checks
	// that would only echo it are skipped, and every other directive is
	// still checked in full.
	repoBroken bool                           // the repo directive had errors: skip what depends on its values (no ttl)
	broken     map[string]bool                // methods whose directive had errors: not checked further
	partial    map[string]*annotations.Method // what decoded of those directives: their placeholders are still bound
	brokenKeys []annotations.Template         // key templates of gets with errors elsewhere in their directive
	unreadGets []string                       // gets whose key template could not be read
}

// directive is one //cache: line of a doc comment, decoded. broken says it
// had errors; repo or method may then be partial, or both nil.
type directive struct {
	pos    token.Position
	verb   string
	repo   *annotations.Repo
	method *annotations.Method
	broken bool
}

// scanFile finds the interfaces of a file and their directives, and reports
// every //cache: line that is malformed or sits anywhere else.
func scanFile(p *packages.Package, f *ast.File) ([]*ifaceDecl, Errors) {
	fset := p.Fset
	var errs Errors
	used := map[*ast.Comment]bool{}
	// directives parses the //cache: lines of a doc comment, walking List
	// because CommentGroup.Text drops directive lines.
	directives := func(doc *ast.CommentGroup) []directive {
		if doc == nil {
			return nil
		}
		var out []directive
		for _, c := range doc.List {
			if !annotations.IsDirective(c.Text) {
				continue
			}
			used[c] = true
			pos := fset.Position(c.Slash)
			d, e := annotations.ParseLine(pos, c.Text)
			if len(e) > 0 {
				errs = append(errs, e...)
				out = append(out, directive{pos: pos, verb: d.Verb, broken: true})
				continue
			}
			v, e := annotations.Decode(d)
			errs = append(errs, e...)
			dir := directive{pos: pos, verb: d.Verb, broken: len(e) > 0, repo: v.Repo, method: v.Method}
			out = append(out, dir)
		}
		return out
	}
	var decls []*ifaceDecl
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			doc := ts.Doc
			if doc == nil && !gd.Lparen.IsValid() {
				doc = gd.Doc
			}
			it, isIface := ts.Type.(*ast.InterfaceType)
			if !isIface {
				for _, v := range directives(doc) {
					errs = append(errs, annotations.Error{Pos: v.pos, Msg: "cache directive on " + ts.Name.Name + ", which is not an interface"})
				}
				continue
			}
			d := &ifaceDecl{file: f, spec: ts, itype: it, methods: map[string]*annotations.Method{}, broken: map[string]bool{}, partial: map[string]*annotations.Method{}}
			d.name, _ = p.TypesInfo.Defs[ts.Name].(*types.TypeName)
			for _, v := range directives(doc) {
				switch {
				case v.method != nil:
					errs = append(errs, annotations.Error{Pos: v.pos, Msg: "//cache:" + v.method.Verb + " belongs in the doc comment of a method, not of interface " + ts.Name.Name})
				case d.repo != nil:
					errs = append(errs, annotations.Error{Pos: v.pos, Msg: "second //cache:repo directive on " + ts.Name.Name})
				case v.repo != nil:
					d.repo, d.repoBroken = v.repo, v.broken
				case v.broken && v.verb != "get" && v.verb != "put" && v.verb != "evict":
					// Unreadable: still a repository, so its methods are
					// checked, without what depends on its options.
					d.repo, d.repoBroken = &annotations.Repo{Pos: v.pos, Version: 1}, true
				}
			}
			if d.repo != nil && ts.Assign.IsValid() {
				errs = append(errs, annotations.Error{Pos: d.repo.Pos, Msg: ts.Name.Name + " is an alias; //cache:repo needs a defined interface type"})
				d.repo = nil
			}
			for _, field := range it.Methods.List {
				ds := directives(field.Doc)
				if len(field.Names) == 0 {
					for _, v := range ds {
						errs = append(errs, annotations.Error{Pos: v.pos, Msg: "cache directive on an embedded interface: redeclare the method in " + ts.Name.Name + " to cache it"})
					}
					continue
				}
				name := field.Names[0].Name
				for i, v := range ds {
					switch {
					case v.repo != nil:
						errs = append(errs, annotations.Error{Pos: v.pos, Msg: "//cache:repo belongs in the doc comment of the interface, not of method " + name})
					case i > 0 || d.methods[name] != nil || d.broken[name]:
						errs = append(errs, annotations.Error{Pos: v.pos, Msg: "method " + name + " has more than one cache directive"})
					case d.repo == nil:
						if v.method != nil {
							errs = append(errs, annotations.Error{Pos: v.pos, Msg: "//cache:" + v.method.Verb + " on " + ts.Name.Name + "." + name + ", but " + ts.Name.Name + " has no //cache:repo directive"})
						}
					case v.broken:
						d.broken[name] = true
						if v.method != nil {
							d.partial[name] = v.method
						}
						switch {
						case v.method != nil && v.method.Verb == "get" && keyReadable(v.method):
							d.brokenKeys = append(d.brokenKeys, v.method.Key)
						case v.method == nil && v.verb != "put" && v.verb != "evict" || v.method != nil && v.method.Verb == "get":
							d.unreadGets = append(d.unreadGets, name)
						}
					default:
						d.methods[name] = v.method
					}
				}
			}
			if d.repo != nil && d.name != nil {
				decls = append(decls, d)
			}
		}
	}
	for _, g := range f.Comments {
		for _, c := range g.List {
			if annotations.IsDirective(c.Text) && !used[c] {
				errs = append(errs, annotations.Error{Pos: fset.Position(c.Slash), Msg: "misplaced cache directive: it must be in the doc comment of an interface (repo) or of one of its methods (get, put, evict)"})
			}
		}
	}
	return decls, errs
}

// keyReadable reports whether the key of a directive with errors parsed on
// its own.
func keyReadable(m *annotations.Method) bool {
	if m.KeyArg.Key == "" {
		return false
	}
	_, errs := annotations.ParseTemplate(m.KeyArg, 0, m.KeyArg.Value, "key")
	return len(errs) == 0
}

// buildConstraint returns the //go:build line of a file, if any.
func buildConstraint(fset *token.FileSet, f *ast.File) string {
	for _, g := range f.Comments {
		if g.Pos() >= f.Package {
			break
		}
		for _, c := range g.List {
			if strings.HasPrefix(c.Text, "//go:build ") {
				return c.Text
			}
		}
	}
	return ""
}
