package runtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// mirror is this process's copy of the invalidation state (docs/runtime.md,
// "The process's mirror of the markers"): for the incarnation inc it knows the
// last bump of every marker bumped in (start, pos], and of every marker it
// resolved. A marker it does not hold was not bumped since start.
type mirror struct {
	mu      sync.RWMutex
	inc     uint64
	start   uint64
	pos     uint64
	last    uint64 // highest clock seen completed: a later read below it is a regression
	marks   map[uint64]uint64
	retired [8]uint64 // incarnations left behind: their entries are dead
	nret    int
	limit   int
	gen     atomic.Uint64     // bumped by every reset: a reply read before one is not learned
	ver     atomic.Uint64     // bumped by every change: an L1 entry judged at ver needs no new judgement
	own     map[uint64]uint64 // this process's invalidations past pos: prev → seq

	roundMu sync.Mutex
	round   chan struct{} // closed when the catch-up in flight ends
}

// errBehind: the mirror could not be brought up to the clock a hit read.
var errBehind = errors.New("cachegen: invalidation state could not be read")

type verdict uint8

const (
	vValid   verdict = iota
	vStale           // a marker moved past the entry's fill seq, or its incarnation is dead
	vUnknown         // the entry predates the mirror: resolve its markers first
	vBehind          // the mirror is behind the clock the entry was read with
)

// reset starts the mirror over at the clock (inc, n). Callers hold mu.
func (m *mirror) reset(inc, n uint64) {
	if m.inc != 0 && m.inc != inc {
		m.retired[m.nret%len(m.retired)] = m.inc
		m.nret++
	}
	m.inc, m.start, m.pos, m.last = inc, n, n, n
	m.gen.Add(1)
	m.ver.Add(1)
	clear(m.marks)
	clear(m.own)
	if m.marks == nil {
		m.marks = make(map[uint64]uint64)
	}
}

func (m *mirror) dead(inc uint64) bool {
	for _, r := range m.retired {
		if r == inc && inc != 0 {
			return true
		}
	}
	return false
}

// judge applies the validity rule to an entry read with clock (inc, n);
// fixed are the keyspace's markers and the key's own.
func (m *mirror) judge(inc, n uint64, e *envelope, fixed *[4]uint64) verdict {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.inc != inc {
		if m.dead(inc) {
			return vStale
		}
		return vBehind
	}
	if m.pos < n {
		return vBehind
	}
	old := e.seq < m.start
	unknown := false
	for _, id := range fixed {
		if s, ok := m.marks[id]; ok {
			if s > e.seq {
				return vStale
			}
		} else if old {
			unknown = true
		}
	}
	for i, nt := 0, e.numTags(); i < nt; i++ {
		if s, ok := m.marks[e.tagAt(i)]; ok {
			if s > e.seq {
				return vStale
			}
		} else if old {
			unknown = true
		}
	}
	if unknown {
		return vUnknown
	}
	return vValid
}

// judgeLocal applies the validity rule to an L1 entry: made against this
// mirror (no reset since), of its incarnation, and no marker bumped past the
// entry's fill seq — for an entry older than the mirror's start, every marker
// must be known (the L2 hit that made it resolved them).
func (m *mirror) judgeLocal(inc, f, mgen uint64, ids []uint64) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.gen.Load() != mgen || m.inc != inc {
		return false
	}
	old := f < m.start
	for _, id := range ids {
		if s, ok := m.marks[id]; ok {
			if s > f {
				return false
			}
		} else if old {
			return false
		}
	}
	return true
}

// unknownOf lists the markers of ids the mirror cannot answer for an entry
// of (inc, f): it is older than the mirror's start and they were never
// resolved.
func (m *mirror) unknownOf(inc, f uint64, ids []uint64) []uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.inc != inc || f >= m.start {
		return nil
	}
	var out []uint64
	for _, id := range ids {
		if !m.has(id) {
			out = append(out, id)
		}
	}
	return out
}

