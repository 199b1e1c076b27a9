package runtime

import "testing"

type unionName string
type unionID int32

func TestUnionAppender(t *testing.T) {
	check := func(got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	check(UnionAppender[unionName]()(nil, "a:b"), string(AppendString(nil, "a:b")))
	check(UnionAppender[unionID]()(nil, -42), "-42")
	check(UnionAppender[uint8]()(nil, 255), "255")
	check(UnionAppender[int64]()(nil, -1<<63), "-9223372036854775808")
	check(UnionAppender[uint64]()(nil, 1<<64-1), "18446744073709551615")
	check(UnionAppender[bool]()([]byte("x:"), true), "x:true")
	appendName, buf := UnionAppender[unionName](), make([]byte, 0, 32)
	if n := testing.AllocsPerRun(100, func() { buf = appendName(buf[:0], "abc") }); n > 0 {
		t.Errorf("%v allocations", n)
	}
}
