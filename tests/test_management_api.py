"""A user's personal access tokens through the Management API: list, create, rename, delete.

Called with the machine-to-machine app's Management API token; Logto's `{code, message}` errors
become typed exceptions. Every test deletes what it creates (the provider lives for the run).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from conftest import ClientFactory, run
from logto_rs import (
    BlockingManagementApi,
    LogtoApiAuthError,
    LogtoApiConflictError,
    LogtoApiError,
    LogtoApiInvalidInputError,
    LogtoApiNotFoundError,
    LogtoConfig,
    LogtoConfigError,
    LogtoInvalidGrantError,
    LogtoM2MClient,
    LogtoM2MConfig,
    ManagementApi,
    PersonalAccessToken,
    exchange_personal_access_token_blocking,
)
from provider_harness import Provider, decode_jwt

API = "https://api.example.com"
PATS = "/api/users/user-alice/personal-access-tokens"


@pytest.fixture
def m2m(provider: Provider) -> LogtoM2MClient:
    return LogtoM2MClient(
        LogtoM2MConfig(endpoint=provider.endpoint, appId="m2m-app", appSecret="m2m-app-secret")
    )


@pytest.fixture
def api(m2m: LogtoM2MClient) -> ManagementApi:
    return m2m.managementApi


@pytest.fixture
def name(api: ManagementApi) -> Iterator[str]:
    """A fresh token name for alice; whatever token ends up with it is deleted afterwards."""
    fresh = f"test-{uuid.uuid4().hex[:12]}"
    yield fresh
    blocking = api.blocking
    for token in blocking.listPersonalAccessTokens("user-alice"):
        if token.name.startswith(fresh):
            blocking.deletePersonalAccessToken("user-alice", token.name)


def test_list_gives_typed_tokens_with_hidden_values(provider: Provider, api: ManagementApi) -> None:
    tokens = {token.name: token for token in run(api.listPersonalAccessTokens("user-alice"))}
    ci, expired = tokens["ci-token"], tokens["expired-token"]
    assert isinstance(ci, PersonalAccessToken)
    assert ci.userId == "user-alice" and ci.value == "pat_alice_ci_0123456789abcdefABCDEF"
    assert ci.createdAt == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)  # epoch ms 1700000000000
    assert ci.expiresAt is None and not ci.expired
    assert expired.expiresAt == datetime(2023, 11, 14, 22, 19, 20, tzinfo=timezone.utc) and expired.expired
    for token in tokens.values():
        assert token.value not in repr(token) and token.value not in str(token)
    [request] = provider.requests(path=PATS)
    assert request["method"] == "GET" and request["authorization"]["scheme"] == "bearer"


def test_create_exchange_rename_delete_then_exchange_fails(
    provider: Provider, api: ManagementApi, make_client: ClientFactory, name: str
) -> None:
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    created = run(api.createPersonalAccessToken("user-alice", name, expires))
    assert created.name == name and created.userId == "user-alice"
    assert created.value.startswith("pat_") and created.expiresAt == expires
    assert created.value not in repr(created)
    [request] = provider.requests(path=PATS, method="POST")
    assert request["form"] == {"name": name, "expiresAt": int(expires.timestamp() * 1000)}
    assert request["status"] == 201

    client = make_client()
    exchanged = run(client.exchangePersonalAccessToken(created.value, API, ["read:products"]))
    assert decode_jwt(exchanged.accessToken)[1]["sub"] == "user-alice"

    renamed = run(api.renamePersonalAccessToken("user-alice", name, f"{name}-renamed"))
    assert renamed.name == f"{name}-renamed" and renamed.value == created.value
    [patch] = provider.requests(path=PATS, method="PATCH")
    assert patch["form"] == {"name": f"{name}-renamed", "currentName": name}
    # Renaming does not revoke it.
    config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
    assert exchange_personal_access_token_blocking(config, created.value).accessToken

    assert run(api.deletePersonalAccessToken("user-alice", f"{name}-renamed")) is None
    [delete] = provider.requests(path=PATS + "/delete")
    assert delete["form"] == {"name": f"{name}-renamed"} and delete["status"] == 204
    names = [token.name for token in run(api.listPersonalAccessTokens("user-alice"))]
    assert name not in names and f"{name}-renamed" not in names

    # Revoked: the exchange fails (a token exchanged before stays cached in its client until it
    # expires, as it stays valid at the APIs).
    with pytest.raises(LogtoInvalidGrantError) as caught:
        exchange_personal_access_token_blocking(config, created.value, resource=API)
    assert caught.value.code == "oauth.invalid_grant"
    assert run(client.exchangePersonalAccessToken(created.value, API, ["read:products"])) == exchanged


def test_create_without_expiry_and_with_a_delay(api: ManagementApi, name: str) -> None:
    blocking = api.blocking
    assert isinstance(blocking, BlockingManagementApi)
    never = blocking.createPersonalAccessToken("user-alice", name)
    assert never.expiresAt is None
    later = blocking.createPersonalAccessToken("user-alice", f"{name}-later", timedelta(hours=2))
    assert later.expiresAt is not None
    assert timedelta(hours=1, minutes=59) < later.expiresAt - datetime.now(timezone.utc) <= timedelta(hours=2)
    assert never.value != later.value


def test_a_duplicate_name_is_a_conflict(api: ManagementApi, name: str) -> None:
    run(api.createPersonalAccessToken("user-alice", name))
    with pytest.raises(LogtoApiConflictError) as caught:
        run(api.createPersonalAccessToken("user-alice", name))
    error = caught.value
    assert isinstance(error, LogtoApiError)
    assert (error.status, error.code) == (422, "api.entity.unique_integrity_violation")
    assert error.error == "entity.unique_integrity_violation" and error.description
    run(api.createPersonalAccessToken("user-alice", f"{name}-2"))
    with pytest.raises(LogtoApiConflictError):
        run(api.renamePersonalAccessToken("user-alice", f"{name}-2", name))


def test_an_expiry_in_the_past_is_invalid_input(api: ManagementApi, name: str) -> None:
    with pytest.raises(LogtoApiInvalidInputError) as caught:
        run(
            api.createPersonalAccessToken(
                "user-alice", name, datetime.now(timezone.utc) - timedelta(minutes=1)
            )
        )
    assert (caught.value.status, caught.value.code) == (400, "api.request.invalid_input")


def test_unknown_user_or_token_is_not_found(api: ManagementApi) -> None:
    with pytest.raises(LogtoApiNotFoundError) as user:
        run(api.listPersonalAccessTokens("user-nobody"))
    assert (user.value.status, user.value.code) == (404, "api.entity.not_exists_with_id")
    # The user id is one path segment: it cannot reach another route.
    with pytest.raises(LogtoApiNotFoundError) as traversal:
        api.blocking.listPersonalAccessTokens("../users/user-alice")
    assert traversal.value.code == "api.entity.not_exists_with_id"
    for call in (
        lambda: api.blocking.renamePersonalAccessToken("user-alice", "no-such-token", "x"),
        lambda: api.blocking.deletePersonalAccessToken("user-alice", "no-such-token"),
    ):
        with pytest.raises(LogtoApiNotFoundError) as token:
            call()
        assert (token.value.status, token.value.code) == (404, "api.entity.not_found")
    for refused in ("", ".", ".."):
        with pytest.raises(LogtoConfigError):
            api.blocking.listPersonalAccessTokens(refused)


def test_an_app_without_management_api_access_is_refused(provider: Provider) -> None:
    limited = LogtoM2MClient(
        LogtoM2MConfig(endpoint=provider.endpoint, appId="m2m-limited", appSecret="m2m-limited-secret")
    )
    with pytest.raises(LogtoApiAuthError) as caught:
        limited.blocking.managementApi.listPersonalAccessTokens("user-alice")
    assert (caught.value.status, caught.value.code) == (403, "api.auth.forbidden")


def test_one_management_token_serves_every_call(provider: Provider, m2m: LogtoM2MClient) -> None:
    api = ManagementApi(m2m)  # shares the client's token cache
    run(api.listPersonalAccessTokens("user-alice"))
    m2m.blocking.managementApi.listPersonalAccessTokens("user-bob")
    run(m2m.getManagementApiToken())
    assert len(provider.requests(path="/oidc/token", grant_type="client_credentials")) == 1
    tokens = {
        entry["authorization"]["token"]
        for entry in provider.requests(method="GET")
        if "/api/" in entry["path"]
    }
    assert len(tokens) == 1
    assert repr(api) == "ManagementApi(resource='https://default.logto.app/api')"
