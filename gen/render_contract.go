package gen

import (
	"bytes"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// contract renders the cache contract of a repository as a table for the
// generated struct's doc comment, so a reviewer sees the whole cache at a
// glance: every cached method with its verb, key, lifetimes and tags, and
// for each read the writes (of this file) that invalidate it, for each
// write what it invalidates.
func (g *renderer) contract(r *Repo) string {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	tw.Write([]byte("method\tverb\tkey\tttl\tnegative\tjitter\tlocal\trefresh\tstale\ttags\tinvalidated by / invalidates\n"))
	// A write of another repository of the file (tags reach across) is
	// named with its repository: R.Save.
	var writes []*Method
	writer := map[*Method]string{}
	for _, fr := range g.f.Repos {
		for _, m := range fr.Methods {
			if m.Verb == "put" || m.Verb == "evict" {
				writes = append(writes, m)
				writer[m] = m.Name
				if fr != r {
					writer[m] = fr.Name + "." + m.Name
				}
			}
		}
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, m := range r.Methods {
		var row []string
		switch m.Verb {
		case "get":
			ks := m.Space
			var by []string
			for _, w := range writes {
				if how := g.invalidates(w, ks, m); how != "" {
					by = append(by, writer[w]+" ("+how+")")
				}
			}
			verb := "get"
			if m.Batch != nil {
				verb = "get batch" // one entry per id, shared with the single get of the template
			}
			row = []string{m.Name, verb, tmplText(m.Key), short(ks.TTL), durOr(ks.Negative), jitterText(ks), durOr(ks.Local), percentOr(ks.Refresh), durOr(ks.Stale), tmplList(m.Tags), dash(strings.Join(by, ", "))}
		case "put", "evict":
			key := "-"
			if m.Verb == "put" {
				key = tmplText(m.Key)
			}
			var what []string
			if len(m.Evict) > 0 {
				what = append(what, "keys "+tmplList(m.Evict))
			}
			if len(m.Tags) > 0 {
				what = append(what, "tags "+tmplList(m.Tags))
			}
			if len(m.Groups) > 0 {
				var gs []string
				for _, ks := range m.Groups {
					gs = append(gs, ks.Get.Key.Text)
				}
				what = append(what, "all of "+strings.Join(gs, ", "))
			}
			tags := "-"
			if m.Verb == "put" && len(m.EntryTags) > 0 {
				tags = tmplList(m.EntryTags) + " (stored)"
			}
			row = []string{m.Name, m.Verb, key, "-", "-", "-", "-", "-", "-", tags, dash(strings.Join(what, "; "))}
		default:
			continue
		}
		tw.Write([]byte(strings.Join(row, "\t") + "\n"))
	}
	tw.Flush()
	var out strings.Builder
	for i, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		if i > 0 {
			out.WriteByte('\n')
		}
		out.WriteString("//\t" + strings.TrimRight(line, " "))
	}
	return out.String()
}

// invalidates says how a write drops entries of the keyspace a get reads:
// "put", "key", "pattern", "tag t", or "" when it does not.
func (g *renderer) invalidates(w *Method, ks *Keyspace, get *Method) string {
	var how []string
	if w.Verb == "put" && w.Space == ks {
		how = append(how, "stores")
	}
	for _, e := range w.Evict {
		if e.Space == ks {
			how = append(how, "key")
			break
		}
	}
	for _, gks := range w.Groups {
		if gks == ks {
			how = append(how, "pattern")
		}
	}
	if len(w.Tags) > 0 {
		if g.tagIndexes == nil {
			g.tagIndexes = map[*Method]*tagIndex{}
		}
		ix := g.tagIndexes[w]
		if ix == nil {
			ix = newTagIndex(w.Tags)
			g.tagIndexes[w] = ix
		}
		for _, t := range get.Tags {
			if ix.names(t) {
				how = append(how, "tag "+tmplText(t))
			}
		}
	}
	return strings.Join(how, ", ")
}

func tmplList(ts []*Tmpl) string {
	if len(ts) == 0 {
		return "-"
	}
	var s []string
	for _, t := range ts {
		s = append(s, tmplText(t))
	}
	return strings.Join(s, ",")
}

// tmplText writes a template from its bound values, as the code uses them
// (a put's stored tags are the get's, re-expressed with the put's values).
func tmplText(t *Tmpl) string {
	var b strings.Builder
	for _, s := range t.Segs {
		if s.Val == nil {
			b.WriteString(s.Lit)
			continue
		}
		b.WriteString("{" + s.Val.Text + "}")
	}
	return b.String()
}

func durOr(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return short(d)
}

func jitterText(ks *Keyspace) string {
	switch {
	case ks.Jitter.IsPercent && ks.Jitter.Percent > 0:
		return strconv.FormatFloat(ks.Jitter.Percent, 'g', -1, 64) + "%"
	case !ks.Jitter.IsPercent && ks.Jitter.Spread > 0:
		return "±" + short(ks.Jitter.Spread)
	}
	return "-"
}

// percentOr is a percentage ("80%"), or "-" for 0.
func percentOr(p float64) string {
	if p == 0 {
		return "-"
	}
	return strconv.FormatFloat(p, 'g', -1, 64) + "%"
}

// freshText is a keyspace's refresh and stale, for messages.
func freshText(ks *Keyspace) string {
	return "refresh " + percentOr(ks.Refresh) + ", stale " + durOr(ks.Stale)
}
