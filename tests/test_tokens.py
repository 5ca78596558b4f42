"""Access tokens, organization tokens and userinfo: cached, refreshed once, verified, blocking too."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest

from conftest import ClientFactory, run, sign_in, snapshot
from logto_rs import (
    LogtoClient,
    LogtoConfigError,
    LogtoException,
    LogtoInvalidGrantError,
    LogtoNotAuthenticatedError,
    LogtoOAuthError,
    LogtoTokenValidationError,
    MemoryStorage,
    UserInfoScope,
)
from provider_harness import Provider, decode_jwt

API = "https://api.example.com"
SHORT = "https://short.example.com"
ORGS = "urn:logto:scope:organizations"


def refreshes(provider: Provider) -> list[dict[str, Any]]:
    return provider.requests(path="/oidc/token", grant_type="refresh_token")


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def client(make_client: ClientFactory, storage: MemoryStorage) -> LogtoClient:
    """Alice, signed in with an API resource, the short-lived resource and organizations."""
    signed_in = make_client(
        storage,
        scopes=[
            "read:products",
            "write:products",
            "read:short",
            "read:members",
            ORGS,
            UserInfoScope.organization_roles,
        ],
        resources=[API, SHORT],
    )
    run(sign_in(signed_in))
    return signed_in


@pytest.fixture
def public_client(make_client: ClientFactory, storage: MemoryStorage) -> LogtoClient:
    """Alice in the public `spa-app`, whose refresh token rotates at every refresh (Logto's policy;
    the confidential `web-app` keeps its refresh token)."""
    signed_in = make_client(
        storage,
        appId="spa-app",
        appSecret=None,
        scopes=["read:products", "read:members", ORGS],
        resources=[API],
    )
    run(sign_in(signed_in))
    return signed_in


def test_access_token_for_a_resource_is_cached(provider: Provider, client: LogtoClient) -> None:
    token = run(client.getAccessToken(API))
    assert token
    header, claims = decode_jwt(token)
    assert header["typ"] == "at+jwt"
    assert claims["aud"] == API and claims["sub"] == "user-alice"
    assert set(claims["scope"].split()) == {"read:products", "write:products"}
    assert len(refreshes(provider)) == 1
    assert run(client.getAccessToken(API)) == token
    assert len(refreshes(provider)) == 1
    verified = run(client.getAccessTokenClaims(API, verify=True))
    assert verified.aud == API and "read:products" in verified.scopes


def test_expiry_then_refresh_stores_the_rotated_refresh_token(
    provider: Provider, make_client: ClientFactory, storage: MemoryStorage
) -> None:
    client = make_client(
        storage,
        appId="spa-app",
        appSecret=None,
        scopes=["read:short"],
        resources=[SHORT],
        accessTokenMargin=0,
    )
    run(sign_in(client))
    first_refresh_token = client.getRefreshToken()
    first = run(client.getAccessToken(SHORT))
    second_refresh_token = client.getRefreshToken()
    assert second_refresh_token != first_refresh_token  # rotated and stored
    assert run(client.getAccessToken(SHORT)) == first  # still valid: cached
    time.sleep(2.2)
    renewed = run(client.getAccessToken(SHORT))
    assert renewed and renewed != first
    assert client.getRefreshToken() not in (first_refresh_token, second_refresh_token)
    used = [entry["form"]["refresh_token"] for entry in refreshes(provider)]
    assert len(used) == 2 and len(set(used)) == 2  # never the same refresh token twice
    stored = json.loads(snapshot(storage)["accessTokenMap"])
    assert stored[SHORT]["token"] == renewed


def test_organization_token_for_a_member(
    provider: Provider, client: LogtoClient, storage: MemoryStorage
) -> None:
    token = run(client.getOrganizationToken("org-acme"))
    assert token
    claims = run(client.getOrganizationTokenClaims("org-acme", verify=True))
    assert claims.aud == "urn:logto:organization:org-acme"
    assert "read:members" in claims.scopes
    resource_token = run(client.getAccessToken(API))
    assert resource_token != token
    keys = set(json.loads(snapshot(storage)["accessTokenMap"]))
    assert {"urn:logto:organization:org-acme", API} <= keys
    assert run(client.getOrganizationToken("org-acme")) == token  # cached under its own key


def test_organization_token_for_a_non_member(client: LogtoClient, storage: MemoryStorage) -> None:
    before = snapshot(storage)
    with pytest.raises(LogtoOAuthError) as caught:
        run(client.getOrganizationToken("org-initech"))
    assert caught.value.status == 403 and caught.value.error == "access_denied"
    assert caught.value.code == "oauth.access_denied"
    assert json.loads(snapshot(storage)["accessTokenMap"]) == json.loads(before["accessTokenMap"])
    assert run(client.getAccessToken(API))  # the session still works


def test_organization_token_needs_the_organizations_scope(make_client: ClientFactory) -> None:
    client = make_client()
    run(sign_in(client))
    with pytest.raises(LogtoConfigError, match="urn:logto:scope:organizations"):
        run(client.getOrganizationToken("org-acme"))


def test_userinfo_has_logtos_fields(make_client: ClientFactory) -> None:
    scopes = [
        UserInfoScope.email,
        UserInfoScope.custom_data,
        UserInfoScope.identities,
        UserInfoScope.roles,
        UserInfoScope.organizations,
        UserInfoScope.organization_roles,
    ]
    client = make_client(scopes=scopes)
    run(sign_in(client))
    info = run(client.fetchUserInfo())
    assert info.sub == "user-alice"
    assert info.custom_data == {"plan": "pro", "preferences": {"theme": "dark"}}
    assert info.identities and info.identities["github"]["userId"] == "1001"
    assert info.sso_identities and info.sso_identities[0]["issuer"] == "https://sso.acme.example"
    assert info.roles == ["product-admin"]
    assert info.organizations and "org-acme" in info.organizations
    assert info.organization_data and {"id": "org-acme"}.items() <= info.organization_data[0].items()
    assert info.organization_roles and "org-acme:admin" in info.organization_roles
    dumped = json.loads(info.model_dump_json(exclude_unset=True))
    assert dumped["email"] == "alice@example.com"


def test_userinfo_subject_must_match_the_id_token(make_client: ClientFactory) -> None:
    alice_storage, bob_storage = MemoryStorage(), MemoryStorage()
    alice, bob = make_client(alice_storage), make_client(bob_storage)
    run(sign_in(alice))
    run(sign_in(bob, username="bob"))
    # A mixed-up session: Bob's ID token next to Alice's access and refresh tokens.
    alice_storage.set("idToken", bob_storage.get("idToken"))
    with pytest.raises(LogtoTokenValidationError) as caught:
        run(alice.fetchUserInfo())
    assert caught.value.check == "sub"


def test_invalid_grant_clears_the_session(
    provider: Provider, public_client: LogtoClient, storage: MemoryStorage
) -> None:
    # Someone else used the refresh token: with rotation, the client's copy is now consumed,
    # and presenting it again (past Logto's reuse leeway) makes the provider revoke the grant.
    client = public_client
    provider.set_refresh_token_reuse(0)
    response = httpx.post(
        provider.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "refresh_token": client.getRefreshToken(),
            "client_id": "spa-app",
        },
    )
    assert response.status_code == 200
    with pytest.raises(LogtoInvalidGrantError) as caught:
        run(client.getAccessToken(API))
    assert "sign in again" in str(caught.value)
    assert caught.value.error == "invalid_grant" and caught.value.status == 400
    assert snapshot(storage) == {}
    assert not client.isAuthenticated()
    assert run(client.getAccessToken(API)) is None


def test_not_signed_in(make_client: ClientFactory) -> None:
    client = make_client(resources=[API])
    assert run(client.getAccessToken(API)) is None
    with pytest.raises(LogtoNotAuthenticatedError):
        run(client.getAccessTokenClaims(API))
    with pytest.raises(LogtoNotAuthenticatedError):
        run(client.fetchUserInfo())


def test_the_opaque_token_has_no_claims(client: LogtoClient) -> None:
    assert run(client.getAccessToken(""))
    with pytest.raises(LogtoTokenValidationError) as caught:
        run(client.getAccessTokenClaims(""))
    assert caught.value.check == "malformed"


def test_fifty_concurrent_tasks_cause_one_refresh(provider: Provider, client: LogtoClient) -> None:
    async def fifty() -> list[str | None]:
        return await asyncio.gather(*(client.getAccessToken(API) for _ in range(50)))

    tokens = run(fifty())
    assert len(set(tokens)) == 1 and tokens[0]
    assert len(refreshes(provider)) == 1


def test_fifty_concurrent_threads_cause_one_refresh(provider: Provider, client: LogtoClient) -> None:
    blocking = client.blocking
    tokens: list[str | None] = []
    barrier = threading.Barrier(50)

    def call() -> None:
        barrier.wait()
        tokens.append(blocking.getAccessToken(API))

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 50 and len(set(tokens)) == 1 and tokens[0]
    assert len(refreshes(provider)) == 1


def test_concurrent_refreshes_of_different_tokens_never_reuse_a_rotated_refresh_token(
    provider: Provider, public_client: LogtoClient
) -> None:
    client = public_client
    provider.set_refresh_token_reuse(0)  # any reuse is caught

    async def mixed() -> list[str | None]:
        calls = [
            client.getAccessToken(API),
            client.getOrganizationToken("org-acme"),
            client.getAccessToken(""),
        ]
        return await asyncio.gather(*(calls * 10))

    tokens = run(mixed())
    assert all(tokens) and len(set(tokens)) <= 3
    used = [entry["form"]["refresh_token"] for entry in refreshes(provider)]
    assert len(used) == len(set(used)), "a rotated refresh token was presented twice"
    assert client.isAuthenticated()


def test_blocking_twins_outside_and_inside_a_running_loop(client: LogtoClient) -> None:
    blocking = client.blocking
    token = blocking.getAccessToken(API)
    assert token and blocking.getAccessTokenClaims(API).aud == API
    assert blocking.fetchUserInfo().sub == "user-alice"

    async def inside() -> tuple[str | None, str]:
        asyncio.get_running_loop()  # a loop is running in this thread
        return blocking.getOrganizationToken("org-acme"), blocking.fetchUserInfo().sub

    org_token, sub = run(inside())
    assert org_token and decode_jwt(org_token)[1]["aud"] == "urn:logto:organization:org-acme"
    assert sub == "user-alice"


def test_clear_access_token_and_all_tokens(
    provider: Provider, client: LogtoClient, storage: MemoryStorage
) -> None:
    run(client.getAccessToken(API))
    run(client.clearAccessToken())
    assert "accessTokenMap" not in snapshot(storage)
    assert client.getRefreshToken()
    assert run(client.getAccessToken(API))  # refreshed again
    assert len(refreshes(provider)) == 2
    run(client.clearAllTokens())
    assert snapshot(storage) == {}


def test_refresh_against_a_failing_token_endpoint(
    provider: Provider, client: LogtoClient, storage: MemoryStorage
) -> None:
    before = snapshot(storage)
    provider.fault("token", "html")
    with pytest.raises(LogtoException) as caught:
        run(client.getAccessToken(API))
    assert caught.value.code == "response.unexpected"
    assert snapshot(storage) == before
    assert run(client.getAccessToken(API))  # the refresh token was not consumed


def test_refreshes_reuse_one_pooled_connection(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client(scopes=["read:products", "read:short"], resources=[API, SHORT])
    run(sign_in(client))
    run(client.getAccessToken(API))
    run(client.getAccessToken(SHORT))
    run(client.getAccessToken(""))
    ports = {entry["remote_port"] for entry in provider.requests(path="/oidc/token")}
    assert len(ports) == 1, f"token requests used {len(ports)} connections"
