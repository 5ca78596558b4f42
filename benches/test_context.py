"""getContext against the calls it replaces, with a warm session, in one run.

The session holds an ID token naming two organizations and a fresh token for each of two
resources and each organization. ``getContext(access_tokens=True, organization_tokens=True)``
replaces ``getIdTokenClaims``, ``getAccessToken`` per resource and ``getOrganizationToken`` per
organization. Each round makes 1,000 of either; the time per call is the round time / 1,000. The plain dict
storage hands back the same strings (both paths then reuse what they found last time); the
copying one hands back new ones on every read.
Run with ``bash .ci/bench test_context.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest
from test_per_request import id_token

import logto_rs
from bench_support import EXPIRES_AT, DictStorage, fake_jwt

CALLS = 1000
RESOURCES = ["https://api.example.com", "https://other.example.com"]
ORGANIZATIONS = ["org-acme", "org-globex"]  # the ID token's `organizations`


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


class CopyingStorage(DictStorage):
    """A storage that hands back a new string on every read, as one decoding a cookie or
    reading Redis does: no memo keyed by the stored object can help."""

    def get(self, key: str) -> Optional[str]:
        value = super().get(key)
        return None if value is None else value[:1] + value[1:]


def warm_client(storage: Optional[DictStorage] = None) -> logto_rs.LogtoClient:
    storage = storage or DictStorage()
    storage.set("idToken", id_token())
    keys = RESOURCES + [f"urn:logto:organization:{org}" for org in ORGANIZATIONS]
    tokens = {key: {"token": fake_jwt(key), "scope": "", "expiresAt": EXPIRES_AT} for key in keys}
    storage.set("accessTokenMap", json.dumps(tokens))
    config = logto_rs.LogtoConfig(
        endpoint="https://t.logto.app",
        appId="app",
        appSecret="secret",
        scopes=[logto_rs.UserInfoScope.organizations],
        resources=RESOURCES,
    )
    return logto_rs.LogtoClient(config, storage=storage)  # type: ignore[arg-type]


async def separate_calls(client: logto_rs.LogtoClient) -> None:
    claims = client.getIdTokenClaims()
    for resource in RESOURCES:
        assert await client.getAccessToken(resource)
    for organization in claims.organizations or []:
        assert await client.getOrganizationToken(organization)


async def one_context(client: logto_rs.LogtoClient) -> None:
    context = await client.getContext(access_tokens=True, organization_tokens=True)
    assert len(context.access_tokens) == 2 and len(context.organization_tokens) == 2


def batch(call: Callable[[logto_rs.LogtoClient], Any], client: logto_rs.LogtoClient) -> Callable[[], Any]:
    async def run() -> None:
        for _ in range(CALLS):
            await call(client)

    return run


@pytest.mark.benchmark(group="a warm session's claims and 4 tokens (x1000, awaited)")
def test_the_separate_calls(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    run = batch(separate_calls, warm_client())
    benchmark(lambda: loop.run_until_complete(run()))


@pytest.mark.benchmark(group="a warm session's claims and 4 tokens (x1000, awaited)")
def test_get_context(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    run = batch(one_context, warm_client())
    benchmark(lambda: loop.run_until_complete(run()))


@pytest.mark.benchmark(group="a warm session's claims and 4 tokens (x1000, blocking)")
def test_the_separate_calls_blocking(benchmark: Any) -> None:
    client = warm_client().blocking

    def run() -> None:
        for _ in range(CALLS):
            claims = client.getIdTokenClaims()
            for resource in RESOURCES:
                assert client.getAccessToken(resource)
            for organization in claims.organizations or []:
                assert client.getOrganizationToken(organization)

    benchmark(run)


@pytest.mark.benchmark(group="a warm session's claims and 4 tokens (x1000, blocking)")
def test_get_context_blocking(benchmark: Any) -> None:
    client = warm_client().blocking

    def run() -> None:
        for _ in range(CALLS):
            context = client.getContext(access_tokens=True, organization_tokens=True)
            assert len(context.access_tokens) == 2 and len(context.organization_tokens) == 2

    benchmark(run)


@pytest.mark.benchmark(group="the same, from a storage that returns new strings (x1000, awaited)")
def test_the_separate_calls_new_strings(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    run = batch(separate_calls, warm_client(CopyingStorage()))
    benchmark(lambda: loop.run_until_complete(run()))


@pytest.mark.benchmark(group="the same, from a storage that returns new strings (x1000, awaited)")
def test_get_context_new_strings(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    run = batch(one_context, warm_client(CopyingStorage()))
    benchmark(lambda: loop.run_until_complete(run()))
