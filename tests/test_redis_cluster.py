"""The Redis storage, its lock and rotation, and the back-channel stores on a real Redis Cluster
of three masters (and on one Redis where the layout is the point), synchronous and asyncio.

Every key of a session lives in the session's slot (the id is the keys' hash tag); a rotation
moves the keys to a new id in another slot by copy and delete under the old id's refresh lock;
the back-channel index, revocations and replay store never need a multi-slot command. Sessions
stored before the hash tag (``<prefix><id>:<key>``) read as signed out.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
from redis_topologies import SessionIds, Topology

from logto_rs import LogtoClient, LogtoConfig
from logto_rs.backchannel import LogoutToken, RedisReplayStore, RedisRevocations, RedisSessionIndex
from logto_rs.errors import LogtoConfigError, LogtoStorageError
from logto_rs.redis_storage import (
    REFRESH_LOCK,
    AsyncRedisClient,
    AsyncRedisStorage,
    RedisStorage,
    session_key,
    tombstone,
)
from provider_harness import Provider

KEYS = ("idToken", "refreshToken", "accessTokenMap")


def sync_cluster(cluster: Topology) -> redis.cluster.RedisCluster:
    client: redis.cluster.RedisCluster = cluster.client()
    return client


def async_cluster(cluster: Topology) -> AsyncRedisClient:
    return AsyncRedisClient(client_factory=lambda: redis.asyncio.cluster.RedisCluster.from_url(cluster.url))


def storage(kind: str, cluster: Topology, ids: SessionIds) -> Any:
    if kind == "sync":
        return RedisStorage(sync_cluster(cluster), ids)
    return AsyncRedisStorage(async_cluster(cluster), ids)


async def done(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_session_signs_in_with_every_key_in_its_own_slot_and_rotates_to_another(
    provider: Provider, cluster: Topology, kind: str
) -> None:
    async def scenario() -> None:
        ids = SessionIds()
        store = storage(kind, cluster, ids)
        client = LogtoClient(LogtoConfig(endpoint=provider.endpoint, appId="spa-app"), storage=store)
        started = await done(client.signIn("http://127.0.0.1/callback"))
        before = ids.sid
        assert before and cluster.keys(session_key("logto:", before, "*"))
        await sign_in_from(client, started)
        # The callback rotated the id: the old one names nothing, the new one every token.
        assert ids.sid != before
        assert cluster.keys(session_key("logto:", before, "*")) == []
        keys = cluster.keys("logto:*")
        assert sorted(keys) == sorted(session_key("logto:", ids.sid, k).encode() for k in KEYS)
        assert len(cluster.slots(keys)) == 1
        assert await done(client.getAccessToken())
        # Another rotation moves the tokens, with their ttl, to a slot of its own.
        rotated_from = ids.sid
        await done(store.rotate())
        assert cluster.keys(session_key("logto:", rotated_from, "*")) == []
        moved = cluster.keys("logto:*")
        assert sorted(moved) == sorted(session_key("logto:", ids.sid, k).encode() for k in KEYS)
        assert all(0 < sync_cluster(cluster).ttl(key) <= 14 * 86400 for key in moved)
        assert await done(client.getAccessToken())
        await done(client.signOut())
        assert cluster.keys("logto:*") == []

    asyncio.run(scenario())


async def sign_in_from(client: LogtoClient, started: str) -> None:
    from provider_harness import complete_sign_in

    await done(client.handleSignInCallback(complete_sign_in(started, "http://127.0.0.1/callback")))


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_rotation_waits_for_a_refresh_holding_the_session_lock(cluster: Topology, kind: str) -> None:
    async def scenario() -> None:
        ids = SessionIds("old-id")
        store = storage(kind, cluster, ids)
        refresher = RedisStorage(sync_cluster(cluster), SessionIds("old-id"))
        await done(store.set("refreshToken", "first"))
        token = refresher.lock(REFRESH_LOCK, 10)
        assert token

        def refresh() -> None:  # the holder stores the rotated refresh token, then unlocks
            time.sleep(0.3)
            refresher.set("refreshToken", "rotated")
            refresher.unlock(REFRESH_LOCK, token)

        holder = threading.Thread(target=refresh)
        holder.start()
        began = time.monotonic()
        await done(store.rotate())
        holder.join()
        assert time.monotonic() - began >= 0.25
        # The move waited for the refresh: the new id has the rotated token, the old one nothing.
        assert await done(store.get("refreshToken")) == "rotated"
        assert cluster.keys(session_key("logto:", "old-id", "*")) == []

    asyncio.run(scenario())


def test_a_key_prefix_with_a_brace_is_refused(cluster: Topology) -> None:
    with pytest.raises(LogtoConfigError, match="braces") as refused:
        RedisStorage(sync_cluster(cluster), SessionIds(), prefix="{app}:")
    assert refused.value.code == "config.invalid"


def test_a_session_stored_before_the_hash_tag_reads_as_signed_out(
    provider: Provider, redis_client: redis.Redis
) -> None:
    # Written by the layout without the hash tag: ``<prefix><session id>:<key>``.
    for key in KEYS:
        redis_client.set(f"logto:pre-upgrade:{key}", "a token", ex=3600)
    store = RedisStorage(redis_client, SessionIds("pre-upgrade"))
    client = LogtoClient(LogtoConfig(endpoint=provider.endpoint, appId="spa-app"), storage=store)
    assert client.blocking.isAuthenticated() is False
    assert store.get("idToken") is None
    # Nothing reads or keeps them: they expire with their own ttl.
    assert all(0 < redis_client.ttl(f"logto:pre-upgrade:{key}") <= 3600 for key in KEYS)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_back_channel_stores_end_sessions_across_slots(cluster: Topology, kind: str) -> None:
    async def scenario() -> None:
        client: Any = sync_cluster(cluster) if kind == "sync" else async_cluster(cluster)
        index = RedisSessionIndex(client, "web-app")
        sessions = [f"session-{n}" for n in range(6)]
        assert len(cluster.slots([session_key("logto:", s, "idToken").encode() for s in sessions])) > 1
        for n, session in enumerate(sessions):
            cluster.client().set(session_key("logto:", session, "idToken"), "a token")
            await done(index.record({"sub": "user-alice", "sid": f"sid-{n % 2}", "iat": 1_000}, session))
        # One sid: its sessions end, the others live on.
        assert await done(index.end(LogoutToken(sub="user-alice", sid="sid-0", iat=1_000, exp=1_300))) == 3
        alive = [s for s in sessions if cluster.client().exists(session_key("logto:", s, "idToken"))]
        assert alive == sessions[1::2]
        assert all(cluster.client().exists(tombstone("logto:", s)) for s in sessions[0::2])
        # A tombstoned session refuses token writes, whichever slot it lives in.
        ended = RedisStorage(sync_cluster(cluster), SessionIds(sessions[0]))
        ended.set("refreshToken", "late")
        assert ended.get("refreshToken") is None
        # The user: every remaining session.
        assert await done(index.end(LogoutToken(sub="user-alice", sid=None, iat=1_000, exp=1_300))) == 3
        assert cluster.keys("logto:*:idToken") == []
        # Revocations and the replay store.
        revocations = RedisRevocations(client, "web-app")
        await done(revocations.end(LogoutToken(sub="user-bob", sid=None, iat=2_000, exp=2_300)))
        assert await done(revocations.is_ended({"sub": "user-bob", "sid": "sid-8", "iat": 1_999}))
        assert not await done(revocations.is_ended({"sub": "user-carol", "sid": "sid-7", "iat": 1_999}))
        replays = RedisReplayStore(client)
        assert await done(replays.claim("jti-1", 60)) is True
        assert await done(replays.claim("jti-1", 60)) is False

    asyncio.run(scenario())


def test_an_async_client_factory_excludes_url_and_arguments() -> None:
    with pytest.raises(LogtoConfigError, match="client_factory") as refused:
        AsyncRedisClient("redis://127.0.0.1:1/0", client_factory=lambda: None)
    assert refused.value.code == "config.invalid"


def test_a_rotation_gives_up_on_a_lock_held_past_its_wait_and_moves_nothing(
    cluster: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logto_rs.redis_storage

    monkeypatch.setattr(logto_rs.redis_storage, "ROTATION_WAIT", 0.3)
    ids = SessionIds("held-id")
    store = RedisStorage(sync_cluster(cluster), ids)
    store.set("refreshToken", "a token")
    assert store.lock(REFRESH_LOCK, 30)  # a holder that never lets go (until its ttl)
    with pytest.raises(LogtoStorageError, match="still held") as refused:
        store.rotate()
    assert refused.value.code == "storage.error"
    assert ids.sid == "held-id" and store.get("refreshToken") == "a token"
