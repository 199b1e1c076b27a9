// Package errroundtrip has results a msgpack round trip would not give
// back: each is refused with the path of the field. The last methods are
// accepted (their types bring a codec, or tag the unexported field out).
package errroundtrip

import (
	"context"
	"io"
	"math/big"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

type Doc struct {
	Title string
	Body  io.Reader
}

type Job struct {
	ID    int64
	Done  chan struct{}
	Retry func() error
	Meta  *Meta
}

type Meta struct {
	Points []map[string]complex128
}

type Account struct {
	ID      int64
	balance int64
	mu      sync.Mutex
}

type base struct{ Name string }

type Inline struct {
	base    // embedded unexported value: msgpack inlines its exported fields
	*hidden // a decode cannot allocate it
	ID      int64
}

type hidden struct{ X int }

// Tagged drops its unexported field on purpose.
type Tagged struct {
	ID    int64
	cache []byte         `msgpack:"-"`
	Extra map[string]any // decodes to generic values
	At    time.Time
	Amt   *big.Int // MarshalText/UnmarshalText
}

// Owner is embedded by pointer: a nil one would come back allocated.
type Owner struct{ Login string }

type Post struct {
	*Owner
	Tags  []string          `msgpack:"tags,omitempty"` // an empty one comes back nil
	Attrs map[string]string `msgpack:",omitempty"`
	Title string            `msgpack:",omitempty"` // fine: "" comes back ""
}

// Slot is keyed by times, whose location a decode changes.
type Slot struct {
	Booked map[time.Time]string
	ByDay  map[struct{ Day time.Time }]int
}

// Custom has unexported fields and its own codec.
type Custom struct{ n int }

func (c *Custom) EncodeMsgpack(e *msgpack.Encoder) error { return e.EncodeInt(int64(c.n)) }
func (c *Custom) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeInt()
	c.n = n
	return err
}

//cache:repo prefix=rt ttl=1m
type Repo interface {
	//cache:get key="reader:{id}"
	Reader(ctx context.Context, id int64) (io.Reader, error)
	//cache:get key="doc:{id}"
	Doc(ctx context.Context, id int64) (*Doc, error)
	//cache:get key="job:{id}"
	Job(ctx context.Context, id int64) ([]Job, error)
	//cache:get key="acct:{id}"
	Account(ctx context.Context, id int64) (Account, error)
	//cache:get key="inline:{id}"
	Inline(ctx context.Context, id int64) (*Inline, error)
	//cache:get key="err:{id}"
	Errors(ctx context.Context, id int64) (map[string]error, error)

	//cache:get key="tagged:{id}"
	Tagged(ctx context.Context, id int64) (*Tagged, error)
	//cache:get key="custom:{id}"
	Custom(ctx context.Context, id int64) (*Custom, error)
	//cache:get key="post:{id}"
	Post(ctx context.Context, id int64) (*Post, error)
	//cache:get key="slot:{id}"
	Slot(ctx context.Context, id int64) (Slot, error)
}
