package bench

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// What the Redis server pays per operation, beside the client's ns/op:
//
//	redis-µs/op      execution time of the commands the contender sent, from
//	                 INFO commandstats (Σ usec; a script's usec includes the
//	                 commands it runs, which are not counted again), ÷ b.N:
//	                 the time Redis spent in commands, not reading, parsing
//	                 or writing them
//	redis-cpu-µs/op  used_cpu_user + used_cpu_sys of the server over the same
//	                 windows, ÷ b.N: everything the server process burned,
//	                 network I/O and protocol parsing included, less the
//	                 measured cost of the INFO calls that bound a window
//	rtt/op           network round trips of the contender's go-redis clients
//	                 (one per Process, one per pipeline), ÷ b.N
//
// The server figures need the private redis-server (a shared one counts other
// programs' commands too); without it only rtt/op is reported. Workload
// reports the same per request (redis-µs/req, redis-cpu-µs/req, rtt/req).
// The per-command breakdown goes to the verbose log (go test -v).

// rttCounter is a go-redis hook counting round trips (every Process call is
// one, every pipeline or transaction one, whatever its length) and the
// commands sent, by name. The names tell a command the client sent from the
// same command run inside a script, which INFO commandstats counts too (and
// whose time the script's own usec already includes). It allocates nothing
// on the way: a case-insensitive scan of the few names seen so far.
type rttCounter struct {
	n     atomic.Int64
	mu    sync.Mutex                   // serializes adding a name
	names atomic.Pointer[[]*nameCount] // copy on write
}

type nameCount struct {
	name string // lower case
	n    atomic.Int64
}

var _ redis.Hook = (*rttCounter)(nil)

func (c *rttCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *rttCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *rttCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 {
			c.n.Add(1)
		}
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *rttCounter) count(cmd redis.Cmder) {
	args := cmd.Args()
	if len(args) == 0 {
		return
	}
	name, ok := args[0].(string)
	if !ok {
		return
	}
	if p := c.names.Load(); p != nil {
		for _, nc := range *p {
			if strings.EqualFold(nc.name, name) {
				nc.n.Add(1)
				return
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old []*nameCount
	if p := c.names.Load(); p != nil {
		old = *p
	}
	for _, nc := range old {
		if strings.EqualFold(nc.name, name) {
			nc.n.Add(1)
			return
		}
	}
	nc := &nameCount{name: strings.ToLower(name)}
	nc.n.Add(1)
	grown := append(slices.Clip(old), nc)
	c.names.Store(&grown)
}

// clientSample is a reading of an rttCounter: round trips, commands by name.
type clientSample struct {
	rtt  int64
	cmds map[string]int64
}

func (c *rttCounter) sample() clientSample {
	s := clientSample{cmds: map[string]int64{}}
	if c == nil {
		return s
	}
	s.rtt = c.n.Load()
	if p := c.names.Load(); p != nil {
		for _, nc := range *p {
			s.cmds[nc.name] = nc.n.Load()
		}
	}
	return s
}

// sub is s - o.
func (s clientSample) sub(o clientSample) clientSample {
	d := clientSample{rtt: s.rtt - o.rtt, cmds: map[string]int64{}}
	for k, v := range s.cmds {
		if v -= o.cmds[k]; v != 0 {
			d.cmds[k] = v
		}
	}
	return d
}

// add accumulates o into s.
func (s *clientSample) add(o clientSample) {
	s.rtt += o.rtt
	if s.cmds == nil {
		s.cmds = map[string]int64{}
	}
	for k, v := range o.cmds {
		s.cmds[k] += v
	}
}

// String is "rtt name=n,name=n" (sorted), the stampede workers' report.
func (s clientSample) String() string {
	parts := make([]string, 0, len(s.cmds))
	for k, v := range s.cmds {
		parts = append(parts, k+"="+strconv.FormatInt(v, 10))
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		parts = append(parts, "-")
	}
	return strconv.FormatInt(s.rtt, 10) + " " + strings.Join(parts, ",")
}

func parseClientSample(rtt, cmds string) (clientSample, error) {
	s := clientSample{cmds: map[string]int64{}}
	var err error
	if s.rtt, err = strconv.ParseInt(rtt, 10, 64); err != nil {
		return s, fmt.Errorf("round trips %q: %v", rtt, err)
	}
	if cmds == "-" {
		return s, nil
	}
	for kv := range strings.SplitSeq(cmds, ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			return s, fmt.Errorf("command count %q", kv)
		}
		s.cmds[k] = n
	}
	return s, nil
}

// cmdStat is one command's line of INFO commandstats.
type cmdStat struct{ calls, usec int64 }

// serverSample is one INFO reading of the private server.
type serverSample struct {
	cmds map[string]cmdStat
	cpu  float64 // used_cpu_user + used_cpu_sys, µs
}

// ownCommands are what the meter itself sends; never charged to a contender.
var ownCommands = map[string]bool{"info": true}

// parseInfo reads the commandstats and cpu sections of an INFO reply.
func parseInfo(info string) (serverSample, error) {
	s := serverSample{cmds: map[string]cmdStat{}}
	var haveCPU int
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "cmdstat_"); ok {
			name, fields, ok := strings.Cut(rest, ":")
			if !ok {
				return s, fmt.Errorf("commandstats line %q", line)
			}
			var st cmdStat
			for f := range strings.SplitSeq(fields, ",") {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "calls":
					st.calls, _ = strconv.ParseInt(v, 10, 64)
				case "usec":
					st.usec, _ = strconv.ParseInt(v, 10, 64)
				}
			}
			s.cmds[name] = st
			continue
		}
		for _, k := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return s, fmt.Errorf("%s %q: %v", k, v, err)
				}
				s.cpu += f * 1e6
				haveCPU++
			}
		}
	}
	if haveCPU != 2 {
		return s, fmt.Errorf("INFO reply without used_cpu_sys/used_cpu_user")
	}
	return s, nil
}

