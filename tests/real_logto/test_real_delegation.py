"""Service-to-service delegation against the real Logto: an API that received alice's access
token exchanges it for a token to another API or an organization, for alice, with the scopes her
roles allow.

Where discovery advertises the device flow (the Logto 1.38+ generation, which brought delegation
too; nothing in discovery names delegation itself): by the provisioned machine-to-machine
`service` app and by the `web` app, cached per subject token and target, with typed refusals,
organization-scoped, and refused for a non-member. Where it does not (1.37.1), a user's access
token is refused as a subject token.
"""

from __future__ import annotations

import asyncio

import pytest

from conftest import DEVICE_FLOW, RealLogto, config_for, jwt_parts, sign_in
from logto_rs import (
    AccessTokenVerifier,
    LogtoClient,
    LogtoConfig,
    LogtoGrantNotAllowedError,
    LogtoInvalidGrantError,
    LogtoM2MClient,
    LogtoM2MConfig,
    LogtoOAuthError,
    MemoryStorage,
)

run = asyncio.run
advertised = pytest.mark.advertises(DEVICE_FLOW)


@pytest.fixture(scope="module")
def subjects(logto: RealLogto) -> dict[str, str]:
    """alice's and bob's access tokens to our API, signed in once for the module."""

    def token(username: str) -> str:
        client = LogtoClient(config_for(logto, "web"), storage=MemoryStorage())
        run(sign_in(client, logto, username))
        value = client.blocking.getAccessToken(logto.resource)
        assert value
        return value

    return {"alice": token("alice"), "bob": token("bob")}


def service_client(logto: RealLogto) -> LogtoM2MClient:
    assert logto.service is not None, "provision.py makes the `service` app where delegation exists"
    return LogtoM2MClient(
        LogtoM2MConfig(endpoint=logto.endpoint, appId=logto.service[0], appSecret=logto.service[1])
    )


def web_client(logto: RealLogto) -> LogtoClient:
    return LogtoClient(LogtoConfig(endpoint=logto.endpoint, appId=logto.web[0], appSecret=logto.web[1]))


@advertised
@pytest.mark.parametrize("app", ["service", "web"], ids=["by-an-m2m-app", "by-a-web-app"])
def test_delegation_gives_the_user_a_downstream_token_with_the_scopes_their_roles_allow(
    logto: RealLogto, subjects: dict[str, str], app: str
) -> None:
    client = service_client(logto) if app == "service" else web_client(logto)
    app_id = logto.service[0] if app == "service" and logto.service else logto.web[0]
    for_alice = client.blocking.exchangeAccessToken(subjects["alice"], logto.resource, ["read:products", "x"])
    for_bob = client.blocking.exchangeAccessToken(subjects["bob"], logto.resource, ["read:products"])
    assert for_alice.scopes == ["read:products"]  # alice's role
    assert for_bob.scopes == [] and jwt_parts(for_bob.accessToken)[1]["sub"] == logto.user_id("bob")
    claims = AccessTokenVerifier(logto.endpoint, logto.resource).blocking.verify(
        for_alice.accessToken, scopes=["read:products"]
    )
    assert claims.sub == logto.user_id("alice") and claims.client_id == app_id

    # Cached per subject token and target: asked again, in another form or from the async twin,
    # the same token comes back (Logto mints a new one, with a new jti, for every exchange).
    again = client.blocking.exchangeAccessToken(subjects["alice"], logto.resource, "x read:products")
    async_twin = run(client.exchangeAccessToken(subjects["alice"], logto.resource, ["read:products", "x"]))
    assert again.accessToken == async_twin.accessToken == for_alice.accessToken
    other_target = client.blocking.exchangeAccessToken(
        subjects["alice"], logto.short_resource, ["read:short"]
    )
    assert other_target.scopes == ["read:short"] and other_target.accessToken != for_alice.accessToken


@advertised
def test_delegation_to_an_organization_and_refused_for_a_non_member(
    logto: RealLogto, subjects: dict[str, str]
) -> None:
    service = service_client(logto)
    organization = service.blocking.exchangeAccessToken(
        subjects["alice"], organizationId=logto.organization_id, scopes=["read:members", "x"]
    )
    claims = jwt_parts(organization.accessToken)[1]
    assert claims["aud"] == f"urn:logto:organization:{logto.organization_id}"
    assert claims["sub"] == logto.user_id("alice") and organization.scopes == ["read:members"]
    scoped = service.blocking.exchangeAccessToken(
        subjects["alice"], logto.resource, ["read:products"], organizationId=logto.organization_id
    )
    scoped_claims = jwt_parts(scoped.accessToken)[1]
    assert (
        scoped_claims["organization_id"] == logto.organization_id and scoped_claims["aud"] == logto.resource
    )
    for call in (
        lambda: service.blocking.exchangeAccessToken(
            subjects["bob"], organizationId=logto.organization_id, scopes=["read:members"]
        ),
        lambda: web_client(logto).blocking.exchangeAccessToken(
            subjects["bob"], logto.resource, ["read:products"], organizationId=logto.organization_id
        ),
    ):
        with pytest.raises(LogtoOAuthError) as refused:
            call()
        assert (refused.value.status, refused.value.code) == (403, "oauth.access_denied")


@advertised
def test_delegation_refusals_are_typed(
    logto: RealLogto, subjects: dict[str, str], m2m: LogtoM2MClient
) -> None:
    alice = subjects["alice"]
    app_id, secret = logto.web_no_exchange
    no_exchange = LogtoClient(LogtoConfig(endpoint=logto.endpoint, appId=app_id, appSecret=secret))
    for _ in range(2):  # a refusal is not cached
        with pytest.raises(LogtoGrantNotAllowedError) as not_allowed:
            no_exchange.blocking.exchangeAccessToken(alice, logto.short_resource, ["read:short"])
        assert not_allowed.value.code == "token_exchange.not_allowed"
        assert alice not in str(not_allowed.value) and alice not in repr(not_allowed.value)
    # The m2m app has no token exchange allowed: Logto refuses the request itself.
    with pytest.raises(LogtoOAuthError) as m2m_refused:
        m2m.blocking.exchangeAccessToken(alice, logto.short_resource, ["read:short"])
    assert m2m_refused.value.status == 400 and not isinstance(m2m_refused.value, LogtoInvalidGrantError)
    header, payload, signature = alice.split(".")
    for subject in (f"{header}.{payload}.{signature[::-1]}", "not-a-token"):
        with pytest.raises(LogtoInvalidGrantError) as invalid:
            service_client(logto).blocking.exchangeAccessToken(subject, logto.short_resource, ["read:short"])
        assert (invalid.value.code, invalid.value.status) == ("oauth.invalid_grant", 400)
        assert subject not in str(invalid.value)


@pytest.mark.lacks(DEVICE_FLOW)
def test_a_logto_without_delegation_refuses_a_user_access_token(
    logto: RealLogto, subjects: dict[str, str]
) -> None:
    with pytest.raises(LogtoInvalidGrantError):
        web_client(logto).blocking.exchangeAccessToken(subjects["alice"], logto.resource, ["read:products"])
