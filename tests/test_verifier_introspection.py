"""Opaque access tokens (issued for no API resource) verified by introspection at the provider."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from test_verifier import API

from conftest import WEB_APP, ClientFactory, run, sign_in
from logto_rs import (
    BlockingAccessTokenVerifier,
    LogtoAccessTokenError,
    LogtoConfigError,
    LogtoException,
    LogtoInvalidTokenError,
    MemoryStorage,
)
from provider_harness import Provider

INTROSPECTION = "/oidc/token/introspection"


@pytest.fixture
def opaque(provider: Provider, make_client: ClientFactory) -> str:
    """Alice's access token for no resource (opaque); the request log starts empty after it."""
    client = make_client(MemoryStorage(), scopes=["email"])
    run(sign_in(client))
    token = run(client.getAccessToken())
    assert token and token.count(".") != 2
    provider.reset()
    return token


def verifier(provider: Provider, **options: Any) -> BlockingAccessTokenVerifier:
    return BlockingAccessTokenVerifier(provider.endpoint, API, introspectWith=WEB_APP, **options)


def introspections(provider: Provider) -> list[dict[str, Any]]:
    return provider.requests(path=INTROSPECTION)


def test_an_opaque_token_is_introspected_once_and_its_claims_returned(
    provider: Provider, opaque: str
) -> None:
    checker = verifier(provider)
    claims = checker.verify(opaque)
    assert (claims.sub, claims.aud, claims.client_id) == ("user-alice", [], WEB_APP[0])
    assert claims.iss == provider.endpoint + "/oidc"
    assert "email" in claims.scopes and claims.exp > claims.iat
    assert checker.verify(opaque, scopes=["openid"]).sub == "user-alice"
    [request] = introspections(provider)  # the second answer came from the cache
    assert request["authorization"] == {"scheme": "basic", "client_id": WEB_APP[0]}
    assert request["form"].get("token_type_hint") == "access_token"


def test_requirements_apply_to_opaque_tokens(provider: Provider, opaque: str) -> None:
    checker = verifier(provider)
    with pytest.raises(LogtoAccessTokenError) as caught:
        checker.verify(opaque, scopes=["read:products"])
    assert (caught.value.status, caught.value.check) == (403, "scope")
    with pytest.raises(LogtoAccessTokenError) as caught:
        checker.verify(opaque, organizationId="org-acme")
    assert (caught.value.status, caught.value.check) == (403, "organization_id")
    assert len(introspections(provider)) == 1


def test_an_inactive_token_is_a_401(provider: Provider) -> None:
    with pytest.raises(LogtoInvalidTokenError) as caught:
        verifier(provider).verify("not-an-issued-token-0123456789")
    assert (caught.value.status, caught.value.check) == (401, "active")
    assert 'error="invalid_token"' in caught.value.www_authenticate


def test_without_introspection_an_opaque_token_is_malformed(provider: Provider, opaque: str) -> None:
    with pytest.raises(LogtoInvalidTokenError) as caught:
        BlockingAccessTokenVerifier(provider.endpoint, API).verify(opaque)
    assert caught.value.check == "malformed"
    assert introspections(provider) == []


def test_concurrent_requests_with_one_token_share_one_introspection(provider: Provider, opaque: str) -> None:
    checker = verifier(provider)
    barrier = threading.Barrier(8)
    subjects: list[object] = []

    def work() -> None:
        barrier.wait()
        try:
            subjects.append(checker.verify(opaque).sub)
        except Exception as error:
            subjects.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert subjects == ["user-alice"] * 8
    assert len(introspections(provider)) == 1
    results = checker.verifyMany([opaque, opaque, "unknown-token-0123456789"])
    assert [getattr(r, "sub", None) or getattr(r, "check", None) for r in results] == [
        "user-alice",
        "user-alice",
        "active",
    ]


def test_a_zero_ttl_introspects_every_time(provider: Provider, opaque: str) -> None:
    checker = verifier(provider, introspectionTtl=0)
    for _ in range(2):
        assert checker.verify(opaque).sub == "user-alice"
    assert len(introspections(provider)) == 2


