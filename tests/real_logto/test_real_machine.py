"""Machine tokens against the real Logto: LogtoM2MClient, the Management API's personal
access tokens, PAT exchange (allowed for `web`, refused for `web-no-exchange`),
AccessTokenVerifier on real user, organization and machine tokens, and the command line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from conftest import ClientFactory, RealLogto, jwt_parts, sign_in
from logto_rs import (
    AccessTokenVerifier,
    LogtoApiConflictError,
    LogtoApiInvalidInputError,
    LogtoApiNotFoundError,
    LogtoClient,
    LogtoConfig,
    LogtoGrantNotAllowedError,
    LogtoInsufficientScopeError,
    LogtoInvalidGrantError,
    LogtoInvalidTokenError,
    LogtoM2MClient,
    LogtoM2MConfig,
    LogtoOAuthError,
    MemoryStorage,
)

run = asyncio.run
EXCHANGED = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture
def pat(logto: RealLogto, m2m: LogtoM2MClient) -> Iterator[str]:
    """A fresh personal access token of alice (deleted afterwards)."""
    api = m2m.blocking.managementApi
    name = f"test-{uuid.uuid4().hex[:8]}"
    created = api.createPersonalAccessToken(logto.user_id("alice"), name, expiresAt=timedelta(hours=1))
    yield created.value
    api.deletePersonalAccessToken(logto.user_id("alice"), name)


def test_m2m_resource_management_api_and_organization_tokens(logto: RealLogto, m2m: LogtoM2MClient) -> None:
    async def journey() -> None:
        token = await m2m.getAccessToken(logto.resource, scopes=["read:products", "write:products"])
        header, claims = jwt_parts(token.accessToken)
        assert header["typ"] == "at+jwt"
        assert claims["aud"] == logto.resource and claims["sub"] == logto.m2m[0]
        assert token.scopes == ["read:products"]  # write:products is not in the app's role
        assert token.tokenType == "Bearer" and token.expiresAt > datetime.now(timezone.utc)
        assert (await m2m.getAccessToken(logto.resource, scopes=["read:products", "write:products"])) == token

        admin = await m2m.getManagementApiToken()
        assert m2m.managementApiResource == logto.management_api
        assert jwt_parts(admin.accessToken)[1]["aud"] == logto.management_api and admin.scopes == ["all"]

        org = await m2m.getAccessToken(organizationId=logto.organization_id, scopes=["read:members"])
        assert jwt_parts(org.accessToken)[1]["aud"] == f"urn:logto:organization:{logto.organization_id}"
        assert org.scopes == ["read:members"]

        with pytest.raises(LogtoOAuthError) as refused:
            await m2m.getAccessToken("https://unknown.example.com", scopes=["x"])
        assert refused.value.code == "oauth.invalid_target"

        wrong = LogtoM2MClient(LogtoM2MConfig(endpoint=logto.endpoint, appId=logto.m2m[0], appSecret="wrong"))
        with pytest.raises(LogtoOAuthError) as refused:
            await wrong.getAccessToken(logto.resource, scopes=["read:products"])
        assert refused.value.code == "oauth.invalid_client"

        web = LogtoM2MClient(
            LogtoM2MConfig(endpoint=logto.endpoint, appId=logto.web[0], appSecret=logto.web[1])
        )
        with pytest.raises(LogtoOAuthError) as refused:
            await web.getAccessToken(logto.resource, scopes=["read:products"])
        assert isinstance(refused.value, LogtoGrantNotAllowedError) or refused.value.code.startswith("oauth.")

    run(journey())


def test_personal_access_token_lifecycle(logto: RealLogto, m2m: LogtoM2MClient) -> None:
    api = m2m.blocking.managementApi
    alice = logto.user_id("alice")
    name = f"ci-{uuid.uuid4().hex[:8]}"
    created = api.createPersonalAccessToken(alice, name, expiresAt=timedelta(days=1))
    try:
        assert created.value.startswith("pat_") and created.name == name and created.userId == alice
        assert created.value not in repr(created)
        assert created.expiresAt is not None and created.expiresAt > datetime.now(timezone.utc)
        listed = {t.name: t for t in api.listPersonalAccessTokens(alice)}
        assert listed[name].createdAt == created.createdAt
        with pytest.raises(LogtoApiConflictError):
            api.createPersonalAccessToken(alice, name)
        with pytest.raises(LogtoApiInvalidInputError):
            api.createPersonalAccessToken(
                alice, name + "-past", expiresAt=datetime(2000, 1, 1, tzinfo=timezone.utc)
            )
        renamed = api.renamePersonalAccessToken(alice, name, name + "-2")
        assert renamed.name == name + "-2"
        name += "-2"
        assert name in {t.name for t in api.listPersonalAccessTokens(alice)}
    finally:
        api.deletePersonalAccessToken(alice, name)
    assert name not in {t.name for t in api.listPersonalAccessTokens(alice)}
    with pytest.raises(LogtoApiNotFoundError):
        api.deletePersonalAccessToken(alice, name)
    with pytest.raises(LogtoApiNotFoundError):
        api.listPersonalAccessTokens("no-such-user")


def test_pat_exchange_allowed_for_web(logto: RealLogto, pat: str) -> None:
    client = LogtoClient(LogtoConfig(endpoint=logto.endpoint, appId=logto.web[0], appSecret=logto.web[1]))

    async def journey() -> None:
        result = await client.exchangePersonalAccessToken(pat, logto.resource, ["read:products"])
        claims = jwt_parts(result.accessToken)[1]
        assert claims["sub"] == logto.user_id("alice") and claims["aud"] == logto.resource
        assert claims["client_id"] == logto.web[0]
        assert result.scopes == ["read:products"] and result.issuedTokenType == EXCHANGED
        # nothing is inherited: no scope asked, none granted
        bare = await client.exchangePersonalAccessToken(pat, logto.resource)
        assert bare.scopes == []
        org = await client.exchangePersonalAccessToken(pat, None, ["read:members"], logto.organization_id)
        assert jwt_parts(org.accessToken)[1]["aud"] == f"urn:logto:organization:{logto.organization_id}"
        with pytest.raises(LogtoInvalidGrantError):
            await client.exchangePersonalAccessToken("pat_" + "x" * 32, logto.resource)

    run(journey())


def test_pat_exchange_refused_for_web_no_exchange(logto: RealLogto, pat: str) -> None:
    app_id, secret = logto.web_no_exchange
    client = LogtoClient(LogtoConfig(endpoint=logto.endpoint, appId=app_id, appSecret=secret))
    with pytest.raises(LogtoGrantNotAllowedError) as refused:
        client.blocking.exchangePersonalAccessToken(pat, logto.resource, ["read:products"])
    assert refused.value.code == "token_exchange.not_allowed"
    assert "enable token exchange" in str(refused.value)


def test_verifier_on_user_organization_and_machine_tokens(
    logto: RealLogto, make_client: ClientFactory, m2m: LogtoM2MClient
) -> None:
    client = make_client("web", storage=MemoryStorage())
    run(sign_in(client, logto))
    user_token = run(client.getAccessToken(logto.resource)) or ""
    org_token = run(client.getOrganizationToken(logto.organization_id)) or ""
    machine_token = run(m2m.getAccessToken(logto.resource, scopes=["read:products"])).accessToken

    api = AccessTokenVerifier(logto.endpoint, logto.resource).blocking
    user = api.verify(user_token, scopes=["read:products"])
    assert user.sub == logto.user_id("alice") and user.client_id == logto.web[0]
    assert api.verify(machine_token, scopes=["read:products"]).sub == logto.m2m[0]
    with pytest.raises(LogtoInsufficientScopeError) as insufficient:
        api.verify(user_token, scopes=["write:products"])
    assert insufficient.value.status == 403 and "insufficient_scope" in (
        insufficient.value.www_authenticate or ""
    )
    with pytest.raises(LogtoInvalidTokenError) as wrong_audience:
        api.verify(org_token)
    assert wrong_audience.value.check == "aud" and wrong_audience.value.status == 401
    header, payload, signature = user_token.split(".")
    with pytest.raises(LogtoInvalidTokenError) as forged:
        api.verify(f"{header}.{payload}.{signature[::-1]}")
    assert forged.value.check == "signature"

    organizations = AccessTokenVerifier(logto.endpoint).blocking
    assert organizations.verify(org_token, organizationId=logto.organization_id).sub == logto.user_id("alice")
    with pytest.raises(LogtoInvalidTokenError) as other:
        organizations.verify(org_token, organizationId="another-organization")
    assert other.value.check in ("aud", "organization_id")
    results = api.verifyMany([user_token, machine_token, org_token])
    assert [type(r).__name__ for r in results] == [
        "AccessTokenClaims",
        "AccessTokenClaims",
        "LogtoInvalidTokenError",
    ]


# --- the command line ----------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOGTO_")}
    return subprocess.run(
        [sys.executable, "-m", "logto_rs", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
        check=False,
    )


def test_cli(logto: RealLogto, pat: str) -> None:
    m2m_env = {
        "LOGTO_ENDPOINT": logto.endpoint,
        "LOGTO_APP_ID": logto.m2m[0],
        "LOGTO_APP_SECRET": logto.m2m[1],
    }
    web_env = {
        "LOGTO_ENDPOINT": logto.endpoint,
        "LOGTO_APP_ID": logto.web[0],
        "LOGTO_APP_SECRET": logto.web[1],
    }
    secrets = [pat, logto.m2m[1], logto.web[1], logto.web_no_exchange[1]]

    admin = cli("m2m-token", "--management-api", env=m2m_env)
    assert admin.returncode == 0, admin.stderr
    assert jwt_parts(admin.stdout.strip())[1]["aud"] == logto.management_api

    product = cli(
        "--json", "m2m-token", "--resource", logto.resource, "--scope", "read:products", env=m2m_env
    )
    assert product.returncode == 0, product.stderr
    assert json.loads(product.stdout)["scopes"] == ["read:products"]

    exchanged = cli(
        "exchange",
        "--resource",
        logto.resource,
        "--scope",
        "read:products",
        env={**web_env, "LOGTO_PAT": pat},
    )
    assert exchanged.returncode == 0, exchanged.stderr
    assert jwt_parts(exchanged.stdout.strip())[1]["sub"] == logto.user_id("alice")
    stdin = cli("exchange", "--json", env=web_env, stdin=pat + "\n")
    assert stdin.returncode == 0 and json.loads(stdin.stdout)["issuedTokenType"] == EXCHANGED

    no_exchange = {
        **web_env,
        "LOGTO_APP_ID": logto.web_no_exchange[0],
        "LOGTO_APP_SECRET": logto.web_no_exchange[1],
    }
    refused = cli("exchange", env={**no_exchange, "LOGTO_PAT": pat})
    assert refused.returncode == 3 and "[token_exchange.not_allowed]" in refused.stderr
    bad = cli("exchange", env={**web_env, "LOGTO_PAT": "pat_" + "y" * 32})
    assert bad.returncode == 3 and "[oauth.invalid_grant]" in bad.stderr

    alice, name = logto.user_id("alice"), f"cli-{uuid.uuid4().hex[:8]}"
    created = cli("pat", "create", alice, name, "--expires-in", "1d", env=m2m_env)
    assert created.returncode == 0, created.stderr
    value = created.stdout.strip()
    assert value.startswith("pat_")
    listed = cli("pat", "list", alice, env=m2m_env)
    assert listed.returncode == 0 and name in listed.stdout and value not in listed.stdout
    assert cli("pat", "rename", alice, name, name + "-2", env=m2m_env).returncode == 0
    assert cli("pat", "delete", alice, name + "-2", env=m2m_env).returncode == 0
    gone = cli("pat", "delete", alice, name + "-2", env=m2m_env)
    assert gone.returncode == 3
    unreachable = cli(
        "m2m-token", "--management-api", env={**m2m_env, "LOGTO_ENDPOINT": "http://127.0.0.1:9"}
    )
    assert unreachable.returncode == 4

    for result in (admin, product, exchanged, stdin, refused, bad, listed, gone):
        for secret in secrets:
            assert secret not in result.stdout and secret not in result.stderr
