"""getContext: the signed-in user's claims and tokens in one call, from one read of the session."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any, Optional

import httpx
import pytest

from conftest import ClientFactory, run, sign_in, snapshot
from logto_rs import LogtoClient, LogtoContext, MemoryStorage, Storage, UserInfoScope
from provider_harness import Provider, decode_jwt

API = "https://api.example.com"
SHORT = "https://short.example.com"  # its tokens live 2 s
REPORTS = "https://reports.example.com"
ORGS = "urn:logto:scope:organizations"
SCOPES = ["read:products", "read:reports", "read:members", ORGS]


def token_requests(provider: Provider) -> list[dict[str, Any]]:
    return provider.requests(path="/oidc/token", grant_type="refresh_token")


def tokens(context: LogtoContext) -> tuple[dict[str, str], dict[str, str]]:
    """A context's tokens (its claims may come from an ID token a refresh re-issued since)."""
    return context.access_tokens, context.organization_tokens


class CountingStorage(Storage):
    """A MemoryStorage that counts the reads of each key."""

    def __init__(self) -> None:
        self.memory = MemoryStorage()
        self.reads: Counter[str] = Counter()

    def get(self, key: str) -> Optional[str]:
        self.reads[key] += 1
        return self.memory.get(key)

    def set(self, key: str, value: Optional[str]) -> None:
        self.memory.set(key, value)

    def delete(self, key: str) -> None:
        self.memory.delete(key)


class AsyncCountingStorage(CountingStorage):
    """The same, with ``async def`` methods (the operation reads the session)."""

    async def get(self, key: str) -> Optional[str]:  # type: ignore[override]
        await asyncio.sleep(0)
        return super().get(key)

    async def set(self, key: str, value: Optional[str]) -> None:  # type: ignore[override]
        super().set(key, value)

    async def delete(self, key: str) -> None:  # type: ignore[override]
        super().delete(key)


@pytest.fixture
def storage() -> CountingStorage:
    return CountingStorage()


@pytest.fixture
def client(make_client: ClientFactory, storage: CountingStorage) -> LogtoClient:
    """Alice, signed in with two resources and the organizations scope (she is in org-acme)."""
    signed_in = make_client(storage, scopes=SCOPES, resources=[API, REPORTS])
    run(sign_in(signed_in))
    return signed_in


def test_signed_out_is_an_empty_context_without_an_error(make_client: ClientFactory) -> None:
    storage = CountingStorage()
    client = make_client(storage, scopes=SCOPES, resources=[API])
    context = run(client.getContext(fetch_user_info=True, access_tokens=True, organization_tokens=True))
    assert context == LogtoContext(is_authenticated=False)
    assert context.claims is None and context.user_info is None
    assert context.access_tokens == {} and context.organization_tokens == {}
    assert client.blocking.getContext(access_tokens=True) == context
    assert storage.reads == {"idToken": 2}  # nothing else is read for nobody


def test_signed_in_gives_the_id_token_claims(client: LogtoClient) -> None:
    context = run(client.getContext())
    assert context.is_authenticated
    assert context.claims == client.getIdTokenClaims()
    assert context.claims is not None and context.claims.sub == "user-alice"
    assert context.user_info is None
    assert context.access_tokens == {} and context.organization_tokens == {}


def test_access_and_organization_tokens(provider: Provider, client: LogtoClient) -> None:
    context = run(client.getContext(access_tokens=True, organization_tokens=True))
    # Every configured resource's, but the reserved organizations resource the scope added.
    assert {aud: decode_jwt(t)[1]["aud"] for aud, t in context.access_tokens.items()} == {
        API: API,
        REPORTS: REPORTS,
    }
    assert context.claims is not None and context.claims.organizations == ["org-acme", "org-globex"]
    assert {org: decode_jwt(t)[1]["aud"] for org, t in context.organization_tokens.items()} == {
        "org-acme": "urn:logto:organization:org-acme",
        "org-globex": "urn:logto:organization:org-globex",
    }
    assert len(token_requests(provider)) == 4  # one per token the session lacked
    # They are the session's tokens: the calls getContext replaces give the same ones, cached.
    assert run(client.getAccessToken(API)) == context.access_tokens[API]
    assert run(client.getOrganizationToken("org-acme")) == context.organization_tokens["org-acme"]
    assert tokens(run(client.getContext(access_tokens=True, organization_tokens=True))) == tokens(context)
    assert tokens(client.blocking.getContext(access_tokens=True, organization_tokens=True)) == tokens(context)
    assert len(token_requests(provider)) == 4


