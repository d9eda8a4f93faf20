"""The Lua scripts of the quotas: one round trip each, Redis's own clock (`TIME`), so
that no pod's wall clock matters. KEYS are the keys of one tenant, which share the hash
tag `{q:<tenant>}` (one Redis Cluster slot):

    KEYS[1] active   sorted set: session key -> lease expiry (ms); what counts
    KEYS[2] counted  hash: session key -> session audio offset (ms) already counted
    KEYS[3] audio    hash: UTC day number -> audio ms counted that day
    KEYS[4] starts   hash: the start-rate token bucket (tokens, ms of the last refill)

Audio is counted as offsets, not deltas a pod keeps: whichever pod drives a session adds
what its audio offset passed beyond the counted one, so audio a client re-sends after a
resume (on any pod) is not counted twice.
"""

from __future__ import annotations

# As in store/scripts.py: milliseconds on Redis's clock, as a string (exact past 2^31).
_NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
"""
_DAY_MS = 86_400_000
# The counted offsets outlive any resume of a session (its record's TTL is an hour) and
# the day totals the day after (for a look at yesterday's use).
_COUNTED_TTL_MS = _DAY_MS
_AUDIO_TTL_MS = 2 * _DAY_MS

# Drops the sessions whose leases ran out (their pod stopped renewing them: it crashed,
# or they ended without a release) and forgets their counted offsets.
_EXPIRE = """
local function drop_expired(now)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  if #gone == 0 then return end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  for i = 1, #gone, 500 do
    redis.call('HDEL', KEYS[2], unpack(gone, i, math.min(i + 499, #gone)))
  end
end
"""

# ARGV: session key, lease ms, max sessions, audio ms per day, starts per s, start burst,
# new ("1" for a start, "0" for a resume). 0: unlimited.
# Returns {'member'} (already counted: a resume of a session that still counts),
# {'ok'} (added), or a refusal: {'sessions'}, {'audio', ms to UTC midnight},
# {'rate', ms until a start is allowed}. A refused session takes no start token.
ADMIT = (
    _NOW
    + _EXPIRE
    + f"""
local now = tonumber(now_ms())
drop_expired(now)
local lease = tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease)
  return {{'member'}}
end
local cap = tonumber(ARGV[3])
if cap > 0 and redis.call('ZCARD', KEYS[1]) >= cap then return {{'sessions'}} end
local quota = tonumber(ARGV[4])
if quota > 0 then
  local day = math.floor(now / {_DAY_MS})
  local used = tonumber(redis.call('HGET', KEYS[3], string.format('%.0f', day)) or '0')
  if used >= quota then
    return {{'audio', string.format('%.0f', (day + 1) * {_DAY_MS} - now)}}
  end
end
local rate = tonumber(ARGV[5])
if ARGV[7] == '1' and rate > 0 then
  local burst = tonumber(ARGV[6])
  local bucket = redis.call('HMGET', KEYS[4], 'tokens', 'ms')
  local tokens = burst
  if bucket[1] then
    tokens = math.min(burst, tonumber(bucket[1]) + (now - tonumber(bucket[2])) * rate / 1000)
  end
  if tokens < 1 then
    return {{'rate', string.format('%.0f', math.ceil((1 - tokens) * 1000 / rate))}}
  end
  redis.call('HSET', KEYS[4], 'tokens', tostring(tokens - 1), 'ms', string.format('%.0f', now))
  redis.call('PEXPIRE', KEYS[4], math.ceil(burst * 1000 / rate) + 1000)
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
if ARGV[7] == '1' then
  -- a new session's audio counts from its start
  redis.call('HSET', KEYS[2], ARGV[1], 0)
  redis.call('PEXPIRE', KEYS[2], {_COUNTED_TTL_MS})
end
return {{'ok'}}
"""
)

# The renewal of one tenant's sessions on one pod (or the end of some of them).
# ARGV: lease ms, release ("1": they ended, stop counting them; "0": renew their leases),
# then per session: key, the offset its connection began at (what counts as counted when
# no offset is stored: a resume whose counted offset was forgotten), its audio offset.
# Adds the audio past each counted offset to today's total; returns today's total (ms).
COUNT = (
    _NOW
    + f"""
local now = tonumber(now_ms())
local day = math.floor(now / {_DAY_MS})
local lease = tonumber(ARGV[1])
local release = ARGV[2] == '1'
local added = 0
for i = 3, #ARGV, 3 do
  local member = ARGV[i]
  local audio = tonumber(ARGV[i + 2])
  local counted = tonumber(redis.call('HGET', KEYS[2], member) or ARGV[i + 1])
  if audio > counted then
    added = added + audio - counted
    counted = audio
  end
  if release then
    redis.call('ZREM', KEYS[1], member)
    redis.call('HDEL', KEYS[2], member)
  else
    redis.call('ZADD', KEYS[1], now + lease, member)
    redis.call('HSET', KEYS[2], member, string.format('%.0f', counted))
  end
end
if not release then
  redis.call('PEXPIRE', KEYS[1], lease)
  redis.call('PEXPIRE', KEYS[2], {_COUNTED_TTL_MS})
end
local today = string.format('%.0f', day)
if added > 0 then
  redis.call('HINCRBY', KEYS[3], today, string.format('%.0f', added))
  redis.call('HDEL', KEYS[3], string.format('%.0f', day - 2))
  redis.call('PEXPIRE', KEYS[3], {_AUDIO_TTL_MS})
end
return tonumber(redis.call('HGET', KEYS[3], today) or '0')
"""
)
