"""Sessions at scale on a real Redis Cluster (three masters, loopback): bytes of Redis per session,
the per-request latency with 1,000 and with 100,000 live sessions, and the refreshes per second
one session's lock sustains. Results: BENCHMARKS.md ("Sessions at scale").

A real session is signed in against the development provider (the public ``spa-app``), then
copied under random ids until the cluster holds the wanted number of live sessions. A request is
what an authenticated view costs the store: ``isAuthenticated`` and an ``getAccessToken`` cache
hit through ``RedisStorage`` (two ``GET`` of the session's slot).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from redis_topologies import SessionIds, Topology, redis_cluster  # noqa: E402

from logto_rs import LogtoClient, LogtoConfig  # noqa: E402
from logto_rs.redis_storage import RedisStorage, new_session_id, session_key  # noqa: E402
from provider_harness import Provider, complete_sign_in  # noqa: E402

API = "https://api.example.com"
SHORT = "https://short.example.com"
KEYS = ("idToken", "refreshToken", "accessTokenMap")
REDIRECT = "http://127.0.0.1/callback"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    server = Provider().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Topology]:
    with redis_cluster() as topology:
        yield topology


def signed_in(provider: Provider, client: Any, resources: list[str]) -> tuple[LogtoClient, SessionIds]:
    ids = SessionIds()
    config = LogtoConfig(endpoint=provider.endpoint, appId="spa-app", resources=resources)
    logto = LogtoClient(config, storage=RedisStorage(client, ids))
    url = logto.blocking.signIn(REDIRECT)
    logto.blocking.handleSignInCallback(complete_sign_in(url, REDIRECT))
    assert logto.blocking.getAccessToken(resources[0])
    return logto, ids


def fill(client: Any, sid: str, total: int) -> None:
    """Copy the session ``sid`` until the cluster holds ``total`` sessions."""
    values = [client.get(session_key("logto:", sid, key)) for key in KEYS]
    have = len(client.keys("logto:*:idToken", target_nodes=client.PRIMARIES))
    while have < total:
        pipe = client.pipeline(transaction=False)
        for _ in range(min(2000, total - have)):
            other = new_session_id()
            for key, value in zip(KEYS, values):
                pipe.set(session_key("logto:", other, key), value, ex=3600)
            have += 1
        pipe.execute()


def request_latency(logto: LogtoClient, rounds: int = 2000) -> tuple[float, float]:
    """Median and 99th percentile (µs) of one authenticated request's store reads."""
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        assert logto.blocking.isAuthenticated()
        assert logto.blocking.getAccessToken(API)
        times.append((time.perf_counter() - began) * 1e6)
    times.sort()
    return statistics.median(times), times[int(0.99 * len(times))]


def test_bytes_per_session_and_latency_with_1k_and_100k_sessions(
    provider: Provider, cluster: Topology
) -> None:
    client = cluster.client()
    logto, ids = signed_in(provider, client, [API])
    assert ids.sid
    sizes = {key: client.memory_usage(session_key("logto:", ids.sid, key)) for key in KEYS}
    values = {key: len(client.get(session_key("logto:", ids.sid, key))) for key in KEYS}
    print(f"\nbytes per session: {sum(sizes.values())} in Redis ({sizes}); values {values}")
    figures = {}
    for total in (1_000, 100_000):
        fill(client, ids.sid, total)
        used = sum(
            int(client.get_redis_connection(node).info("memory")["used_memory"])
            for node in client.get_primaries()
        )
        figures[total] = request_latency(logto)
        p50, p99 = figures[total]
        print(f"{total} sessions: used_memory {used / 1e6:.1f} MB; request p50/p99 {p50:.0f}/{p99:.0f} µs")
    # The session's keys are found by name in its own slot: the count of sessions must not show.
    assert figures[100_000][0] < 1.5 * figures[1_000][0], figures
    client.flushall(target_nodes=client.PRIMARIES)


def test_refreshes_per_second_through_one_session_lock(provider: Provider, cluster: Topology) -> None:
    client = cluster.client()
    logto, ids = signed_in(provider, client, [SHORT])
    provider.reset()
    seconds, done = 10.0, []

    def worker() -> None:
        bound = logto.withStorage(RedisStorage(client, SessionIds(ids.sid)))
        count = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            bound.blocking.clearAccessToken()
            assert bound.blocking.getAccessToken(SHORT)
            count += 1
        done.append(count)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refreshes = provider.requests(path="/oidc/token", grant_type="refresh_token")
    presented = [r["form"]["refresh_token"] for r in refreshes]
    print(
        f"\none session, 4 threads for {seconds:.0f} s: {len(refreshes) / seconds:.1f} refreshes/s "
        f"through the lock ({sum(done)} token requests answered)"
    )
    assert len(presented) == len(set(presented)), "a refresh token was presented twice"
