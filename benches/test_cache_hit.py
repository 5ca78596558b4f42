"""getAccessToken cache hit: logto-rs vs the official logto==0.2.1, same storage, one run.

Each round awaits 1,000 cache hits inside one running event loop, so the per-call cost is the
round time / 1,000 for both SDKs alike. Run with `bash .ci/bench`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, Callable

import logto
import pytest

import logto_rs
from bench_support import API, EXPIRES_AT, RESOURCES, DictStorage, fake_jwt

CALLS = 1000


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def official_client() -> Any:
    storage = DictStorage()
    tokens = {r: {"token": fake_jwt(r), "expiresAt": EXPIRES_AT} for r in RESOURCES}
    storage.set("accessTokenMap", json.dumps({"x": tokens}))
    config = logto.LogtoConfig(endpoint="https://t.logto.app", appId="app", appSecret="secret")
    return logto.LogtoClient(config, storage=storage)


def logto_rs_client() -> logto_rs.LogtoClient:
    storage = DictStorage()
    tokens = {r: {"token": fake_jwt(r), "scope": "", "expiresAt": EXPIRES_AT} for r in RESOURCES}
    storage.set("accessTokenMap", json.dumps(tokens))
    config = logto_rs.LogtoConfig(endpoint="https://t.logto.app", appId="app", appSecret="secret")
    return logto_rs.LogtoClient(config, storage=storage)  # type: ignore[arg-type]


def batch(get: Callable[[str], Any]) -> Callable[[], Any]:
    async def run() -> None:
        for _ in range(CALLS):
            assert await get(API)

    return run


@pytest.mark.benchmark(group="getAccessToken cache hit (x1000, awaited)")
def test_official_logto_0_2_1(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    client = official_client()
    benchmark(lambda: loop.run_until_complete(batch(client.getAccessToken)()))


@pytest.mark.benchmark(group="getAccessToken cache hit (x1000, awaited)")
def test_logto_rs(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    client = logto_rs_client()
    benchmark(lambda: loop.run_until_complete(batch(client.getAccessToken)()))


@pytest.mark.benchmark(group="getAccessToken cache hit (x1000, blocking)")
def test_logto_rs_blocking(benchmark: Any) -> None:
    client = logto_rs_client().blocking

    def run() -> None:
        for _ in range(CALLS):
            assert client.getAccessToken(API)

    benchmark(run)
