"""The Redis clients of the served test apps, from the environment tests/redis_topologies.py
sets: ``REDIS_URL`` and ``REDIS_TOPOLOGY`` (``single``, the default; ``cluster``; ``sentinel``
with ``REDIS_SENTINELS`` ``host:port,…`` and ``REDIS_MASTER``)."""

from __future__ import annotations

import os
from typing import Any, Callable

TIMEOUTS = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0}


def topology() -> str:
    return os.environ.get("REDIS_TOPOLOGY", "single")


def _sentinels() -> list[tuple[str, int]]:
    pairs = [entry.rsplit(":", 1) for entry in os.environ["REDIS_SENTINELS"].split(",")]
    return [(host, int(port)) for host, port in pairs]


def sync_client() -> Any:
    """A synchronous client: ``redis.Redis``, ``RedisCluster`` or Sentinel's master."""
    import redis
    import redis.cluster
    import redis.sentinel

    url = os.environ["REDIS_URL"]
    if topology() == "cluster":
        return redis.cluster.RedisCluster.from_url(url, **TIMEOUTS)
    if topology() == "sentinel":
        return redis.sentinel.Sentinel(_sentinels(), **TIMEOUTS).master_for(
            os.environ["REDIS_MASTER"], **TIMEOUTS
        )
    return redis.Redis.from_url(url)


def async_factory() -> Callable[[], Any]:
    """Opens an asyncio client (one per event loop: ``AsyncRedisClient(client_factory=…)``)."""
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.asyncio.sentinel

    url = os.environ["REDIS_URL"]
    if topology() == "cluster":
        return lambda: redis.asyncio.cluster.RedisCluster.from_url(url, **TIMEOUTS)
    if topology() == "sentinel":
        sentinels = _sentinels()
        master = os.environ["REDIS_MASTER"]
        return lambda: redis.asyncio.sentinel.Sentinel(sentinels, **TIMEOUTS).master_for(master, **TIMEOUTS)
    return lambda: redis.asyncio.Redis.from_url(url, **TIMEOUTS)
