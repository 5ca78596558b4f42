"""The sign-in story against the real provider: sign-in → callback → claims → sign-out."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from typing import get_args
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import POST_LOGOUT_URI, REDIRECT_URI, ClientFactory, run, sign_in, snapshot
from logto_rs import (
    BlockingLogtoClient,
    FirstScreen,
    InteractionMode,
    LogtoCallbackError,
    LogtoClient,
    LogtoConfig,
    LogtoConfigError,
    MemoryStorage,
)
from provider_harness import Provider, complete_sign_in, complete_sign_out, decode_jwt


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_sign_in_url_carries_pkce_state_nonce_and_stores_the_session(make_client: ClientFactory) -> None:
    storage = MemoryStorage()
    client = make_client(storage, scopes=["email"], resources=["https://api.example.com"])
    url = run(client.signIn(REDIRECT_URI, interactionMode="signUp", loginHint="alice"))
    params = query(url)
    assert url.startswith(f"{client.config.endpoint}/oidc/auth?")
    assert params["client_id"] == ["web-app"]
    assert params["redirect_uri"] == [REDIRECT_URI]
    assert params["scope"] == ["openid offline_access profile email"]
    assert params["resource"] == ["https://api.example.com"]
    assert params["code_challenge_method"] == ["S256"]
    assert params["prompt"] == ["consent"]
    assert params["interaction_mode"] == ["signUp"]
    assert params["login_hint"] == ["alice"]
    # >= 32 random bytes each, base64url without padding.
    assert len(params["state"][0]) >= 43 and len(params["nonce"][0]) >= 43
    session = json.loads(snapshot(storage)["signInSession"])
    assert session["state"] == params["state"][0] and session["nonce"] == params["nonce"][0]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(session["codeVerifier"].encode()).digest())
    assert params["code_challenge"] == [challenge.rstrip(b"=").decode()]


def test_full_flow_claims_then_sign_out(provider: Provider, make_client: ClientFactory) -> None:
    storage = MemoryStorage()
    client = make_client(storage)
    assert not client.isAuthenticated()
    run(sign_in(client))

    assert client.isAuthenticated()
    claims = client.getIdTokenClaims()
    assert claims.sub == "user-alice"
    assert claims.iss == provider.issuer
    assert claims.aud == "web-app"
    assert claims.name == "Alice Liddell"
    assert json.loads(claims.model_dump_json(exclude_unset=True))["sub"] == "user-alice"
    id_token = client.getIdToken()
    refresh_token = client.getRefreshToken()
    assert id_token and refresh_token
    header, payload = decode_jwt(id_token)
    assert header["alg"] == "ES384" and payload["nonce"]
    assert set(snapshot(storage)) == {"idToken", "refreshToken", "accessTokenMap"}

    end_session = run(client.signOut(POST_LOGOUT_URI))
    params = query(end_session)
    assert end_session.startswith(f"{provider.issuer}/session/end?")
    assert params["client_id"] == ["web-app"]
    assert params["post_logout_redirect_uri"] == [POST_LOGOUT_URI]
    assert params["id_token_hint"] == [id_token]
    assert snapshot(storage) == {}
    assert not client.isAuthenticated()
    assert complete_sign_out(end_session).startswith(POST_LOGOUT_URI)

    # The refresh token was revoked at the provider, not only forgotten locally.
    response = httpx.post(
        provider.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=("web-app", "web-app-secret"),
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_a_new_sign_in_keeps_the_session_until_its_callback_replaces_every_token(
    make_client: ClientFactory,
) -> None:
    storage = MemoryStorage()
    client = make_client(storage)
    run(sign_in(client))
    alice = snapshot(storage)
    # Starting a sign-in (or abandoning one) does not sign the user out.
    url = run(client.signIn(REDIRECT_URI))
    assert {k: v for k, v in snapshot(storage).items() if k != "signInSession"} == alice
    assert client.isAuthenticated() and client.getIdTokenClaims().username == "alice"
    # Its callback replaces every token: nothing of the previous user remains.
    run(client.handleSignInCallback(complete_sign_in(url, REDIRECT_URI, username="bob")))
    bob = snapshot(storage)
    assert set(bob) == {"idToken", "refreshToken", "accessTokenMap"}
    assert not set(alice.values()) & set(bob.values())
    assert client.getIdTokenClaims().username == "bob"


def test_the_callback_returns_the_post_redirect_uri_given_to_sign_in(make_client: ClientFactory) -> None:
    client = make_client(MemoryStorage())
    url = run(client.signIn(REDIRECT_URI, postRedirectUri="/dashboard?tab=1"))
    assert run(client.handleSignInCallback(complete_sign_in(url, REDIRECT_URI))) == "/dashboard?tab=1"
    # Without one, the callback returns None, as the official SDK's does.
    url = run(client.signIn(REDIRECT_URI))
    assert run(client.handleSignInCallback(complete_sign_in(url, REDIRECT_URI))) is None
    blocking = client.blocking
    url = blocking.signIn(REDIRECT_URI, postRedirectUri="https://app.example/next")
    assert blocking.handleSignInCallback(complete_sign_in(url, REDIRECT_URI)) == "https://app.example/next"


def test_replayed_callback_fails_cleanly(make_client: ClientFactory) -> None:
    storage = MemoryStorage()
    client = make_client(storage)
    url = run(client.signIn(REDIRECT_URI))
    callback = complete_sign_in(url, REDIRECT_URI)
    run(client.handleSignInCallback(callback))
    signed_in = snapshot(storage)
    with pytest.raises(LogtoCallbackError) as caught:
        run(client.handleSignInCallback(callback))
    assert caught.value.code == "callback.session_not_found"
    assert snapshot(storage) == signed_in


def test_public_client_sends_client_id_and_no_secret(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client(appId="spa-app", appSecret=None)
    run(sign_in(client))
    assert client.getIdTokenClaims().aud == "spa-app"
    exchange = provider.requests(path="/oidc/token", grant_type="authorization_code")[-1]
    form = exchange["form"]
    assert form["client_id"] == "spa-app"
    assert "client_secret" not in form
    assert exchange.get("authorization") is None


def test_confidential_client_uses_basic_auth_only(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client()
    run(sign_in(client))
    exchange = provider.requests(path="/oidc/token", grant_type="authorization_code")[-1]
    assert "client_secret" not in exchange["form"]
    assert "client_id" not in exchange["form"]
    assert exchange["authorization"] == {"scheme": "basic", "client_id": "web-app"}


def test_blocking_client_runs_the_same_flow(make_client: ClientFactory) -> None:
    client = make_client().blocking
    url = client.signIn(REDIRECT_URI)
    client.handleSignInCallback(complete_sign_in(url, REDIRECT_URI))
    assert client.getIdTokenClaims().sub == "user-alice"
    assert "id_token_hint" in client.signOut()
    assert not client.isAuthenticated()


def test_the_blocking_client_is_built_once_per_client_and_view(make_client: ClientFactory) -> None:
    client = make_client(MemoryStorage())
    seen: list[BlockingLogtoClient] = []
    barrier = threading.Barrier(16)

    def access() -> None:
        barrier.wait()
        seen.append(client.blocking)

    threads = [threading.Thread(target=access) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 16 and all(view is client.blocking for view in seen)
    # A view of another session has its own, bound to that session's storage.
    other = MemoryStorage()
    view = client.withStorage(other)
    assert view.blocking is view.blocking and view.blocking is not client.blocking
    run(sign_in(view))
    assert view.blocking.isAuthenticated() and not client.blocking.isAuthenticated()


def test_sign_in_against_an_rs256_tenant() -> None:
    with Provider().start(alg="RS256") as rsa_provider:
        client = LogtoClient(
            LogtoConfig(endpoint=rsa_provider.endpoint, appId="web-app", appSecret="web-app-secret")
        )
        run(sign_in(client))
        token = client.getIdToken()
        assert token and decode_jwt(token)[0]["alg"] == "RS256"
        assert client.getIdTokenClaims().sub == "user-alice"


def test_the_stored_refresh_token_works_at_the_provider(
    provider: Provider, make_client: ClientFactory
) -> None:
    client = make_client()
    run(sign_in(client))
    response = httpx.post(
        provider.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": client.getRefreshToken()},
        auth=("web-app", "web-app-secret"),
    )
    assert response.status_code == 200, response.text


def test_python_and_rust_agree_on_logtos_extension_values(make_client: ClientFactory) -> None:
    client = make_client()
    for screen in get_args(FirstScreen):
        identifiers = ["email"] if screen.startswith("identifier:") else None
        url = run(client.signIn(REDIRECT_URI, firstScreen=screen, identifiers=identifiers))
        assert query(url)["first_screen"] == [screen]
    for mode in get_args(InteractionMode):
        assert query(run(client.signIn(REDIRECT_URI, interactionMode=mode)))["interaction_mode"] == [mode]
    with pytest.raises(LogtoConfigError):
        run(client.signIn(REDIRECT_URI, firstScreen="foo"))
    url = run(client.signIn(REDIRECT_URI, directSignIn={"method": "social", "target": "github"}))
    assert query(url)["direct_sign_in"] == ["social:github"]


def test_discovery_is_fetched_once_per_client(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client()
    run(sign_in(client))
    run(client.signIn(REDIRECT_URI))
    run(sign_in(client))
    run(client.signOut())
    assert len(provider.requests(path="/oidc/.well-known/openid-configuration")) == 1
