"""FastAPI's back-channel stores on a Redis Cluster and on Sentinel: asyncio clients pass,
synchronous ones (which would block the event loop) are refused."""

from __future__ import annotations

import pytest
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
from redis_topologies import Topology

from logto_rs import LogtoConfig
from logto_rs.backchannel import RedisReplayStore, RedisSessionIndex
from logto_rs.errors import LogtoConfigError
from logto_rs.redis_storage import AsyncRedisClient
from provider_harness import Provider


def test_fastapi_refuses_a_synchronous_cluster_client_and_takes_asyncio_ones(
    provider: Provider, cluster: Topology, sentinel: Topology
) -> None:
    from logto_rs.fastapi import LogtoFastAPI

    config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
    with pytest.raises(LogtoConfigError, match="synchronous redis.Redis client \\(RedisCluster\\)"):
        LogtoFastAPI(config, replay_store=RedisReplayStore(cluster.client()))
    with pytest.raises(LogtoConfigError, match="synchronous redis.Redis client"):
        LogtoFastAPI(config, replay_store=RedisReplayStore(sentinel.client()))
    asyncio_sentinel = redis.asyncio.sentinel.Sentinel(sentinel.sentinels).master_for("logto")
    for client in (
        AsyncRedisClient(client_factory=lambda: redis.asyncio.cluster.RedisCluster.from_url(cluster.url)),
        redis.asyncio.cluster.RedisCluster.from_url(cluster.url),
        asyncio_sentinel,
    ):
        LogtoFastAPI(
            config, replay_store=RedisReplayStore(client), session_index=RedisSessionIndex(client, "web-app")
        )
