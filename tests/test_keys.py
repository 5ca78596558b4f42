"""The provider's signing keys: rotation, key age, and JWKS outages, for ID tokens at the callback
and for access tokens at an API (AccessTokenVerifier)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from test_verifier import API, forge, jwks_fetches

from conftest import REDIRECT_URI, ClientFactory, run, sign_in, snapshot
from logto_rs import (
    BlockingAccessTokenVerifier,
    LogtoClient,
    LogtoInvalidTokenError,
    LogtoOAuthError,
    LogtoResponseError,
    LogtoTokenValidationError,
    MemoryStorage,
)
from provider_harness import Provider, complete_sign_in, decode_jwt


@pytest.fixture
def alice(make_client: ClientFactory) -> LogtoClient:
    """Alice signed in for the API with a client using the default cooldown (30 s)."""
    client = make_client(MemoryStorage(), scopes=["read:products"], resources=[API])
    run(sign_in(client))
    return client


def fresh_token(client: LogtoClient) -> str:
    run(client.clearAccessToken())
    token = run(client.getAccessToken(API))
    assert token
    return token


def kid(token: str) -> Any:
    return decode_jwt(token)[0]["kid"]


def test_a_key_published_right_after_the_first_fetch_verifies_the_very_next_token(
    provider: Provider, alice: LogtoClient
) -> None:
    # OpenID RP test rp-key-rotation-op-sign-key: no cooldown wait between fetch and rotation.
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API)  # default cooldown: 30 s
    old = fresh_token(alice)
    assert verifier.verify(old).sub == "user-alice"
    rotated = provider.rotate_keys()
    new = fresh_token(alice)
    assert kid(new) == rotated["kid"] != kid(old)
    assert verifier.verify(new).sub == "user-alice"
    # ID tokens at the callback, same client, same default cooldown: the re-signed ID token
    # of a new sign-in verifies at once.
    provider.rotate_keys()
    run(sign_in(alice))
    assert alice.getIdTokenClaims().sub == "user-alice"


def test_one_forged_token_per_cooldown_does_not_keep_a_rotation_out(
    provider: Provider, alice: LogtoClient
) -> None:
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API)
    old = fresh_token(alice)
    verifier.verify(old)
    header, _ = decode_jwt(old)
    with pytest.raises(LogtoInvalidTokenError) as caught:
        verifier.verify(forge(old, header={**header, "kid": "forged"}))
    assert caught.value.check == "kid"
    provider.rotate_keys()
    assert verifier.verify(fresh_token(alice)).sub == "user-alice"


def test_a_flood_of_forged_kids_is_rate_limited(provider: Provider, alice: LogtoClient) -> None:
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API)
    token = fresh_token(alice)
    verifier.verify(token)
    provider.reset()
    header, _ = decode_jwt(token)
    for i in range(20):
        with pytest.raises(LogtoInvalidTokenError) as caught:
            verifier.verify(forge(token, header={**header, "kid": f"forged-{i}"}))
        assert caught.value.check == "kid"
    assert jwks_fetches(provider) <= 2  # a burst of two, then one per cooldown


def test_tokens_naming_one_unknown_kid_cost_one_fetch_per_cooldown(
    provider: Provider, alice: LogtoClient
) -> None:
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API, jwksRefetchCooldown=2)
    token = fresh_token(alice)
    verifier.verify(token)  # the first load
    provider.reset()
    header, _ = decode_jwt(token)
    forged = forge(token, header={**header, "kid": "unknown"})
    for _ in range(10):
        with pytest.raises(LogtoInvalidTokenError) as caught:
            verifier.verify(forged)
        assert caught.value.check == "kid"
    assert jwks_fetches(provider) == 1
    # A key published meanwhile is another kid: it is fetched at once.
    provider.rotate_keys()
    rotated = fresh_token(alice)  # the client fetches the new keys for its ID token
    provider.reset()
    assert verifier.verify(rotated).sub == "user-alice"
    assert jwks_fetches(provider) == 1
    # Once the cooldown has passed, the unknown kid is looked for again, once.
    time.sleep(2.2)
    for _ in range(5):
        with pytest.raises(LogtoInvalidTokenError):
            verifier.verify(forged)
    assert jwks_fetches(provider) == 2


def test_a_withdrawn_key_stops_verifying_after_the_jwks_max_age(
    provider: Provider, alice: LogtoClient
) -> None:
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API, jwksRefetchCooldown=1)
    old = fresh_token(alice)
    provider.publish_jwks(cache_control="public, max-age=1")
    verifier.verify(old)
    rotated = provider.rotate_keys()
    provider.publish_jwks(kids=[rotated["kid"]], cache_control="public, max-age=1")
    assert verifier.verify(old).sub == "user-alice"  # still within its max-age
    time.sleep(1.2)
    with pytest.raises(LogtoInvalidTokenError) as caught:
        verifier.verify(old)
    assert caught.value.check == "kid"
    assert verifier.verify(fresh_token(alice)).sub == "user-alice"


def test_a_jwks_outage_is_shared_and_backed_off(provider: Provider, alice: LogtoClient) -> None:
    token = fresh_token(alice)
    provider.reset()
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API, requestTimeout=2.0)
    provider.fault("jwks", "status500", times=100)
    barrier = threading.Barrier(8)
    outcomes: list[object] = []

    def work() -> None:
        barrier.wait()
        try:
            outcomes.append(verifier.verify(token))
        except Exception as error:
            outcomes.append(error)

    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 1.5
    assert len(outcomes) == 8 and all(isinstance(o, LogtoResponseError) for o in outcomes), outcomes
    assert jwks_fetches(provider) == 1  # eight callers, one request
    with pytest.raises(LogtoResponseError):
        verifier.verify(token)  # within the backoff: no new request
    assert jwks_fetches(provider) == 1
    provider.reset()
    time.sleep(1.1)  # past the first backoff
    assert verifier.verify(token).sub == "user-alice"


def test_an_unknown_kid_during_an_outage_is_a_401_when_keys_are_cached(
    provider: Provider, alice: LogtoClient
) -> None:
    # No cooldown: the unknown kid does cause a refetch, and it fails.
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API, jwksRefetchCooldown=0)
    token = fresh_token(alice)
    verifier.verify(token)
    provider.fault("jwks", "status500", times=10)
    header, _ = decode_jwt(token)
    with pytest.raises(LogtoInvalidTokenError) as caught:
        verifier.verify(forge(token, header={**header, "kid": "forged"}))
    assert caught.value.check == "kid" and caught.value.status == 401
    assert verifier.verify(token).sub == "user-alice"  # known keys keep serving


def test_an_unknown_kid_at_the_callback_during_an_outage_is_a_token_error(
    provider: Provider, make_client: ClientFactory
) -> None:
    storage = MemoryStorage()
    client = make_client(storage, jwksRefetchCooldown=0)
    run(sign_in(client))
    callback = complete_sign_in(run(client.signIn(REDIRECT_URI)), REDIRECT_URI)
    provider.mutate_next_id_token(header={"kid": "forged"})
    provider.fault("jwks", "status500", times=10)
    before = snapshot(storage)
    with pytest.raises(LogtoTokenValidationError) as caught:
        run(client.handleSignInCallback(callback))
    assert caught.value.check == "kid"
    assert snapshot(storage) == before


@pytest.mark.parametrize("endpoint", ["discovery", "jwks"])
def test_a_5xx_json_answer_is_an_outage_not_an_oauth_error(
    provider: Provider, alice: LogtoClient, endpoint: str
) -> None:
    token = fresh_token(alice)
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API)
    provider.fault(endpoint, "status500", status=503)
    with pytest.raises(LogtoResponseError) as caught:
        verifier.verify(token)
    assert not isinstance(caught.value, LogtoOAuthError)
    assert (caught.value.code, caught.value.status) == ("response.unexpected", 503)


@pytest.mark.parametrize("endpoint", ["/oidc/.well-known/openid-configuration", "/oidc/jwks"])
def test_an_oversized_chunked_body_is_cut_off_at_the_limit(provider: Provider, endpoint: str) -> None:
    # 64 MB without a Content-Length: reading stops at the 1 MB limit instead of buffering it all.
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API)
    unsigned = forge("e30.e30.AAAA", header={"alg": "ES384", "typ": "at+jwt", "kid": "k"}, claims={})
    provider.huge_body(endpoint, 64 * 1024 * 1024)
    with pytest.raises(LogtoResponseError) as caught:
        verifier.verify(unsigned)
    assert "too large" in str(caught.value)
    deadline = time.monotonic() + 5
    while not provider.huge_body_report()["closed"] and time.monotonic() < deadline:
        time.sleep(0.05)
    report = provider.huge_body_report()
    assert report["closed"] and report["sent"] < 16 * 1024 * 1024, report


@pytest.mark.parametrize("alg", ["ES512", "ES256", "PS256"])
def test_every_signing_algorithm_the_provider_offers_verifies(
    provider: Provider, make_client: ClientFactory, alg: str
) -> None:
    provider.set_alg(alg)
    try:
        client = make_client(MemoryStorage(), scopes=["read:products"], resources=[API])
        run(sign_in(client))  # the ID token, signed with `alg`, verified at the callback
        token = fresh_token(client)
        assert decode_jwt(token)[0]["alg"] == alg
        verifier = BlockingAccessTokenVerifier(provider.endpoint, API)
        assert verifier.verify(token).sub == client.getIdTokenClaims().sub == "user-alice"
        _, claims = decode_jwt(token)
        with pytest.raises(LogtoInvalidTokenError) as caught:
            verifier.verify(forge(token, claims={**claims, "sub": "user-bob"}))
        assert caught.value.check == "signature"
    finally:
        provider.set_alg("ES384")


def test_a_critical_header_extension_is_rejected(
    provider: Provider, make_client: ClientFactory, alice: LogtoClient
) -> None:
    # RFC 7515 §4.1.11, signed by the provider's own key: the ID token at the callback...
    storage = MemoryStorage()
    client = make_client(storage)
    callback = complete_sign_in(run(client.signIn(REDIRECT_URI)), REDIRECT_URI)
    provider.mutate_next_id_token(header={"crit": ["exp"], "exp": 1})
    before = snapshot(storage)
    with pytest.raises(LogtoTokenValidationError) as caught:
        run(client.handleSignInCallback(callback))
    assert caught.value.check == "crit" and snapshot(storage) == before
    # ...and an access token at an API (re-signing is not needed: crit is refused before the key).
    token = fresh_token(alice)
    header, _ = decode_jwt(token)
    with pytest.raises(LogtoInvalidTokenError) as rejected:
        BlockingAccessTokenVerifier(provider.endpoint, API).verify(
            forge(token, header={**header, "crit": ["b64"]})
        )
    assert rejected.value.check == "crit"


def test_callers_waiting_for_a_failing_discovery_share_its_error(provider: Provider) -> None:
    # Discovery hangs: four concurrent callers wait one timeout together, not one each in turn.
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API, requestTimeout=1.0)
    unsigned = forge("e30.e30.AAAA", header={"alg": "ES384", "typ": "at+jwt", "kid": "k"}, claims={})
    provider.fault("discovery", "hang", times=10)
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def work() -> None:
        barrier.wait()
        try:
            verifier.verify(unsigned)
        except Exception as error:
            outcomes.append(error)

    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 2.5  # one timeout (1 s), not four
    assert len(outcomes) == 4 and all(type(o).__name__ == "LogtoTimeoutError" for o in outcomes), outcomes
    assert len(provider.requests(path="/oidc/.well-known/openid-configuration")) == 1
