package bench

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SetTags is the usual hand-written tag design, the contrast to cachegen's
// versioned tags: storing an entry SADDs its key to a Redis set per tag;
// invalidating a tag is SMEMBERS + DEL of every member + DEL of the set, so
// its cost grows with the number of tagged entries.
type SetTags struct {
	RDB    redis.UniversalClient
	Prefix string // e.g. "benchset:"
	TTL    time.Duration
}

const setChunk = 1000

func (s *SetTags) tagKey(tag string) string { return s.Prefix + "tag:" + tag }

// Fill stores n entries tagged with tag (pipelined, 1000 per round trip).
func (s *SetTags) Fill(ctx context.Context, tag string, n int, val []byte) error {
	tk := s.tagKey(tag)
	for lo := 0; lo < n; lo += setChunk {
		hi := min(lo+setChunk, n)
		_, err := s.RDB.Pipelined(ctx, func(p redis.Pipeliner) error {
			members := make([]any, 0, hi-lo)
			for i := lo; i < hi; i++ {
				k := s.Prefix + "e:" + tag + ":" + strconv.Itoa(i)
				p.Set(ctx, k, val, s.TTL)
				members = append(members, k)
			}
			p.SAdd(ctx, tk, members...)
			p.Expire(ctx, tk, s.TTL)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Invalidate deletes every entry tagged with tag and the tag set itself. It
// returns how many keys it deleted.
func (s *SetTags) Invalidate(ctx context.Context, tag string) (int, error) {
	tk := s.tagKey(tag)
	keys, err := s.RDB.SMembers(ctx, tk).Result()
	if err != nil {
		return 0, err
	}
	_, err = s.RDB.Pipelined(ctx, func(p redis.Pipeliner) error {
		for lo := 0; lo < len(keys); lo += setChunk {
			hi := min(lo+setChunk, len(keys))
			p.Del(ctx, keys[lo:hi]...)
		}
		p.Del(ctx, tk)
		return nil
	})
	return len(keys), err
}
