"""One pipeline of script calls that survives a server without the scripts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from gateway.store.connection import RedisClient


async def pipelined(
    client: RedisClient,
    queue: Callable[[Any], Awaitable[None]],
    scripts: Sequence[AsyncScript],
) -> list[Any]:
    """Run the calls `queue(pipe)` adds, in order, in one pipeline. A server without the
    `scripts` (a promoted replica, a restarted node: scripts are not replicated) gets them
    (a Cluster client sends SCRIPT LOAD to every primary), and the pipeline runs once
    more."""
    for attempt in (1, 2):
        try:
            async with client.pipeline(transaction=False) as pipe:
                await queue(pipe)
                return list(await pipe.execute())
        except NoScriptError:
            if attempt == 2:
                raise
            for script in scripts:
                await client.script_load(script.script)
    raise AssertionError("unreachable")
