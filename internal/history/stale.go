package history

import (
	"fmt"
	"sort"
	"time"
)

// A StaleRead is a read that returned a version older than that of a write
// of the same key which had returned before the read was invoked.
type StaleRead struct {
	Read Op
	// Write is the newest (highest-version) write of the key that returned
	// successfully before Read was invoked.
	Write Op
}

func (s StaleRead) String() string {
	return fmt.Sprintf("stale read of %q: %v saw v%d, but %v had returned %v before the read was invoked",
		s.Read.Key, s.Read, s.Read.Value, s.Write, time.Duration(s.Read.Invoke-s.Write.Return))
}

// CheckNoStaleRead returns every read (sorted by invoke time) that returned
// a version older than a write of the same key had written and returned
// before the read was invoked — strictly before: a write that returned at
// the very nanosecond the read was invoked counts as concurrent. Reads and
// writes with unknown outcomes are skipped: such a write may never have
// taken effect. It assumes what the package says of versions (the writes of
// a key carry increasing versions); it does not check that the versions
// read were ever written, nor the order of reads against each other — that
// is what CheckLinearizable adds.
func CheckNoStaleRead(ops []Op) []StaleRead {
	type keyOps struct{ writes, reads []Op }
	byKey := map[string]*keyOps{}
	for _, op := range ops {
		if op.Unknown() {
			continue
		}
		k := byKey[op.Key]
		if k == nil {
			k = &keyOps{}
			byKey[op.Key] = k
		}
		if op.Kind == Write {
			k.writes = append(k.writes, op)
		} else {
			k.reads = append(k.reads, op)
		}
	}
	var stale []StaleRead
	for _, k := range byKey {
		// Writes by return time, with the running highest version: the
		// newest write returned by time T is newest[i] for the last
		// write i with Return < T.
		sort.Slice(k.writes, func(i, j int) bool { return k.writes[i].Return < k.writes[j].Return })
		newest := make([]Op, len(k.writes))
		for i, w := range k.writes {
			newest[i] = w
			if i > 0 && newest[i-1].Value >= w.Value {
				newest[i] = newest[i-1]
			}
		}
		for _, r := range k.reads {
			n := sort.Search(len(k.writes), func(i int) bool { return k.writes[i].Return >= r.Invoke })
			if n > 0 && newest[n-1].Value > r.Value {
				stale = append(stale, StaleRead{Read: r, Write: newest[n-1]})
			}
		}
	}
	sort.Slice(stale, func(i, j int) bool {
		a, b := stale[i].Read, stale[j].Read
		if a.Invoke != b.Invoke {
			return a.Invoke < b.Invoke
		}
		return a.Key < b.Key
	})
	return stale
}
