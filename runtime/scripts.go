package runtime

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// script is a Lua script run by EVALSHA, loaded with EVAL on NOSCRIPT.
type script struct {
	src, sha string
	shaArg   any // boxed once, not per call
}

func newScript(src string) *script {
	h := sha1.Sum([]byte(src))
	sha := hex.EncodeToString(h[:])
	return &script{src: src, sha: sha, shaArg: sha}
}

// hit runs a one-key script through Do, which spends two allocations where
// EvalSha spends four.
func (s *script) hit(ctx context.Context, rdb redis.UniversalClient, key Key) (string, error) {
	cmd := rdb.Do(ctx, "evalsha", s.shaArg, 1, string(key))
	if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		cmd = rdb.Do(ctx, "eval", s.src, 1, string(key))
	}
	switch v := cmd.Val().(type) {
	case string:
		return v, nil
	case int64: // the script found the entry corrupt and deleted it
		return "", errCorrupt
	}
	if err := cmd.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("cachegen: unexpected reply %T from the hit script", cmd.Val())
}

func (s *script) run(ctx context.Context, rdb redis.Scripter, keys []string, args ...any) *redis.Cmd {
	cmd := rdb.EvalSha(ctx, s.sha, keys, args...)
	if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		cmd = rdb.Eval(ctx, s.src, keys, args...)
	}
	return cmd
}

// errCorrupt marks an entry found corrupt while checking its markers.
var errCorrupt = errors.New("cachegen: corrupt entry")

// hitScript returns the entry at KEYS[1] unless one of the markers listed in
// its envelope was bumped after the entry's fill sequence (then false, a
// miss). Single node only: the markers live in other hash slots. A header it
// cannot parse is returned as is, for Go to reject and delete; a marker that
// is not a number (a hostile or foreign key) makes it delete the entry and
// return 0, which Go counts as corrupt.
var hitScript = newScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local n = #v
if n < 25 or string.byte(v, 1) ~= 202 or string.byte(v, 2) ~= 1 then return v end
local seq = 0
for i = 12, 19 do seq = seq * 256 + string.byte(v, i) end
local deps = string.byte(v, 20) * 256 + string.byte(v, 21)
local p = 22
for i = 1, deps do
  if p + 1 > n then return v end
  local l = string.byte(v, p) * 256 + string.byte(v, p + 1)
  if p + 1 + l > n then return v end
  local at = redis.pcall('GET', string.sub(v, p + 2, p + 1 + l))
  if type(at) == 'table' then redis.call('DEL', KEYS[1]) return 0 end
  if at then
    local m = tonumber(at)
    if not m then redis.call('DEL', KEYS[1]) return 0 end
    if m > seq then return false end
  end
  p = p + 2 + l
end
return v
`)

// fillScript stores ARGV[2] at KEYS[1] for ARGV[3] ms if the caller still holds
// the lease KEYS[2] (token ARGV[1]) and no marker in ARGV[5:] was bumped past
// the fill sequence ARGV[4]. The lease is released either way. Returns 1 when
// stored, 0 when the lease was lost, -1 when an invalidation raced the load.
var fillScript = newScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
local seq = tonumber(ARGV[4])
for i = 5, #ARGV do
  local at = redis.call('GET', ARGV[i])
  if at and (tonumber(at) or 0) > seq then return -1 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// acquireScript takes the lease KEYS[2] (token ARGV[1], ARGV[2] ms) unless
// the entry KEYS[1] exists and ARGV[3] is 0: 1 taken, 0 busy, 2 entry exists.
var acquireScript = newScript(`
if ARGV[3] == '0' and redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`)

// acquireSeqScript is acquireScript that also returns the invalidation
// sequence KEYS[3], as {outcome, sequence}: single node only (KEYS[3] lives
// in another hash slot).
var acquireSeqScript = newScript(`
local seq = redis.call('GET', KEYS[3]) or '0'
if ARGV[3] == '0' and redis.call('EXISTS', KEYS[1]) == 1 then return {2, seq} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, seq} end
return {0, seq}
`)

// releaseScript deletes the lease KEYS[1] if it still holds token ARGV[1].
var releaseScript = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// storeScript is the write-through store: it voids any read lease on the key
// (so a reader that loaded the old row cannot overwrite this value) and sets
// the entry.
var storeScript = newScript(`
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// markScript raises the invalidation marker KEYS[1] to sequence ARGV[1] (never
// lowers it: two invalidations may arrive out of order) and keeps it for ARGV[2]
// ms, the longest any entry filled before it can live.
var markScript = newScript(`
local cur = redis.pcall('GET', KEYS[1])
if type(cur) == 'table' then cur = nil end -- a foreign key of another type: SET replaces it
cur = tonumber(cur or '0') or 0
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1
`)