def test_organization_tokens_need_the_organizations_scope(make_client: ClientFactory) -> None:
    client = make_client(MemoryStorage(), scopes=["read:products"], resources=[API])
    run(sign_in(client))
    context = run(client.getContext(access_tokens=True, organization_tokens=True))
    assert set(context.access_tokens) == {API} and context.organization_tokens == {}


def test_user_info(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client(MemoryStorage(), scopes=[UserInfoScope.email, ORGS])
    run(sign_in(client))
    context = run(client.getContext(fetch_user_info=True))
    assert context.user_info is not None and context.user_info.sub == "user-alice"
    assert context.user_info.email == client.getIdTokenClaims().email
    assert client.blocking.getContext(fetch_user_info=True).user_info == context.user_info
    # The resource-less token the session got at sign-in serves both fetches.
    assert token_requests(provider) == []
    assert len(provider.requests(path="/oidc/me")) == 2


def test_an_expired_access_token_is_refreshed_once(provider: Provider, make_client: ClientFactory) -> None:
    storage = MemoryStorage()
    client = make_client(storage, scopes=["read:short"], resources=[SHORT], accessTokenMargin=0)
    run(sign_in(client))
    first = run(client.getContext(access_tokens=True)).access_tokens[SHORT]
    assert len(token_requests(provider)) == 1
    time.sleep(2.2)

    async def twenty() -> list[LogtoContext]:
        return await asyncio.gather(*(client.getContext(access_tokens=True) for _ in range(20)))

    renewed = {context.access_tokens[SHORT] for context in run(twenty())}
    assert len(renewed) == 1 and first not in renewed
    assert len(token_requests(provider)) == 2  # the twenty callers shared one refresh


def test_one_read_of_the_session_per_call(client: LogtoClient, storage: CountingStorage) -> None:
    run(client.getContext(access_tokens=True, organization_tokens=True))  # warm the session
    storage.reads.clear()
    context = run(client.getContext(access_tokens=True, organization_tokens=True))
    assert len(context.access_tokens) == 2 and len(context.organization_tokens) == 2
    assert storage.reads == {"idToken": 1, "accessTokenMap": 1}
    storage.reads.clear()
    client.blocking.getContext(access_tokens=True, organization_tokens=True)
    assert storage.reads == {"idToken": 1, "accessTokenMap": 1}


def test_one_read_of_an_async_session_per_call(provider: Provider, make_client: ClientFactory) -> None:
    storage = AsyncCountingStorage()
    client = make_client(storage, scopes=SCOPES, resources=[API, REPORTS])
    run(sign_in(client))
    cold = run(client.getContext(access_tokens=True, organization_tokens=True))
    storage.reads.clear()
    warm = run(client.getContext(access_tokens=True, organization_tokens=True))
    assert (
        tokens(warm) == tokens(cold) and len(warm.access_tokens) == 2 and len(warm.organization_tokens) == 2
    )
    assert storage.reads == {"idToken": 1, "accessTokenMap": 1}
    assert len(token_requests(provider)) == 4


def test_a_rejected_refresh_gives_the_signed_out_context(
    provider: Provider, make_client: ClientFactory
) -> None:
    storage = MemoryStorage()
    client = make_client(storage, appId="spa-app", appSecret=None, scopes=["read:products"], resources=[API])
    run(sign_in(client))
    provider.set_refresh_token_reuse(0)
    # Someone else used the rotating refresh token: presenting it again is refused.
    response = httpx.post(
        provider.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "refresh_token": client.getRefreshToken(),
            "client_id": "spa-app",
        },
    )
    assert response.status_code == 200
    assert run(client.getContext(access_tokens=True)) == LogtoContext(is_authenticated=False)
    assert snapshot(storage) == {}


def test_tokens_stay_out_of_repr(client: LogtoClient) -> None:
    context = run(client.getContext(access_tokens=True, organization_tokens=True))
    shown = repr(context) + str(context)
    for token in [*context.access_tokens.values(), *context.organization_tokens.values()]:
        assert token not in shown
    assert "user-alice" in shown
