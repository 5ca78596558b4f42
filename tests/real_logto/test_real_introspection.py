"""Opaque access tokens of the real Logto (issued when no API resource is asked for),
verified by introspection with the `web` app's credentials."""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest

from conftest import ClientFactory, CoreLog, RealLogto, sign_in
from logto_rs import AccessTokenVerifier, LogtoAccessTokenError, LogtoInvalidTokenError

INTROSPECTION = "/oidc/token/introspection"


@pytest.fixture
def opaque(logto: RealLogto, make_client: ClientFactory) -> str:
    client = make_client("web", scopes=["email"], resources=[])
    asyncio.run(sign_in(client, logto))
    token = client.blocking.getAccessToken()
    assert token and token.count(".") != 2, "Logto issues an opaque token for no resource"
    return token


def test_an_opaque_token_is_verified_by_introspection(
    logto: RealLogto, opaque: str, core_log: Callable[[], CoreLog]
) -> None:
    verifier = AccessTokenVerifier(logto.endpoint, logto.resource, introspectWith=logto.web).blocking
    log = core_log()
    claims = verifier.verify(opaque)
    assert (claims.sub, claims.aud, claims.client_id) == (logto.user_id("alice"), [], logto.web[0])
    assert claims.iss == logto.issuer and "email" in claims.scopes
    assert verifier.verify(opaque, scopes=["openid"]).sub == claims.sub  # from the cache
    with pytest.raises(LogtoAccessTokenError) as caught:
        verifier.verify(opaque, scopes=["read:products"])
    assert (caught.value.status, caught.value.check) == (403, "scope")
    assert log.count("POST", INTROSPECTION) == 1
    with pytest.raises(LogtoInvalidTokenError) as caught:
        verifier.verify("not-an-issued-token-0123456789")
    assert (caught.value.status, caught.value.check) == (401, "active")


def test_an_opaque_token_of_another_app_is_refused_unless_its_app_is_accepted(
    logto: RealLogto, make_client: ClientFactory, opaque: str
) -> None:
    other = make_client("native", scopes=["email"], resources=[])  # another app of the tenant
    asyncio.run(sign_in(other, logto))
    foreign = other.blocking.getAccessToken()
    assert foreign and foreign.count(".") != 2
    verifier = AccessTokenVerifier(logto.endpoint, logto.resource, introspectWith=logto.web).blocking
    with pytest.raises(LogtoInvalidTokenError) as caught:
        verifier.verify(foreign)
    assert (caught.value.status, caught.value.check) == (401, "client_id")
    assert verifier.verify(opaque).client_id == logto.web[0]
    accepting = AccessTokenVerifier(
        logto.endpoint, logto.resource, introspectWith=logto.web, introspectionClients=[logto.native]
    ).blocking
    claims = accepting.verify(foreign)
    assert (claims.sub, claims.aud, claims.client_id) == (logto.user_id("alice"), [], logto.native)
    with pytest.raises(LogtoInvalidTokenError) as caught:
        accepting.verify(opaque)
    assert caught.value.check == "client_id"