// unknownIDs lists the markers of an old entry that the mirror does not hold.
func (m *mirror) unknownIDs(e *envelope, fixed *[4]uint64) []uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var ids []uint64
	for _, id := range fixed {
		if _, ok := m.marks[id]; !ok {
			ids = append(ids, id)
		}
	}
	for i, nt := 0, e.numTags(); i < nt; i++ {
		if id := e.tagAt(i); !m.has(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// bumpedSince reports whether any of ids has a known bump after f, and
// lists the ids it cannot answer for (f is before the mirror's start and
// they were never resolved); ok is false for another incarnation.
func (m *mirror) bumpedSince(inc, f uint64, ids []uint64) (bumped bool, unknown []uint64, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.inc != inc {
		return false, nil, false
	}
	for _, id := range ids {
		if s, ok := m.marks[id]; ok {
			if s > f {
				return true, nil, true
			}
		} else if f < m.start {
			unknown = append(unknown, id)
		}
	}
	return false, unknown, true
}

// movedSince reports whether any marker in ids may have been bumped after
// f (resolving what the mirror does not know); when unsure, yes.
func (c *Cache) movedSince(ctx context.Context, inc, f uint64, ids []uint64) bool {
	for range 2 {
		bumped, unknown, ok := c.mirror.bumpedSince(inc, f, ids)
		if !ok || bumped {
			return true
		}
		if len(unknown) == 0 {
			return false
		}
		if c.resolve(ctx, inc, unknown) != nil {
			return true
		}
	}
	return true
}

func (m *mirror) has(id uint64) bool { _, ok := m.marks[id]; return ok }

// learn records the last bump of a marker. Callers hold mu.
func (m *mirror) learn(id, seq uint64) {
	if s, ok := m.marks[id]; !ok || seq > s {
		m.marks[id] = seq
		m.ver.Add(1)
	}
}

// applyOwn records this process's own invalidation (inc, seq) that followed
// prev: when the mirror was complete up to prev, it now is up to seq.
func (m *mirror) applyOwn(r stateReply, ids []uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inc != r.inc {
		// Another incarnation: adopt it only if it is newer than anything
		// seen (the replies of two invalidations around a state loss may
		// arrive in either order; adopting the older one would retire the
		// live one and turn caching off in this process).
		if m.dead(r.inc) || (m.inc != 0 && r.seq <= m.last) {
			return
		}
		// Start at the clock just before ours: the only bump in (prev, seq]
		// is our own.
		m.reset(r.inc, r.prev)
	}
	for _, id := range ids {
		m.learn(id, r.seq)
	}
	// (prev, seq] held no bump but ours. Replies of concurrent invalidations
	// arrive in any order: chain the intervals so the mirror still advances
	// without a catch-up round trip.
	if r.seq > m.pos {
		if m.own == nil {
			m.own = make(map[uint64]uint64)
		}
		if len(m.own) < 1024 {
			m.own[r.prev] = r.seq
		}
		m.advance()
	}
	m.last = max(m.last, r.seq)
	if len(m.marks) > m.limit {
		m.reset(m.inc, m.pos)
	}
}

// advance moves pos along this process's own invalidations: one that began
// at or before pos and ends after it held no other bump, so pos may move to
// its end. Callers hold mu.
func (m *mirror) advance() {
	for moved := true; moved && len(m.own) > 0; {
		moved = false
		for prev, seq := range m.own {
			switch {
			case seq <= m.pos:
				delete(m.own, prev)
			case prev <= m.pos:
				m.pos = seq
				delete(m.own, prev)
				moved = true
			}
		}
	}
}

// validate decides whether an entry read with the clock (inc, n) may be
// served, catching the mirror up or resolving markers as needed.
func (c *Cache) validate(ctx context.Context, inc, n uint64, s *space, key Key, e *envelope) (bool, error) {
	if e.inc != inc {
		return false, nil
	}
	fixed := [4]uint64{s.deps[0], s.deps[1], s.deps[2], markerID(markKey, string(key))}
	for range 4 {
		switch c.mirror.judge(inc, n, e, &fixed) {
		case vValid:
			return true, nil
		case vStale:
			return false, nil
		case vBehind:
			if err := c.syncMirror(ctx, inc, n); err != nil {
				return false, err
			}
		case vUnknown:
			if err := c.resolve(ctx, inc, c.mirror.unknownIDs(e, &fixed)); err != nil {
				return false, err
			}
		}
	}
	return false, errBehind
}

// syncMirror brings the mirror to the clock (inc, n): a new incarnation is
// adopted as is; a later clock of the same one needs a catch-up round,
// shared by every hit that waits for one.
func (c *Cache) syncMirror(ctx context.Context, inc, n uint64) error {
	m := &c.mirror
	for range 3 {
		m.mu.Lock()
		if m.inc != inc {
			if !m.dead(inc) {
				m.reset(inc, n)
			}
			m.mu.Unlock()
			return nil
		}
		if m.pos >= n {
			m.mu.Unlock()
			return nil
		}
		m.mu.Unlock()
		m.roundMu.Lock()
		if ch := m.round; ch != nil {
			m.roundMu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		ch := make(chan struct{})
		m.round = ch
		m.roundMu.Unlock()
		err := c.catchUp(ctx, inc, n)
		m.roundMu.Lock()
		m.round = nil
		m.roundMu.Unlock()
		close(ch)
		if err != nil {
			return err
		}
	}
	return errBehind
}

// catchUp is one round: the clock, then every marker bumped since pos.
func (c *Cache) catchUp(ctx context.Context, inc, n uint64) error {
	m := &c.mirror
	m.mu.RLock()
	pos, floor, gen := m.pos, max(m.last, n), m.gen.Load()
	m.mu.RUnlock()
	type res struct {
		clock string
		marks []zEntry
	}
	r, err := call(c, ctx, func(ctx context.Context) (res, error) {
		clock, zs, err := c.remote.catchUp(ctx, pos, m.limit)
		out := res{clock: clock, marks: make([]zEntry, 0, len(zs))}
		for _, z := range zs {
			member, _ := z.Member.(string)
			out.marks = append(out.marks, zEntry{member, z.Score})
		}
		return out, err
	})
	if err != nil {
		return err
	}
	cinc, cn, ok := parseClock(r.clock)
	if !ok { // the state is gone: whatever reads next starts a new incarnation
		m.mu.Lock()
		if m.inc == inc {
			m.reset(0, 0)
		}
		m.mu.Unlock()
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inc != inc || m.gen.Load() != gen {
		return nil // reset meanwhile: what we read may predate it
	}
	if cinc != inc {
		if !m.dead(cinc) {
			m.reset(cinc, cn)
		}
		return nil
	}
	if cn < floor { // the clock went back: writes were lost (a failover)
		m.reset(0, 0)
		go c.rotate(inc)
		return nil
	}
	if len(r.marks) > m.limit {
		m.reset(inc, max(cn, m.pos))
		return nil
	}
	intact := false
	want := incMember(inc)
	for _, z := range r.marks {
		if z.member == want {
			intact = true
			continue
		}
		if id, ok := idOf(z.member); ok {
			m.learn(id, uint64(z.score))
		}
	}
	if !intact { // the marker set was lost (evicted): this incarnation is over
		m.reset(0, 0)
		go c.rotate(inc)
		return nil
	}
	if cn > m.pos {
		m.pos = cn
	}
	m.advance()
	m.last = max(m.last, cn)
	if len(m.marks) > m.limit {
		m.reset(inc, m.pos)
	}
	return nil
}

type zEntry struct {
	member string
	score  float64
}

// resolve looks up the last bumps of markers the mirror does not hold.
func (c *Cache) resolve(ctx context.Context, inc uint64, ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	type res struct {
		scores []float64
		ok     bool
	}
	gen := c.mirror.gen.Load()
	r, err := call(c, ctx, func(ctx context.Context) (res, error) {
		s, ok, err := c.remote.resolve(ctx, inc, ids)
		return res{s, ok}, err
	})
	if err != nil {
		return err
	}
	m := &c.mirror
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inc != inc || m.gen.Load() != gen { // reset meanwhile: the reply may predate bumps it dropped
		return nil
	}
	if !r.ok {
		m.reset(0, 0)
		go c.rotate(inc)
		return nil
	}
	for i, id := range ids {
		if i < len(r.scores) {
			m.learn(id, uint64(r.scores[i]))
		}
	}
	return nil
}

// rotate replaces an incarnation found unusable (lost markers, a clock that
// went back), so that every process drops the entries filled under it.
func (c *Cache) rotate(inc uint64) {
	c.mirror.mu.Lock()
	if !c.mirror.dead(inc) {
		c.mirror.retired[c.mirror.nret%len(c.mirror.retired)] = inc
		c.mirror.nret++
	}
	c.mirror.mu.Unlock()
	_, err := call(c, context.Background(), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.remote.rotate(ctx, inc, c.newIncarnation())
	})
	if err == nil {
		c.cfg.logger.Warn("cachegen: invalidation state lost (evicted, or a failover lost writes); started a new incarnation: every entry is a miss once")
	}
}
