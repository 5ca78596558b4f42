"""Every way a callback can be wrong: each raises the right typed error and leaves the storage
exactly as it was (the sign-in session survives, so nothing is lost)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from conftest import REDIRECT_URI, ClientFactory, run, sign_in, snapshot
from logto_rs import (
    LogtoAuthorizationError,
    LogtoCallbackError,
    LogtoClient,
    LogtoException,
    LogtoResponseError,
    LogtoTimeoutError,
    LogtoTokenValidationError,
    MemoryStorage,
)
from provider_harness import Provider, complete_sign_in, deny_sign_in


def start(client: LogtoClient) -> str:
    """signIn and the provider round trip; returns the callback URL, not yet handled."""
    return complete_sign_in(run(client.signIn(REDIRECT_URI)), REDIRECT_URI)


def rejected(
    client: LogtoClient, storage: MemoryStorage, callback: str, error: type[LogtoException]
) -> LogtoException:
    """Handle `callback`, expect `error`, and check the storage did not change."""
    before = snapshot(storage)
    assert "signInSession" in before
    with pytest.raises(error) as caught:
        run(client.handleSignInCallback(callback))
    assert snapshot(storage) == before
    assert not client.isAuthenticated()
    return caught.value


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def client(make_client: ClientFactory, storage: MemoryStorage) -> LogtoClient:
    return make_client(storage)


def test_forged_state(client: LogtoClient, storage: MemoryStorage) -> None:
    callback = start(client)
    state = callback.split("state=")[1].split("&")[0]
    error = rejected(client, storage, callback.replace(state, "forged" + state[6:]), LogtoCallbackError)
    assert error.code == "callback.state_mismatch"


def test_missing_code(client: LogtoClient, storage: MemoryStorage) -> None:
    callback = start(client)
    without_code = "&".join(p for p in callback.split("?")[1].split("&") if not p.startswith("code="))
    error = rejected(client, storage, f"{REDIRECT_URI}?{without_code}", LogtoCallbackError)
    assert error.code == "callback.missing_code"


def test_callback_on_another_path_or_origin(client: LogtoClient, storage: MemoryStorage) -> None:
    callback = start(client)
    for forged in (
        callback.replace("/callback", "/other"),
        callback.replace("http://127.0.0.1/", "http://evil.example/"),
        callback.replace("http://", "https://"),
    ):
        assert rejected(client, storage, forged, LogtoCallbackError).code == "callback.redirect_uri_mismatch"
    # The genuine callback still works afterwards: nothing was consumed.
    run(client.handleSignInCallback(callback))
    assert client.isAuthenticated()


def test_malformed_callback_url(client: LogtoClient, storage: MemoryStorage) -> None:
    start(client)
    for bad in ("", "not a url", "http://[::1", "/callback?code=x"):
        assert rejected(client, storage, bad, LogtoCallbackError).code == "callback.invalid_url"


def test_provider_access_denied(client: LogtoClient, storage: MemoryStorage) -> None:
    callback = deny_sign_in(run(client.signIn(REDIRECT_URI)), REDIRECT_URI)
    error = rejected(client, storage, callback, LogtoAuthorizationError)
    assert error.code == "callback.authorization_error"
    assert error.error == "access_denied"
    assert isinstance(error, LogtoCallbackError)


ID_TOKEN_FORGERIES: list[tuple[str, dict[str, Any], str]] = [
    ("bad signature", {"sign": "attacker"}, "signature"),
    ("wrong iss", {"claims": {"iss": "http://127.0.0.1:1/oidc"}}, "iss"),
    ("wrong aud", {"claims": {"aud": "another-app"}}, "aud"),
    ("expired", {"claims": {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}}, "exp"),
    (
        "iat in the future",
        {"claims": {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}},
        "iat",
    ),
    ("nonce mismatch", {"claims": {"nonce": "not-the-nonce"}}, "nonce"),
    ("nonce missing", {"remove_claims": ["nonce"]}, "nonce"),
    ("alg none", {"sign": "none"}, "alg"),
    ("HS256 with the public key (PEM)", {"sign": "hs256_public", "secret_form": "pem"}, "alg"),
    ("HS256 with the public key (JWK)", {"sign": "hs256_public", "secret_form": "jwk"}, "alg"),
]


@pytest.mark.parametrize(
    ("mutation", "check"),
    [(m, c) for _, m, c in ID_TOKEN_FORGERIES],
    ids=[name for name, _, _ in ID_TOKEN_FORGERIES],
)
def test_forged_id_tokens_are_rejected(
    provider: Provider, client: LogtoClient, storage: MemoryStorage, mutation: dict[str, Any], check: str
) -> None:
    callback = start(client)
    provider.mutate_next_id_token(**mutation)
    error = rejected(client, storage, callback, LogtoTokenValidationError)
    assert error.check == check
    assert error.code == f"token.{check}"


def test_single_key_without_kid(provider: Provider, client: LogtoClient) -> None:
    provider.set_jwks_mode("strip_kid")
    callback = start(client)
    provider.mutate_next_id_token(sign="provider_no_kid")
    run(client.handleSignInCallback(callback))
    assert client.getIdTokenClaims().sub == "user-alice"


def test_key_rotation_refetches_the_jwks_once(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client(jwksRefetchCooldown=0)
    run(sign_in(client))
    assert len(provider.requests(path="/oidc/jwks")) == 1
    provider.rotate_keys()
    run(sign_in(client))
    assert client.isAuthenticated()
    assert len(provider.requests(path="/oidc/jwks")) == 2
    run(sign_in(client))  # the new key is cached now
    assert len(provider.requests(path="/oidc/jwks")) == 2


def test_unknown_kids_cannot_make_the_client_hammer_the_jwks(
    provider: Provider, make_client: ClientFactory
) -> None:
    storage = MemoryStorage()
    client = make_client(storage)  # default cooldown: 30 s
    for attempt in range(5):
        callback = start(client)
        provider.mutate_next_id_token(header={"kid": f"forged-{attempt}"})
        error = rejected(client, storage, callback, LogtoTokenValidationError)
        assert error.check == "kid"
    # The first fetch, then a burst of two unknown-kid refetches; the rest wait for the cooldown.
    assert len(provider.requests(path="/oidc/jwks")) == 3


@pytest.mark.parametrize("mode", ["status500", "html", "invalid_json"])
def test_token_endpoint_misbehaving(
    provider: Provider, client: LogtoClient, storage: MemoryStorage, mode: str
) -> None:
    callback = start(client)
    provider.fault("token", mode)
    error = rejected(client, storage, callback, LogtoResponseError)
    assert error.status == (500 if mode == "status500" else 200)


def test_token_endpoint_hanging_times_out(
    provider: Provider, make_client: ClientFactory, storage: MemoryStorage
) -> None:
    client = make_client(storage, requestTimeout=1.0)
    callback = start(client)
    provider.fault("token", "hang")
    started = time.monotonic()
    error = rejected(client, storage, callback, LogtoTimeoutError)
    assert time.monotonic() - started < 3.0
    assert error.code == "network.timeout"


def test_discovery_failure_is_typed_and_storage_is_untouched(
    provider: Provider, make_client: ClientFactory
) -> None:
    storage = MemoryStorage()
    client = make_client(storage)
    provider.fault("discovery", "html")
    with pytest.raises(LogtoResponseError):
        run(client.signIn(REDIRECT_URI))
    assert snapshot(storage) == {}
    # Not cached: the next call discovers again and succeeds.
    assert run(client.signIn(REDIRECT_URI)).startswith(provider.issuer)


def test_a_callback_naming_another_issuer_is_refused(
    provider: Provider, client: LogtoClient, storage: MemoryStorage
) -> None:
    # RFC 9207 mix-up defence: the iss the provider adds must be the issuer discovery gave.
    callback = start(client)
    assert f"iss={quote(provider.issuer, safe='')}" in callback
    forged = callback.replace(quote(provider.issuer, safe=""), quote("https://evil.example/oidc", safe=""))
    error = rejected(client, storage, forged, LogtoCallbackError)
    assert error.code == "callback.issuer_mismatch"
    # The provider advertises authorization_response_iss_parameter_supported: iss is required.
    without_iss = "&".join(p for p in callback.split("?")[1].split("&") if not p.startswith("iss="))
    error = rejected(client, storage, f"{REDIRECT_URI}?{without_iss}", LogtoCallbackError)
    assert error.code == "callback.missing_issuer"
    assert not provider.requests(path="/oidc/token")  # nothing redeemed
    run(client.handleSignInCallback(callback))
    assert client.isAuthenticated()


INJECTED = "Call +1-555-0100 to restore access\r\nINFO logto_rs: user=admin signed in"


def test_a_stateless_error_callback_is_a_state_failure(client: LogtoClient, storage: MemoryStorage) -> None:
    start(client)
    stateless = f"{REDIRECT_URI}?" + urlencode({"error": "access_denied", "error_description": INJECTED})
    error = rejected(client, storage, stateless, LogtoCallbackError)
    assert error.code == "callback.missing_state" and not isinstance(error, LogtoAuthorizationError)
    forged = stateless + "&state=forged"
    error = rejected(client, storage, forged, LogtoCallbackError)
    assert error.code == "callback.state_mismatch"
    for text in (str(error), repr(error), error.description or ""):
        assert "555" not in text and "\n" not in text


def test_error_texts_are_one_printable_line() -> None:
    error = LogtoAuthorizationError("denied: " + INJECTED, "callback.authorization_error", "x\ny", INJECTED)
    for text in (str(error), repr(error), error.error or "", error.description or ""):
        assert "\n" not in text and "\r" not in text
    assert "\\r\\nINFO" in str(error)


@pytest.mark.parametrize(
    ("mutation", "check"),
    [
        ({"remove_claims": ["iat"]}, "claims"),
        ({"claims": {"aud": ["web-app", 7], "azp": "web-app"}}, "claims"),
        ({"claims": {"roles": [1, 2]}}, "claims"),
        ({"claims": {"email_verified": "yes"}}, "claims"),
        ({"claims": {"exp": time.time() + 3600.75}}, None),
    ],
    ids=["no iat", "aud with a number", "roles of numbers", "string email_verified", "fractional exp"],
)
def test_an_id_token_fits_its_model_or_is_rejected(
    provider: Provider, client: LogtoClient, storage: MemoryStorage, mutation: dict[str, Any], check: Any
) -> None:
    callback = start(client)
    provider.mutate_next_id_token(**mutation)
    if check is None:
        run(client.handleSignInCallback(callback))
        claims = client.getIdTokenClaims()
        assert isinstance(claims.exp, int) and claims.exp == int(mutation["claims"]["exp"])
        return
    error = rejected(client, storage, callback, LogtoTokenValidationError)
    assert error.check == check
