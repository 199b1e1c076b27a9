package bench

import (
	"context"
	"maps"
	"math"
	"testing"

	"github.com/redis/go-redis/v9"
)

const sampleInfo = "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:0.250000\r\nused_cpu_sys_children:0.000000\r\n" +
	"\r\n# Commandstats\r\n" +
	"cmdstat_evalsha:calls=10,usec=60,usec_per_call=6.00,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_get:calls=50,usec=20,usec_per_call=0.40,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_client|setinfo:calls=2,usec=3,usec_per_call=1.50,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_info:calls=7,usec=700,usec_per_call=100.00,rejected_calls=0,failed_calls=0\r\n"

func TestParseInfo(t *testing.T) {
	s, err := parseInfo(sampleInfo)
	if err != nil {
		t.Fatal(err)
	}
	if s.cpu != 1.75e6 {
		t.Errorf("cpu = %v µs, want 1.75e6", s.cpu)
	}
	want := map[string]cmdStat{"evalsha": {10, 60}, "get": {50, 20}, "client|setinfo": {2, 3}, "info": {7, 700}}
	if !maps.Equal(s.cmds, want) {
		t.Errorf("cmds = %v, want %v", s.cmds, want)
	}
	if _, err := parseInfo("# Commandstats\r\ncmdstat_get:calls=1,usec=1\r\n"); err == nil {
		t.Error("a reply without the cpu section was accepted")
	}
}

func TestCommandTime(t *testing.T) {
	srv := map[string]cmdStat{
		"evalsha":        {10, 60}, // its 40 nested GETs' time is in these 60 µs
		"get":            {50, 20}, // 10 sent, 40 run by the scripts
		"set":            {4, 8},   // all nested
		"client|setinfo": {2, 3},
		"exec":           {1, 9}, // the queued commands are counted by name
		"incr":           {1, 2},
	}
	sent := map[string]int64{"evalsha": 10, "get": 10, "client": 2, "incr": 1, "multi": 1, "exec": 1}
	usec, nested := commandTime(srv, sent)
	if want := 60 + 20*10.0/50 + 3 + 2; math.Abs(usec-want) > 1e-9 {
		t.Errorf("usec = %v, want %v", usec, want)
	}
	if want := map[string]int64{"get": 40, "set": 4}; !maps.Equal(nested, want) {
		t.Errorf("nested = %v, want %v", nested, want)
	}
}

func TestClientSampleText(t *testing.T) {
	s := clientSample{rtt: 7, cmds: map[string]int64{"get": 5, "evalsha": 2}}
	if got := s.String(); got != "7 evalsha=2,get=5" {
		t.Errorf("String() = %q", got)
	}
	back, err := parseClientSample("7", "evalsha=2,get=5")
	if err != nil || back.rtt != 7 || !maps.Equal(back.cmds, s.cmds) {
		t.Errorf("parse: %+v, %v", back, err)
	}
	empty := clientSample{}
	if got := empty.String(); got != "0 -" {
		t.Errorf("empty String() = %q", got)
	}
	if back, err := parseClientSample("0", "-"); err != nil || back.rtt != 0 || len(back.cmds) != 0 {
		t.Errorf("parse empty: %+v, %v", back, err)
	}
}

// TestRTTCounter checks the hook on a private redis-server: one round trip
// per command, one per pipeline, names counted whatever their case, and
// nothing allocated by counting.
func TestRTTCounter(t *testing.T) {
	srv, err := startRedisServer()
	if err != nil {
		t.Skipf("no private redis-server: %v", err)
	}
	defer srv.stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	c := &rttCounter{}
	rdb.AddHook(c)
	ctx := context.Background()
	// Connections' set-up (HELLO, CLIENT SETINFO: round trips through the
	// hook too) happens here; this go-redis keeps pipelines on a pool of
	// their own, so warm both.
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error { p.Ping(ctx); return nil }); err != nil {
		t.Fatal(err)
	}
	s0 := c.sample()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Do(ctx, "GET", "k").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "k")
		p.Get(ctx, "k")
		p.Incr(ctx, "n")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Pipelined(ctx, func(redis.Pipeliner) error { return nil }); err != nil {
		t.Fatal(err)
	}
	d := c.sample().sub(s0)
	if d.rtt != 3 {
		t.Errorf("round trips = %d, want 3 (SET, GET, one pipeline)", d.rtt)
	}
	if want := map[string]int64{"set": 1, "get": 3, "incr": 1}; !maps.Equal(d.cmds, want) {
		t.Errorf("commands = %v, want %v", d.cmds, want)
	}
	cmd := redis.NewStringCmd(ctx, "GET", "k")
	if n := testing.AllocsPerRun(100, func() { c.count(cmd) }); n != 0 {
		t.Errorf("counting a known command allocates %v times", n)
	}
}
