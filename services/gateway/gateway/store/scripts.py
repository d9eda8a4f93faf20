"""The Lua scripts that make each session write atomic: one round trip each, none per audio
frame. KEYS are always [meta, finals] of one session (one hash tag, one Cluster slot).

Times come from Redis's own clock (`TIME`), so that comparisons across pods never depend
on their wall clocks. Fenced writes answer:
    -1  another connection took the session over (the stored epoch is not ours)
    -2  the record is gone (expired, or Redis lost its data): the owner rebuilds it
    -3  the stored log ends before our last final (Redis lost recent writes): the owner
        repairs it from the finals it still holds
"""

from __future__ import annotations

from gateway.sessions.lifecycle import SessionState

FENCED, LOST, GAP = -1, -2, -3

_NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
"""

_ACTIVE = SessionState.ACTIVE.value
_STOPPED = SessionState.STOPPED.value

# Appends finals (seq, payload pairs from ARGV[first]) to the log: those at or below the
# stored seq were written before (a retry) and are skipped; the first new one must be the
# next seq, or nothing is written (-3: a hole the owner must repair). Returns the last seq.
_APPEND_LOOP = """
local function append(first, last)
  for i = first, #ARGV, 2 do
    local seq = tonumber(ARGV[i])
    if seq > last then
      if seq ~= last + 1 then return nil end
      redis.call('XADD', KEYS[2], seq .. '-0', 'f', ARGV[i + 1])
      last = seq
    end
  end
  return last
end
local function log_tail()
  local tail = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if #tail == 0 then return 0 end
  return tonumber(string.match(tail[1][1], '^(%d+)'))
end
"""

# ARGV: ttl, config, token_hash, owner, retry_window_ms, takeover channel, session id,
# publish command (PUBLISH, or SPUBLISH in a Cluster: store/takeovers.py).
# Returns the new epoch, or 0 if the id is taken. A start for an id whose session has the
# same config and no final yet, within the retry window, is the retry of a start whose
# reply was lost: it gets a new epoch (and token), and its earlier driver is told.
CREATE = (
    _NOW
    + f"""
local now = now_ms()
local m = redis.call('HMGET', KEYS[1], 'state', 'seq', 'config', 'created_ms')
if m[1] then
  if m[1] ~= '{_STOPPED}' and m[2] == '0' and m[3] == ARGV[2]
     and tonumber(now) - tonumber(m[4]) <= tonumber(ARGV[5]) then
    local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
    redis.call('HSET', KEYS[1], 'state', '{_ACTIVE}', 'token_hash', ARGV[3], 'owner', ARGV[4],
      'committed_ms', 0, 'audio_ms', 0, 'channel_ends', '', 'updated_ms', now)
    redis.call('DEL', KEYS[2])
    redis.call('EXPIRE', KEYS[1], ARGV[1])
    redis.call(ARGV[8], ARGV[6], epoch .. ' ' .. ARGV[7])
    return epoch
  end
  return 0
end
redis.call('HSET', KEYS[1],
  'state', '{_ACTIVE}', 'config', ARGV[2], 'token_hash', ARGV[3], 'owner', ARGV[4],
  'epoch', 1, 'seq', 0, 'committed_ms', 0, 'audio_ms', 0, 'channel_ends', '',
  'created_ms', now, 'updated_ms', now)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# ARGV: epoch, ttl, committed_ms, audio_ms, channel_ends, then (seq, payload) pairs.
APPEND_FINALS = (
    _NOW
    + _APPEND_LOOP
    + """
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not meta[1] then return -2 end
if meta[1] ~= ARGV[1] then return -1 end
local last = append(6, math.min(tonumber(meta[2]), log_tail()))
if not last then return -3 end
redis.call('HSET', KEYS[1], 'seq', last, 'committed_ms', ARGV[3], 'audio_ms', ARGV[4],
  'channel_ends', ARGV[5], 'updated_ms', now_ms())
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return last
"""
)

