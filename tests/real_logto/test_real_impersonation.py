"""Impersonation against the real Logto: a subject token from the Management API, exchanged once
by `web`, verified, with an actor token naming who acts; refused for `web-no-exchange`.
(Delegation of a user's access token: test_real_delegation.py.)"""

from __future__ import annotations

import asyncio

import pytest

from conftest import ClientFactory, RealLogto, jwt_parts, sign_in
from logto_rs import (
    AccessTokenVerifier,
    LogtoApiNotFoundError,
    LogtoClient,
    LogtoConfig,
    LogtoGrantNotAllowedError,
    LogtoInvalidGrantError,
    LogtoM2MClient,
    MemoryStorage,
)

run = asyncio.run
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture
def web(logto: RealLogto) -> LogtoClient:
    return LogtoClient(LogtoConfig(endpoint=logto.endpoint, appId=logto.web[0], appSecret=logto.web[1]))


def test_impersonation_is_exchanged_once_and_verifies(
    logto: RealLogto, m2m: LogtoM2MClient, web: LogtoClient
) -> None:
    async def journey() -> None:
        created = await m2m.managementApi.createSubjectToken(logto.user_id("alice"), {"ticket": "T-42"})
        assert created.subjectToken.startswith("sub_") and created.expiresIn == 600
        result = await web.exchangeSubjectToken(
            created.subjectToken, logto.resource, ["read:products", "write:products"]
        )
        assert result.scopes == ["read:products"]  # alice's role
        claims = AccessTokenVerifier(logto.endpoint, logto.resource, allowImpersonation=True).blocking.verify(
            result.accessToken, scopes=["read:products"]
        )
        assert claims.sub == logto.user_id("alice") and claims.client_id == logto.web[0]
        assert "act" not in claims.model_dump(exclude_none=True)
        with pytest.raises(LogtoInvalidGrantError) as reused:
            await web.exchangeSubjectToken(created.subjectToken, logto.resource, ["read:products"])
        assert created.subjectToken not in str(reused.value)

    run(journey())


def test_an_actor_token_names_who_acts(
    logto: RealLogto, m2m: LogtoM2MClient, web: LogtoClient, make_client: ClientFactory
) -> None:
    support = make_client("web", storage=MemoryStorage())
    run(sign_in(support, logto, "bob"))
    actor = support.blocking.getAccessToken()  # opaque, with openid
    assert actor
    subject = m2m.blocking.managementApi.createSubjectToken(logto.user_id("alice")).subjectToken
    result = web.blocking.exchangeSubjectToken(subject, logto.resource, ["read:products"], actorToken=actor)
    claims = AccessTokenVerifier(logto.endpoint, logto.resource, allowImpersonation=True).blocking.verify(
        result.accessToken
    )
    assert (
        claims.sub == logto.user_id("alice")
        and claims.act is not None
        and claims.act.sub == logto.user_id("bob")
    )


def test_the_older_subject_token_type(logto: RealLogto, m2m: LogtoM2MClient, web: LogtoClient) -> None:
    subject = m2m.blocking.managementApi.createSubjectToken(logto.user_id("bob")).subjectToken
    result = web.blocking.exchangeSubjectToken(subject, logto.resource, subjectTokenType=ACCESS_TOKEN_TYPE)
    assert jwt_parts(result.accessToken)[1]["sub"] == logto.user_id("bob") and result.scopes == []


def test_refusals(logto: RealLogto, m2m: LogtoM2MClient, web: LogtoClient) -> None:
    subject = m2m.blocking.managementApi.createSubjectToken(logto.user_id("alice")).subjectToken
    app_id, secret = logto.web_no_exchange
    no_exchange = LogtoClient(LogtoConfig(endpoint=logto.endpoint, appId=app_id, appSecret=secret))
    with pytest.raises(LogtoGrantNotAllowedError) as refused:
        no_exchange.blocking.exchangeSubjectToken(subject, logto.resource)
    assert refused.value.code == "token_exchange.not_allowed"
    assert web.blocking.exchangeSubjectToken(subject, logto.resource).accessToken  # still unused
    with pytest.raises(LogtoApiNotFoundError):
        m2m.blocking.managementApi.createSubjectToken("no-such-user")
