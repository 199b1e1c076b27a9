package gen

import (
	"strconv"
	"strings"
)

// nameLocals names the generated locals of the method bodies and of the
// deep-copy functions, avoiding the names visible at file level.
func (g *renderer) nameLocals() {
	for _, n := range []string{"r", "next", "c", "repo", "ctx", "buf", "key", "v", "rd", "err", "res", "inv", "tags", "b"} {
		name := n
		for g.reserved[name] {
			name += "_"
		}
		g.local[n] = name
	}
	// The deep-copy functions have one parameter and refer to types, the
	// runtime and each other only: their locals avoid just those.
	for _, n := range []string{"v", "out", "i", "k", "e", "c", "zero"} {
		name := n
		for g.reserved[name] {
			name += "_"
		}
		g.cloneVar[n] = name
	}
}

// l returns the name of a generated local.
func (g *renderer) l(name string) string { return g.local[name] }

// generatedLocal reports names the method bodies declare on their own.
func generatedLocal(name string) bool {
	for _, p := range []string{"txt", "err", "res"} {
		if rest, ok := strings.CutPrefix(name, p); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			return true
		}
	}
	return false
}

// nameParams gives every parameter a name that clashes with nothing the
// generated method refers to: imports, package-level names, locals, type
// parameters and the other parameters.
func (g *renderer) nameParams(r *Repo) {
	for _, m := range r.Methods {
		used := map[string]bool{}
		for n := range g.reserved {
			used[n] = true
		}
		for _, n := range g.local {
			used[n] = true
		}
		for _, tp := range r.TypeParams {
			used[tp.Obj().Name()] = true
		}
		for i, p := range m.Params {
			if p.Context {
				p.Name = g.l("ctx")
				continue
			}
			base := p.Orig
			if base == "" || base == "_" {
				base = "p" + strconv.Itoa(i)
			}
			name := base
			for n := 1; used[name] || generatedLocal(name); n++ {
				name = base + "Arg"
				if n > 1 {
					name += strconv.Itoa(n)
				}
			}
			used[name] = true
			p.Name = name
		}
		if bt := m.Batch; bt != nil { // one id, in the batch's key and tag functions
			name := "id"
			for n := 1; used[name] || generatedLocal(name); n++ {
				name = "id" + strconv.Itoa(n)
			}
			bt.Elem.Name = name
			used[name] = true
			opts := "opts"
			for n := 1; used[opts]; n++ {
				opts = "opts" + strconv.Itoa(n)
			}
			bt.Opts = opts
		}
	}
}