# The checks every other fenced write makes. ARGV[1]: epoch; ARGV[4]: the driver's seq.
_FENCE = """
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not meta[1] then return -2 end
if meta[1] ~= ARGV[1] then return -1 end
if tonumber(meta[2]) < tonumber(ARGV[4]) or log_tail() < tonumber(ARGV[4]) then return -3 end
"""

# ARGV: epoch, ttl, audio_ms, seq, state.
SET_STATE = (
    _NOW
    + _APPEND_LOOP
    + _FENCE
    + """
redis.call('HSET', KEYS[1], 'state', ARGV[5], 'audio_ms', ARGV[3], 'updated_ms', now_ms())
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
"""
)

# The lease: the live owner refreshes its sessions' records and how much audio each has
# received. ARGV: epoch, ttl, audio_ms, seq.
RENEW = (
    _NOW
    + _APPEND_LOOP
    + _FENCE
    + """
redis.call('HSET', KEYS[1], 'updated_ms', now_ms(), 'audio_ms', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
"""
)

# The live owner rebuilds what Redis lost (a restart without its data, a failover to a
# lagging replica): the record from what it holds, the log from the finals it still has.
# A record of a newer epoch is not touched (-1). Returns the log's last seq, or -3 if the
# finals it holds do not reach back to the log's end (a hole it cannot fill).
# ARGV: epoch, ttl, state, config, token_hash, owner, committed_ms, audio_ms,
#       channel_ends, then (seq, payload) pairs.
REBUILD = (
    _NOW
    + _APPEND_LOOP
    + """
local stored = redis.call('HGET', KEYS[1], 'epoch')
if stored and tonumber(stored) > tonumber(ARGV[1]) then return -1 end
local now = now_ms()
if not stored then
  redis.call('HSET', KEYS[1], 'created_ms', now, 'seq', 0)
end
local last = append(10, log_tail())
if not last then return -3 end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'state', ARGV[3], 'config', ARGV[4],
  'token_hash', ARGV[5], 'owner', ARGV[6], 'seq', last, 'committed_ms', ARGV[7],
  'audio_ms', ARGV[8], 'channel_ends', ARGV[9], 'updated_ms', now)
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return last
"""
)

# Take a session over for a resume: check the token, `last_seq`, that its audio can be
# re-sent from an offset (not compressed: flac and ogg_opus cannot), the resume window,
# then bump the epoch (every write of the previous driver is refused from now on) and
# publish the takeover in the same step, so that no failure after the bump can leave the
# previous driver unaware. ARGV: token_hash, owner, resume_window_ms, ttl, last_seq,
# takeover channel, session id, publish command (PUBLISH, or SPUBLISH in a Cluster).
RESUME = (
    _NOW
    + f"""
local m = redis.call('HMGET', KEYS[1], 'token_hash', 'state', 'epoch', 'seq',
  'committed_ms', 'audio_ms', 'config', 'updated_ms', 'channel_ends')
if not m[1] then return {{'not_found'}} end
if m[1] ~= ARGV[1] then return {{'bad_token'}} end
if tonumber(ARGV[5]) > tonumber(m[4]) then return {{'bad_last_seq', m[4]}} end
if m[2] ~= '{_STOPPED}' then
  local encoding = cjson.decode(m[7])['encoding']
  if encoding == 'flac' or encoding == 'ogg_opus' then return {{'not_resumable', 0}} end
end
local now = now_ms()
if m[2] ~= '{_STOPPED}' and tonumber(now) - tonumber(m[8]) > tonumber(ARGV[3]) then
  return {{'expired'}}
end
local epoch = m[3]
if m[2] ~= '{_STOPPED}' then
  epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
  redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'state', '{_ACTIVE}', 'updated_ms', now)
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
  redis.call(ARGV[8], ARGV[6], epoch .. ' ' .. ARGV[7])
end
return {{'ok', tostring(epoch), m[2], m[4], m[5], m[6], m[7], m[9] or ''}}
"""
)
