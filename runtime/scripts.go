package runtime

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// script is a Lua script run by EVALSHA, loaded with EVAL on NOSCRIPT. Every
// script names all the keys it touches in KEYS. Scripts that must run when
// Redis is full (invalidations) carry the allow-oom flag in a shebang line;
// a server that does not understand shebangs (Redis < 7, miniredis) gets the
// same body without it.
type script struct {
	src, sha  string
	bare      *script     // the body without the shebang, or nil
	noShebang atomic.Bool // the server refused the shebang: use bare
	shaArg    any         // boxed once, not per call
	srcArg    any
}

func newScript(src string) *script {
	h := sha1.Sum([]byte(src))
	sha := hex.EncodeToString(h[:])
	return &script{src: src, sha: sha, shaArg: sha, srcArg: src}
}

// newOOMScript is newScript for a script that must run on a full Redis.
func newOOMScript(body string) *script {
	s := newScript("#!lua flags=allow-oom\n" + body)
	s.bare = newScript(body)
	return s
}

func (s *script) pick() *script {
	if s.bare != nil && s.noShebang.Load() {
		return s.bare
	}
	return s
}

// run executes the script; on a server that refuses the shebang it switches
// to the bare body for good.
func (s *script) run(ctx context.Context, rdb redis.Scripter, keys []string, args ...any) *redis.Cmd {
	sc := s.pick()
	cmd := rdb.EvalSha(ctx, sc.sha, keys, args...)
	if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		cmd = rdb.Eval(ctx, sc.src, keys, args...)
	}
	if sc != s.bare && s.bare != nil && refusedShebang(cmd.Err()) {
		s.noShebang.Store(true)
		return s.bare.run(ctx, rdb, keys, args...)
	}
	return cmd
}

// evalsha queues the script by its SHA in a pipeline; the caller retries a
// NOSCRIPT reply with run.
func (s *script) evalsha(ctx context.Context, p redis.Pipeliner, keys []string, args ...any) *redis.Cmd {
	return p.EvalSha(ctx, s.pick().sha, keys, args...)
}

// eval queues the script in a pipeline (EVAL: a pipeline cannot retry NOSCRIPT).
func (s *script) eval(ctx context.Context, p redis.Pipeliner, keys []string, args ...any) *redis.Cmd {
	return p.Eval(ctx, s.pick().src, keys, args...)
}

func refusedShebang(err error) bool {
	if err == nil || err == redis.Nil {
		return false
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "shebang") || strings.Contains(m, "#!") ||
		(strings.Contains(m, "syntax") || strings.Contains(m, "unexpected")) && !strings.Contains(m, "user_script")
}

// errCorrupt marks an entry (or a reply) that could not be decoded.
var errCorrupt = errors.New("cachegen: corrupt entry")

// invalidateScript is every invalidation: KEYS = clock, marks, retention,
// then entries and leases to delete (single node only; on Cluster they go in
// parallel). The retention key keeps the longest retention any process of
// the namespace asked for (processes configured with different MaxTTLs).
// ARGV = new incarnation (used if the state must be created), retention in µs,
// marker limit, mode ('b' bump, 'e' only make sure the state exists; a
// second letter 'p' or 's' publishes the bump with PUBLISH or SPUBLISH on
// "<ns>:{<ns>}:inv" followed by the rest of the argument (":<db>" off
// database 0: pub/sub channels are server-wide), the channel every L1
// listens to), marker members... It creates the state when the clock or the incarnation member is
// missing (lost state: a new incarnation, so every older entry is a miss),
// takes seq = max(prev+1, server time in µs), sets each marker's score to it,
// trims markers past the retention and returns {inc, seq, prev}.
var invalidateScript = newOOMScript(`
local c = redis.pcall('GET', KEYS[1])
local inc, prev
if type(c) == 'string' then inc, prev = string.match(c, '^(%d+):(%d+)$') end
if inc then
  local z = redis.pcall('ZSCORE', KEYS[2], 'inc:' .. inc)
  if type(z) ~= 'string' then inc = nil end
end
local fresh = false
if not inc then -- no state, or a foreign key where it belongs: start over
  inc, prev, fresh = ARGV[1], '0', true
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZADD', KEYS[2], '+inf', 'inc:' .. inc)
end
if #KEYS >= 4 then redis.call('DEL', unpack(KEYS, 4)) end
if string.sub(ARGV[4], 1, 1) == 'e' and not fresh then return {inc, prev, prev} end
local keep = tonumber(ARGV[2])
local k = redis.pcall('GET', KEYS[3])
k = type(k) == 'string' and tonumber(k) or nil
if k and k > keep then keep = k elseif k ~= keep then redis.call('SET', KEYS[3], string.format('%.0f', keep)) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local seq = math.max(tonumber(prev) + 1, now)
local s = string.format('%.0f', seq)
local n = #ARGV - 4
if n > 0 then
  local z = {}
  for i = 5, #ARGV do z[#z + 1] = s; z[#z + 1] = ARGV[i] end
  redis.call('ZADD', KEYS[2], unpack(z))
end
redis.call('SET', KEYS[1], inc .. ':' .. s)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%.0f', now - keep))
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('ZCARD', KEYS[2]) > limit then
  inc = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('ZADD', KEYS[2], '+inf', 'inc:' .. inc)
  redis.call('SET', KEYS[1], inc .. ':' .. s)
end
local pub = string.sub(ARGV[4], 2, 2)
if pub ~= '' then
  redis.call(pub == 's' and 'SPUBLISH' or 'PUBLISH', string.sub(KEYS[1], 1, -6) .. 'inv' .. string.sub(ARGV[4], 3),
    inc .. ':' .. s .. ':' .. prev .. '|' .. table.concat(ARGV, '', 5))
end
return {inc, s, prev}
`)

// rotateScript starts a new incarnation (KEYS = clock, marks; ARGV = the
// incarnation found unusable, the new one, the publish letter) unless that
// already happened.
var rotateScript = newOOMScript(`
local c = redis.pcall('GET', KEYS[1])
local inc, prev
if type(c) == 'string' then inc, prev = string.match(c, '^(%d+):(%d+)$') end
if inc and inc ~= ARGV[1] and type(redis.pcall('ZSCORE', KEYS[2], 'inc:' .. inc)) == 'string' then return 0 end
local t = redis.call('TIME')
local seq = math.max(tonumber(prev or '0') + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZADD', KEYS[2], '+inf', 'inc:' .. ARGV[2])
local s = string.format('%.0f', seq)
redis.call('SET', KEYS[1], ARGV[2] .. ':' .. s)
if ARGV[3] and ARGV[3] ~= '' then
  redis.call(string.sub(ARGV[3], 1, 1) == 's' and 'SPUBLISH' or 'PUBLISH', string.sub(KEYS[1], 1, -6) .. 'inv' .. string.sub(ARGV[3], 2),
    ARGV[2] .. ':' .. s .. ':0|')
end
return 1
`)

// storeScript stores an entry while the lease KEYS[2] is ours (ARGV[1]) — a
// fill — or, with an empty ARGV[1], unconditionally, voiding any lease
// (write-through). ARGV = token, envelope, ttl ms. 1 stored, 0 lease lost.
var storeScript = newScript(`
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// releaseScript frees the lease KEYS[1] if it still holds token ARGV[1],
// and stores ARGV[2] as the hand-off KEYS[2] for ARGV[3] ms when given.
var releaseScript = newScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] and ARGV[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return 1
`)