func sampleServer(ctx context.Context, admin *redis.Client) (serverSample, error) {
	info, err := admin.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		return serverSample{}, err
	}
	return parseInfo(info)
}

// meter accumulates server and client figures over measured windows
// (start … stop), so set-up between windows (making keys cold, refilling) is
// left out like it is left out of the timer. start and stop send INFO: call
// them with the timer stopped.
type meter struct {
	admin *redis.Client // private server's admin connection, or nil
	rtt   *rttCounter   // the benchmark's clients
	why   string        // why there are no server figures

	on      bool
	s0      serverSample
	c0      clientSample
	srv     map[string]cmdStat // per server command name, over the windows
	cli     clientSample       // round trips and commands sent, over the windows
	cpu     float64
	windows int
	err     error
	// infoCPU is the server CPU an empty window costs (the tail of one INFO
	// and the head of the next), subtracted per window.
	infoCPU float64
}

func (e *env) newMeter(b *testing.B) *meter {
	b.Helper()
	m := &meter{admin: e.admin, rtt: e.rtt, why: e.noServerStats, srv: map[string]cmdStat{}}
	if m.admin != nil {
		m.infoCPU = calibrateInfoCPU(b, m.admin)
	}
	return m
}

// calibrateInfoCPU measures the server CPU of an empty window: the median of
// a few, as the scheduler sometimes charges a tick of something else.
func calibrateInfoCPU(b *testing.B, admin *redis.Client) float64 {
	b.Helper()
	ctx := context.Background()
	var ds []float64
	for range 9 {
		s0, err := sampleServer(ctx, admin)
		if err != nil {
			b.Fatalf("bench: INFO on the private redis-server: %v", err)
		}
		s1, err := sampleServer(ctx, admin)
		if err != nil {
			b.Fatalf("bench: INFO on the private redis-server: %v", err)
		}
		ds = append(ds, s1.cpu-s0.cpu)
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func (m *meter) start() {
	if m.on {
		return
	}
	m.on = true
	if m.admin != nil && m.err == nil {
		m.s0, m.err = sampleServer(context.Background(), m.admin)
	}
	m.c0 = m.rtt.sample()
}

func (m *meter) stop() {
	if !m.on {
		return
	}
	m.on = false
	m.cli.add(m.rtt.sample().sub(m.c0))
	m.windows++
	if m.admin == nil || m.err != nil {
		return
	}
	s1, err := sampleServer(context.Background(), m.admin)
	if err != nil {
		m.err = err
		return
	}
	for name, st := range s1.cmds {
		if ownCommands[name] {
			continue
		}
		d := cmdStat{st.calls - m.s0.cmds[name].calls, st.usec - m.s0.cmds[name].usec}
		if d.calls != 0 || d.usec != 0 {
			acc := m.srv[name]
			m.srv[name] = cmdStat{acc.calls + d.calls, acc.usec + d.usec}
		}
	}
	m.cpu += s1.cpu - m.s0.cpu - m.infoCPU
}

// addClient adds what clients in other processes sent during the windows
// (the stampede's workers).
func (m *meter) addClient(s clientSample) { m.cli.add(s) }

// scriptCommands can only be sent by a client: never nested, and their usec
// holds the time of every command they run.
var scriptCommands = map[string]bool{
	"eval": true, "evalsha": true, "eval_ro": true, "evalsha_ro": true, "fcall": true, "fcall_ro": true,
}

// commandTime is the server's execution time of the commands the clients
// sent, µs, and per server command name how many of its calls ran inside
// another command (a script, or EXEC) rather than being sent. INFO
// commandstats counts both, and the container's usec already includes the
// nested ones', so summing every line would count them twice. A command name
// both sent and nested is split by calls (same cost per call assumed). EXEC
// is left out: the commands it runs were sent, queued, and are counted under
// their own names.
func commandTime(srv map[string]cmdStat, sent map[string]int64) (usec float64, nested map[string]int64) {
	nested = map[string]int64{}
	for name, st := range srv {
		base, _, _ := strings.Cut(name, "|") // "client|setinfo" was sent as "client"
		switch {
		case scriptCommands[name]:
			usec += float64(st.usec)
		case name == "exec":
			// its time is its commands' time, counted under their names
		case st.calls > 0:
			top := min(st.calls, sent[base])
			if top < st.calls {
				nested[name] = st.calls - top
			}
			usec += float64(st.usec) * float64(top) / float64(st.calls)
		}
	}
	return usec, nested
}

// report stops the meter and reports its figures per op (per = "op") or per
// request (per = "req"), n of them, with the per-command breakdown in the log.
func (m *meter) report(b *testing.B, n int, per string) {
	b.Helper()
	m.stop()
	if n <= 0 {
		return
	}
	fn := float64(n)
	b.ReportMetric(float64(m.cli.rtt)/fn, "rtt/"+per)
	switch {
	case m.err != nil:
		b.Errorf("bench: server figures lost: INFO on the private redis-server: %v", m.err)
		return
	case m.admin == nil:
		b.Logf("no redis-µs/%s: %s", per, m.why)
		return
	}
	usec, nested := commandTime(m.srv, m.cli.cmds)
	cpu := max(m.cpu, 0)
	b.ReportMetric(usec/fn, "redis-µs/"+per)
	b.ReportMetric(cpu/fn, "redis-cpu-µs/"+per)

	names := slices.Collect(maps.Keys(m.srv))
	slices.SortFunc(names, func(x, y string) int {
		return cmp.Or(cmp.Compare(m.srv[y].usec, m.srv[x].usec), strings.Compare(x, y))
	})
	parts := make([]string, 0, len(names))
	for _, name := range names {
		st := m.srv[name]
		in := ""
		if k := nested[name]; k > 0 {
			in = fmt.Sprintf(" (%.3g inside scripts)", float64(k)/fn)
		}
		parts = append(parts, fmt.Sprintf("%s %.3g calls%s %.3g µs", name, float64(st.calls)/fn, in, float64(st.usec)/fn))
	}
	if len(parts) == 0 {
		parts = append(parts, "no commands")
	}
	b.Logf("redis per %s (n=%d, %d windows): %s; commands %.3g µs, server cpu %.3g µs, %.3g round trips",
		per, n, m.windows, strings.Join(parts, ", "), usec/fn, cpu/fn, float64(m.cli.rtt)/fn)
}
