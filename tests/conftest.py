"""Shared fixtures: the Logto-compatible provider on 127.0.0.1, clients, storages."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Callable, Optional, TypeVar

import pytest
from redis_topologies import (
    Topology,
    free_ports,
    ping,
    redis_binary,
    redis_cluster,
    redis_sentinel,
    server_args,
    wait_until,
)

from logto_rs import LogtoClient, LogtoConfig, MemoryStorage, Storage
from provider_harness import Provider, complete_sign_in

T = TypeVar("T")

REDIRECT_URI = "http://127.0.0.1/callback"
POST_LOGOUT_URI = "http://127.0.0.1/signed-out"
WEB_APP = ("web-app", "web-app-secret")


@pytest.fixture(scope="session")
def provider() -> Iterator[Provider]:
    """One provider for the whole run (ES384, Logto's default)."""
    server = Provider().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _clean_provider(request: pytest.FixtureRequest) -> Iterator[None]:
    """Clear faults, ID-token mutations, the JWKS mode and the request log between tests.

    Also after each test, so a module-scoped fixture built before the next module's first test
    never meets a fault the previous module left armed.
    """
    if "provider" not in request.fixturenames:
        yield
        return
    provider: Provider = request.getfixturevalue("provider")
    provider.reset()
    yield
    provider.reset()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine on a fresh event loop."""
    return asyncio.run(coroutine)


ClientFactory = Callable[..., LogtoClient]


@pytest.fixture
def make_client(provider: Provider) -> ClientFactory:
    """Build a client for the seed's web app (override any config field by keyword)."""

    def factory(storage: Optional[Storage] = None, **overrides: Any) -> LogtoClient:
        fields: dict[str, Any] = {"endpoint": provider.endpoint, "appId": WEB_APP[0], "appSecret": WEB_APP[1]}
        fields.update(overrides)
        return LogtoClient(LogtoConfig(**fields), storage=storage if storage is not None else MemoryStorage())

    return factory


async def sign_in(client: LogtoClient, username: str = "alice") -> None:
    """The whole browser round trip: signIn → provider login/consent → handleSignInCallback."""
    url = await client.signIn(REDIRECT_URI)
    await client.handleSignInCallback(complete_sign_in(url, REDIRECT_URI, username=username))


def snapshot(storage: MemoryStorage) -> dict[str, str]:
    """A copy of everything a MemoryStorage holds."""
    return dict(storage._values)


@contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real redis-server on 127.0.0.1 (free port, no persistence): its URL and its process.

    The process is resumed (SIGCONT) before it is stopped, so a test may freeze it (SIGSTOP).
    """
    port = free_ports(1)[0]
    process = subprocess.Popen(
        [redis_binary(), *server_args(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: ping(url), f"redis-server on {port}", timeout=10)
        yield url, process
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def own_redis_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of the test's own (its URL and its process), which the test may freeze."""
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on 127.0.0.1 (free port, no persistence) for the whole run."""
    with redis_server() as (url, _process):
        yield url


@pytest.fixture(scope="session")
def redis_cluster_run() -> Iterator[Topology]:
    """A real Redis Cluster of three masters on loopback, for the whole run."""
    with redis_cluster() as cluster:
        yield cluster


@pytest.fixture
def cluster(redis_cluster_run: Topology) -> Topology:
    """The run's Redis Cluster, emptied first."""
    redis_cluster_run.flush()
    return redis_cluster_run


@pytest.fixture(scope="session")
def redis_sentinel_run() -> Iterator[Topology]:
    """A real Sentinel deployment (a master, a replica, three sentinels) for the whole run."""
    with redis_sentinel() as sentinel:
        yield sentinel


@pytest.fixture
def sentinel(redis_sentinel_run: Topology) -> Topology:
    """The run's Sentinel deployment, emptied first."""
    redis_sentinel_run.flush()
    return redis_sentinel_run


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    """A client of the run's redis-server, emptied first."""
    import redis

    client = redis.Redis.from_url(url=redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    """A fresh headless Chromium (the browser journeys in tests/e2e; selenium is imported here,
    so the suites that do not drive a browser do not need it)."""
    from e2e_support import chromium

    with chromium() as driver:
        yield driver
