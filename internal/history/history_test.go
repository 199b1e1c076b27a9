package history

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// op builds a completed operation at logical times (nanoseconds).
func op(client int, key string, kind Kind, value, invoke, ret int64) Op {
	return Op{Process: 1, Client: client, Key: key, Kind: kind, Value: value, Invoke: invoke, Return: ret}
}

func w(client int, key string, v, invoke, ret int64) Op {
	return op(client, key, Write, v, invoke, ret)
}
func r(client int, key string, v, invoke, ret int64) Op { return op(client, key, Read, v, invoke, ret) }

func lin(t *testing.T, ops []Op) Linearizability {
	t.Helper()
	res, err := CheckLinearizable(ops, 10*time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	return res
}

func TestLegalHistory(t *testing.T) {
	ops := []Op{
		r(0, "k", 0, 0, 5), // absent at first
		w(0, "k", 1, 10, 20),
		r(1, "k", 1, 25, 30),
		// A read concurrent with a write may see either version.
		w(0, "k", 2, 40, 60),
		r(1, "k", 1, 41, 45),
		r(2, "k", 2, 50, 55),
		r(1, "k", 2, 56, 58),
		r(2, "k", 2, 70, 80),
		// Another key, independent.
		w(3, "other", 7, 0, 100),
		r(4, "other", 0, 1, 2),
		r(4, "other", 7, 101, 102),
	}
	if stale := CheckNoStaleRead(ops); len(stale) != 0 {
		t.Errorf("stale reads in a legal history: %v", stale)
	}
	if res := lin(t, ops); res.Result != Ok || len(res.IllegalKeys) != 0 || res.Keys != 2 || res.Ops != len(ops) {
		t.Errorf("legal history: %v", res)
	}
}

func TestStaleRead(t *testing.T) {
	ops := []Op{
		w(0, "k", 1, 0, 10),
		w(0, "k", 2, 20, 30),
		r(1, "k", 1, 40, 50), // v2 had returned at 30
		r(1, "k", 2, 60, 70),
		w(0, "k", 3, 80, 90),
		r(2, "k", 3, 90, 95), // invoked as v3 returned: concurrent, fine
		r(2, "k", 1, 96, 99), // v3 had returned at 90
	}
	stale := CheckNoStaleRead(ops)
	if len(stale) != 2 {
		t.Fatalf("CheckNoStaleRead found %d stale reads, want 2: %v", len(stale), stale)
	}
	if stale[0].Read != ops[2] || stale[0].Write != ops[1] || stale[1].Read != ops[6] || stale[1].Write != ops[4] {
		t.Errorf("wrong stale reads reported: %v", stale)
	}
	for _, s := range stale {
		t.Log(s)
		if !strings.Contains(s.String(), `stale read of "k"`) {
			t.Errorf("report %q does not name the key", s)
		}
	}
	if res := lin(t, ops); res.Result != Illegal || !slices.Equal(res.IllegalKeys, []string{"k"}) {
		t.Errorf("stale read: %v, want Illegal on k", res)
	}
}

// TestNewThenOldDuringWrite: while a write is in flight, one read sees the
// new version and a later read the old one. No write had returned before
// either read, so it is no stale read in CheckNoStaleRead's sense, but no
// register behaves so: once a read has returned v2, v2 is the value.
func TestNewThenOldDuringWrite(t *testing.T) {
	ops := []Op{
		w(0, "k", 1, 0, 5),
		w(0, "k", 2, 10, 100), // in flight throughout
		r(1, "k", 2, 20, 30),
		r(2, "k", 1, 40, 50),
	}
	if stale := CheckNoStaleRead(ops); len(stale) != 0 {
		t.Errorf("CheckNoStaleRead: %v, want none", stale)
	}
	if res := lin(t, ops); res.Result != Illegal || !slices.Equal(res.IllegalKeys, []string{"k"}) {
		t.Errorf("new-then-old reads: %v, want Illegal on k", res)
	}
	// Reversed (old, then new), it is fine.
	ops[2].Value, ops[3].Value = 1, 2
	if res := lin(t, ops); res.Result != Ok {
		t.Errorf("old-then-new reads: %v, want Ok", res)
	}
}

func TestOnlyTheBadKeyIsReported(t *testing.T) {
	var ops []Op
	for _, k := range []string{"a", "b", "c", "d"} {
		ops = append(ops, w(0, k, 1, 0, 10), r(1, k, 1, 20, 30))
	}
	ops = append(ops, r(2, "c", 0, 40, 50)) // c went back to absent
	res := lin(t, ops)
	if res.Result != Illegal || !slices.Equal(res.IllegalKeys, []string{"c"}) || len(res.UndecidedKeys) != 0 || res.Keys != 4 {
		t.Errorf("%v, want Illegal on c only", res)
	}
	if !strings.Contains(res.String(), `not linearizable: "c"`) {
		t.Errorf("report %q does not name c", res)
	}
}

func TestUnknownOutcomes(t *testing.T) {
	failedWrite := w(0, "k", 2, 20, 30)
	failedWrite.Err = "i/o timeout"
	lostWrite := w(3, "k", 3, 200, 0) // its process died
	failedRead := r(2, "k", 99, 40, 50)
	failedRead.Err = "connection refused"
	ops := []Op{
		w(0, "k", 1, 0, 10),
		failedWrite,
		failedRead,             // skipped: it saw nothing
		r(1, "k", 1, 100, 110), // the failed write has not taken effect yet...
		r(1, "k", 2, 120, 130), // ...and now it has
		r(1, "k", 3, 300, 310), // the write that never returned took effect too
	}
	ops = append(ops, lostWrite)
	if !failedWrite.Unknown() || !lostWrite.Unknown() || ops[0].Unknown() {
		t.Fatal("Unknown() is wrong")
	}
	if stale := CheckNoStaleRead(ops); len(stale) != 0 {
		t.Errorf("CheckNoStaleRead: %v, want none", stale)
	}
	if res := lin(t, ops); res.Result != Ok || res.Ops != len(ops)-1 {
		t.Errorf("%v, want Ok over %d operations (the failed read dropped)", res, len(ops)-1)
	}
	// A failed write can take effect only once: back to v1 after v2 was
	// seen is illegal.
	ops = append(ops, r(1, "k", 1, 400, 410))
	if res := lin(t, ops); res.Result != Illegal {
		t.Errorf("%v, want Illegal", res)
	}
	// A failed write does not make later reads of older versions stale.
	stale := CheckNoStaleRead([]Op{failedWrite, r(1, "k", 0, 100, 110)})
	if len(stale) != 0 {
		t.Errorf("a failed write made a read stale: %v", stale)
	}
}

func TestTimeoutIsUnknown(t *testing.T) {
	// Many concurrent writes with reads of each: a large search.
	var ops []Op
	for i := int64(1); i <= 400; i++ {
		ops = append(ops, w(int(i), "k", i, i, 10_000+i), r(1000+int(i), "k", 401-i, 2*i, 10_000+2*i))
	}
	res, err := CheckLinearizable(ops, time.Microsecond, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if res.Result != Unknown || !slices.Equal(res.UndecidedKeys, []string{"k"}) {
		t.Errorf("%v, want Unknown with k undecided", res)
	}
}

func TestVisualization(t *testing.T) {
	path := filepath.Join(t.TempDir(), "viz.html")
	ops := []Op{w(0, "k", 1, 0, 10), r(1, "k", 2, 20, 30), w(2, "k", 2, 40, 50)}
	res, err := CheckLinearizable(ops, time.Second, path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != Illegal {
		t.Errorf("%v, want Illegal (v2 read before it was written)", res)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<html") || !strings.Contains(string(b), `read(\"k\") -\u003e v2`) {
		t.Errorf("visualization (%d bytes) lacks the html or the operation", len(b))
	}
	if _, err := CheckLinearizable(ops, time.Second, filepath.Join(t.TempDir(), "no", "such", "dir.html")); err == nil {
		t.Error("no error for an unwritable visualization path")
	}
}

func TestRecordAndLoad(t *testing.T) {
	dir := t.TempDir()
	rec, err := Create(filepath.Join(dir, "p7.jsonl"), 7)
	if err != nil {
		t.Fatal(err)
	}
	c := rec.Invoke(1, "k", Write, 5)
	c.Return(999, nil) // a write keeps its version
	c.Return(0, errors.New("ignored: only the first Return counts"))
	rec.Invoke(2, "k", Read, 123).Return(5, nil)
	rec.Invoke(2, "k", Read, 0).Return(0, errors.New("timeout"))
	rec.Invoke(3, "k", Write, 6) // never returns
	if err := rec.Append(Op{Process: 99, Client: 4, Key: "j", Kind: Read, Value: 1, Invoke: 1, Return: 2}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	// A second file, and a torn last line as a killed process leaves.
	other := filepath.Join(dir, "p8.jsonl")
	text := `{"t":"op","process":8,"client":0,"key":"k","kind":"read","value":5,"invoke":3,"return":4}` + "\n" +
		`{"t":"invoke","id":1,"process":8,"client":0,"key":"k","kind":"wri`
	if err := os.WriteFile(other, []byte(text), 0o666); err != nil {
		t.Fatal(err)
	}

	ops, err := Load(filepath.Join(dir, "p7.jsonl"), other)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		t.Log(o)
	}
	if len(ops) != 6 {
		t.Fatalf("Load: %d ops, want 6", len(ops))
	}
	if ops[0].Key != "j" || ops[0].Process != 7 || ops[1].Process != 8 {
		t.Errorf("not sorted by invoke time, or Append kept a foreign process: %v %v", ops[0], ops[1])
	}
	got := ops[2:]
	if got[0].Kind != Write || got[0].Value != 5 || got[0].Unknown() || got[0].Client != 1 {
		t.Errorf("write: %v", got[0])
	}
	if got[1].Kind != Read || got[1].Value != 5 || got[1].Unknown() {
		t.Errorf("read: %v", got[1])
	}
	if got[2].Err != "timeout" || !got[2].Unknown() {
		t.Errorf("failed read: %v", got[2])
	}
	if got[3].Return != 0 || !got[3].Unknown() || got[3].Value != 6 {
		t.Errorf("unreturned write: %v", got[3])
	}
	for _, o := range got {
		if o.Process != 7 || o.Invoke <= 0 || (o.Return != 0 && o.Return < o.Invoke) {
			t.Errorf("bad times or process: %v", o)
		}
	}

	for name, bad := range map[string]string{
		"garbage in the middle": "{\n" + `{"t":"op","kind":"read","invoke":1,"return":2}` + "\n",
		"return without invoke": `{"t":"return","id":3,"return":5}` + "\n",
		"unknown kind":          `{"t":"op","kind":"cas","invoke":1,"return":2}` + "\n",
		"returned before":       `{"t":"op","kind":"read","invoke":5,"return":2}` + "\n",
	} {
		p := filepath.Join(dir, "bad.jsonl")
		os.WriteFile(p, []byte(bad), 0o666)
		if _, err := Load(p); err == nil {
			t.Errorf("%s: Load accepted %q", name, bad)
		}
	}
	// The last line needs no newline.
	p := filepath.Join(dir, "nonl.jsonl")
	os.WriteFile(p, []byte(`{"t":"op","kind":"read","invoke":1,"return":2}`), 0o666)
	if ops, err := Load(p); err != nil || len(ops) != 1 {
		t.Errorf("a last line without newline: %v, %v", ops, err)
	}
}
