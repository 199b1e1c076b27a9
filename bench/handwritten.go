package bench

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"
)

// HandWritten is the cache-aside a user writes without a library: GET +
// msgpack.Unmarshal on the hit path; on a miss, the source then SET with a TTL.
// No stampede protection, no negative caching, no tags.
type HandWritten struct {
	RDB    redis.UniversalClient
	Src    Users
	TTL    time.Duration
	Prefix string // e.g. "benchhw:user:"
}

func (h *HandWritten) key(id int64) string { return h.Prefix + strconv.FormatInt(id, 10) }

// Get reads through the cache.
func (h *HandWritten) Get(ctx context.Context, id int64) (*User, error) {
	k := h.key(id)
	if b, err := h.RDB.Get(ctx, k).Bytes(); err == nil {
		u := new(User)
		if msgpack.Unmarshal(b, u) == nil {
			return u, nil
		}
	}
	u, err := h.Src.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if b, err := msgpack.Marshal(u); err == nil {
		_ = h.RDB.Set(ctx, k, b, h.TTL).Err()
	}
	return u, nil
}

// Touch writes the source, then deletes the entry.
func (h *HandWritten) Touch(ctx context.Context, id int64) error {
	err := h.Src.Touch(ctx, id)
	_ = h.RDB.Del(ctx, h.key(id)).Err()
	return err
}

// Forget deletes the entry (benchmarks call it outside the timer).
func (h *HandWritten) Forget(ctx context.Context, id int64) error {
	return h.RDB.Del(ctx, h.key(id)).Err()
}
