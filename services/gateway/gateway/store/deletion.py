"""Deleting a session (`DELETE /api/v1/sessions/{id}`): its record and finals go, and its
live driver, on whichever pod, stops at once and can never write it back.

One Lua script, atomic like every other session write (store/scripts.py): it replaces the
record by a tombstone, `{state: deleted, epoch: <epoch + 1>}`, deletes the finals log,
and publishes a takeover notice at the new epoch on the channel RESUME uses
(store/takeovers.py). So:

- the driver hears the notice and ends (`session_taken_over`); a driver that missed it
  (a broken subscription) is fenced by its next write or lease renewal, which sees the
  newer epoch (-1), and REBUILD refuses a record of a newer epoch: a deleted session is
  never rebuilt from what its driver holds (as a record that merely vanished would be);
- RESUME finds no token hash (not_found), CREATE finds the id taken (session_exists);
- the tombstone keeps the record's remaining time to live, so the id stays taken as long
  as the session's record would have, then the key expires like any other.

It runs on the store's client and through its guarded calls (one pool per process).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster

from gateway.store.redis_store import SessionStore

DELETED = "deleted"

# KEYS: meta, finals. ARGV: publish command (PUBLISH or SPUBLISH), takeover channel,
# session id (scoped), ttl for a record that had none. Returns the tombstone's epoch, or 0
# when there was no session (or only a tombstone).
DELETE = f"""
local m = redis.call('HMGET', KEYS[1], 'epoch', 'state')
if not m[1] or m[2] == '{DELETED}' then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
local epoch = tonumber(m[1]) + 1
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'state', '{DELETED}', 'epoch', epoch)
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
redis.call(ARGV[1], ARGV[2], epoch .. ' ' .. ARGV[3])
return epoch
"""


class SessionDeletion:
    def __init__(self, store: SessionStore, *, default_ttl_s: int) -> None:
        self._store = store
        self._default_ttl_s = default_ttl_s
        self._publish = "SPUBLISH" if isinstance(store.client, RedisCluster) else "PUBLISH"
        self._script = store.client.register_script(DELETE)

    async def delete(self, key: str) -> int:
        """Delete the session stored under `key` (scoped id); the tombstone's epoch, or 0
        if there was none. StoreUnavailable when Redis cannot take it now."""
        args: list[Any] = [
            self._publish,
            self._store.takeover_channel_for(key),
            key,
            self._default_ttl_s,
        ]
        return int(
            await self._store.call("delete", self._script, keys=self._store.keys(key), args=args)
        )
