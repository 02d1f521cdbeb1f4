"""redis-py internals: checked against redis 8.1.0 (guarded by tests/test_canaries.py).
One round trip to a Redis Cluster without redis-py's cluster pipeline.

The cluster pipeline builds per-command objects, groups them, wraps the replies: ~250 µs of
CPU more per refresh grant than on a single Redis (measured), most of the Cluster's cost.
Here the commands are grouped by their key's node, written to every node at once, and the
raw replies read back. Anything unusual (a node not known yet, a connection error, MOVED,
ASK, CLUSTERDOWN, TRYAGAIN) answers None: the caller runs redis-py's pipeline instead, which
follows redirects and refreshes the slot map. A command may then run twice: every command
sent here is a read or the rotation script, which is safe to retry.

Uses ClusterNode.acquire_connection/release of redis-py's asyncio Cluster client: not
documented API, pinned by a canary test (tests/test_canaries.py) and by the
upper bound on redis in pyproject.toml.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import AskError, ClusterDownError, RedisClusterException, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

_REDIRECTS = (AskError, ClusterDownError, TryAgainError)  # MovedError is an AskError


def _key(command: tuple) -> Any:
    # GET/TTL/HMGET/MGET key ...; EVALSHA sha numkeys key ...
    return command[3] if command[0] == "EVALSHA" else command[1]


async def round_trip(cluster: Any, commands: list[tuple]) -> list | None:
    groups: dict[Any, list[int]] = {}
    try:
        for i, command in enumerate(commands):
            node = cluster.get_node_from_key(_key(command))
            if node is None:
                return None
            groups.setdefault(node, []).append(i)
    except (KeyError, IndexError, RedisClusterException):  # the slot map is not loaded yet
        return None
    taken = []
    replies: list = [None] * len(commands)
    try:
        for node, indexes in groups.items():
            conn = node.acquire_connection()
            taken.append((node, conn))
            await conn.send_packed_command(conn.pack_commands([commands[i] for i in indexes]))
        for (_, conn), indexes in zip(taken, groups.values()):
            for i in indexes:
                try:
                    replies[i] = await conn.read_response()
                except ResponseError as exc:
                    replies[i] = exc
    except (RedisConnectionError, RedisTimeoutError, OSError):
        for _, conn in taken:
            await conn.disconnect()
        return None
    finally:
        for node, conn in taken:
            node.release(conn)
    if any(isinstance(reply, _REDIRECTS) for reply in replies):
        return None
    return replies
