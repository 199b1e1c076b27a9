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
	broken  bool                           // a directive had syntax errors: skip the checks that would cascade
}

// scanFile finds the interfaces of a file and their directives, and reports
// every //cache: line that is malformed or sits anywhere else.
func scanFile(p *packages.Package, f *ast.File) ([]*ifaceDecl, Errors) {
	fset := p.Fset
	var errs Errors
	used := map[*ast.Comment]bool{}
	// directives parses the //cache: lines of a doc comment, walking List
	// because CommentGroup.Text drops directive lines.
	directives := func(doc *ast.CommentGroup) []any {
		if doc == nil {
			return nil
		}
		var out []any
		for _, c := range doc.List {
			if !annotations.IsDirective(c.Text) {
				continue
			}
			used[c] = true
			d, e := annotations.ParseLine(fset.Position(c.Slash), c.Text)
			if len(e) > 0 {
				errs = append(errs, e...)
				continue
			}
			v, e := annotations.Decode(d)
			errs = append(errs, e...)
			if v != nil {
				out = append(out, v)
			}
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
					errs = append(errs, annotations.Error{Pos: pos(v), Msg: "cache directive on " + ts.Name.Name + ", which is not an interface"})
				}
				continue
			}
			d := &ifaceDecl{file: f, spec: ts, itype: it, methods: map[string]*annotations.Method{}}
			d.name, _ = p.TypesInfo.Defs[ts.Name].(*types.TypeName)
			before := len(errs)
			for _, v := range directives(doc) {
				switch v := v.(type) {
				case *annotations.Repo:
					if d.repo != nil {
						errs = append(errs, annotations.Error{Pos: v.Pos, Msg: "second //cache:repo directive on " + ts.Name.Name})
						continue
					}
					d.repo = v
				case *annotations.Method:
					errs = append(errs, annotations.Error{Pos: v.Pos, Msg: "//cache:" + v.Verb + " belongs in the doc comment of a method, not of interface " + ts.Name.Name})
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
						errs = append(errs, annotations.Error{Pos: pos(v), Msg: "cache directive on an embedded interface: redeclare the method in " + ts.Name.Name + " to cache it"})
					}
					continue
				}
				for i, v := range ds {
					m, ok := v.(*annotations.Method)
					switch {
					case !ok:
						errs = append(errs, annotations.Error{Pos: pos(v), Msg: "//cache:repo belongs in the doc comment of the interface, not of method " + field.Names[0].Name})
					case i > 0 || d.methods[field.Names[0].Name] != nil:
						errs = append(errs, annotations.Error{Pos: m.Pos, Msg: "method " + field.Names[0].Name + " has more than one cache directive"})
					case d.repo == nil:
						errs = append(errs, annotations.Error{Pos: m.Pos, Msg: "//cache:" + m.Verb + " on " + ts.Name.Name + "." + field.Names[0].Name + ", but " + ts.Name.Name + " has no //cache:repo directive"})
					default:
						d.methods[field.Names[0].Name] = m
					}
				}
			}
			d.broken = len(errs) > before
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

func pos(v any) token.Position {
	switch v := v.(type) {
	case *annotations.Repo:
		return v.Pos
	case *annotations.Method:
		return v.Pos
	}
	return token.Position{}
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