def test_wrong_credentials_and_outages_are_not_token_rejections(provider: Provider, opaque: str) -> None:
    wrong = BlockingAccessTokenVerifier(provider.endpoint, API, introspectWith=("web-app", "wrong-secret"))
    with pytest.raises(LogtoException) as caught:
        wrong.verify(opaque)
    assert not isinstance(caught.value, LogtoAccessTokenError)
    assert "wrong-secret" not in str(caught.value) + repr(caught.value)
    assert opaque not in str(caught.value) + repr(caught.value)
    provider.fault("introspection", "status500")
    with pytest.raises(LogtoException) as caught:
        verifier(provider).verify(opaque)
    assert not isinstance(caught.value, LogtoAccessTokenError)
    with pytest.raises(LogtoConfigError):
        BlockingAccessTokenVerifier(provider.endpoint, API, introspectWith=("web-app", ""))


# --- only this API's opaque tokens ----------------------------------------------------------------

THIRD_PARTY = ("third-party-app", "third-party-app-secret")


@pytest.fixture
def third_party_opaque(provider: Provider, make_client: ClientFactory) -> str:
    """Alice's opaque token issued to another app of the tenant (a third-party app)."""
    client = make_client(MemoryStorage(), appId=THIRD_PARTY[0], appSecret=THIRD_PARTY[1], scopes=["email"])
    run(sign_in(client))
    token = run(client.getAccessToken())
    assert token and token.count(".") != 2
    provider.reset()
    return token


def test_an_opaque_token_of_another_app_is_refused_unless_its_app_is_accepted(
    provider: Provider, opaque: str, third_party_opaque: str
) -> None:
    with pytest.raises(LogtoInvalidTokenError) as caught:
        verifier(provider).verify(third_party_opaque)
    assert (caught.value.status, caught.value.check) == (401, "client_id")
    assert 'error="invalid_token"' in caught.value.www_authenticate
    assert verifier(provider).verify(opaque).client_id == WEB_APP[0]  # the introspecting app's own

    both = verifier(provider, introspectionClients=[WEB_APP[0], THIRD_PARTY[0]])
    assert both.verify(third_party_opaque).client_id == THIRD_PARTY[0]
    assert both.verify(opaque).sub == "user-alice"
    only_third_party = verifier(provider, introspectionClients=[THIRD_PARTY[0]])
    with pytest.raises(LogtoInvalidTokenError) as caught:
        only_third_party.verify(opaque)
    assert caught.value.check == "client_id"
    with pytest.raises(LogtoConfigError):
        verifier(provider, introspectionClients=[""])


# --- bounded introspection ------------------------------------------------------------------------


def made_up(count: int) -> list[str]:
    return [f"made-up-token-{i:04d}-0123456789abcdef" for i in range(count)]


def test_made_up_tokens_cost_at_most_the_rate_limit_and_are_remembered(provider: Provider) -> None:
    checker = verifier(provider, introspectionRateLimit=5)
    checks = []
    for token in made_up(40):
        with pytest.raises(LogtoInvalidTokenError) as caught:
            checker.verify(token)
        checks.append(caught.value.check)
    sent = len(introspections(provider))
    assert 5 <= sent <= 7, sent  # a burst of five, plus what the loop's time earned
    assert checks.count("active") == sent
    assert checks.count("introspection_rate") == 40 - sent
    for error in checker.verifyMany(made_up(40)[sent:]):  # a batch is bounded alike
        assert isinstance(error, LogtoInvalidTokenError) and error.status == 401
    # The inactive answers are remembered: asking again sends nothing.
    provider.reset()
    for token in made_up(5):
        with pytest.raises(LogtoInvalidTokenError) as caught:
            checker.verify(token)
        assert caught.value.check == "active"
    assert introspections(provider) == []
    with pytest.raises(LogtoConfigError):
        verifier(provider, introspectionRateLimit=0)


def test_a_flood_of_made_up_tokens_does_not_evict_the_answers_for_real_ones(
    provider: Provider, opaque: str
) -> None:
    checker = verifier(provider, cacheSize=16, introspectionRateLimit=None)  # one entry per shard
    assert checker.verify(opaque).sub == "user-alice"
    for error in checker.verifyMany(made_up(200)):
        assert isinstance(error, LogtoInvalidTokenError) and error.check == "active"
    provider.reset()
    assert checker.verify(opaque).sub == "user-alice"
    assert introspections(provider) == []


def test_a_zero_negative_ttl_asks_again(provider: Provider) -> None:
    checker = verifier(provider, introspectionNegativeTtl=0)
    for _ in range(2):
        with pytest.raises(LogtoInvalidTokenError):
            checker.verify(made_up(1)[0])
    assert len(introspections(provider)) == 2
