"""Back-channel logout at the Flask endpoint: logout tokens signed by the provider's key end the
sessions they name (Redis sessions are deleted, cookie sessions are revoked), and every token
that fails a check is answered 400 without changing any session."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from test_flask import make_app, sign_in

from logto_rs.flask import FlaskSessionStorage, RedisSessionStorage
from provider_harness import Provider, complete_sign_in, decode_jwt

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture(autouse=True)
def session_required(provider: Provider) -> None:
    """web-app has a back-channel logout URI with "Is session required?": ID tokens carry sid.
    (Nothing listens there: these tests post the logout tokens themselves.)"""
    provider.set_backchannel_logout("web-app", "http://127.0.0.1:9/backchannel-logout")


def logout_token(provider: Provider, sign: str = "provider", typ: str = "logout+jwt", **claims: Any) -> str:
    """A logout token as Logto sends it, with ``claims`` changed (None removes one)."""
    payload = {
        "iss": provider.issuer,
        "aud": "web-app",
        "iat": int(time.time()),
        "jti": uuid.uuid4().hex,
        "events": {EVENT: {}},
        **claims,
    }
    return provider.sign_jwt({k: v for k, v in payload.items() if v is not None}, {"typ": typ}, sign)


def post(client: FlaskClient, token: str) -> Any:
    return client.post("/backchannel-logout", data={"logout_token": token})


def id_token_claims(store: redis.Redis, before: set[bytes]) -> dict[str, Any]:
    """The claims of the ID token a sign-in stored (the one idToken key not in ``before``)."""
    (key,) = set(store.keys("logto:*:idToken")) - before
    return decode_jwt(store.get(key).decode())[1]  # type: ignore[union-attr]


def sign_in_as_bob(app_client: FlaskClient) -> None:
    location = app_client.get("/sign-in").headers["Location"]
    callback = complete_sign_in(location, "http://127.0.0.1/callback", username="bob")
    assert app_client.get(callback.replace("http://127.0.0.1", "")).status_code == 302


def signed_in(app_client: FlaskClient, store: redis.Redis) -> dict[str, Any]:
    before = set(store.keys("logto:*:idToken"))
    sign_in(app_client)
    return id_token_claims(store, before)


def test_bad_logout_tokens_are_refused_and_change_nothing(
    provider: Provider, redis_client: redis.Redis
) -> None:
    app = make_app(provider, RedisSessionStorage(redis_client))
    alice = app.test_client()
    claims = signed_in(alice, redis_client)
    assert claims["sid"]
    target = {"sub": claims["sub"], "sid": claims["sid"]}
    now = int(time.time())
    bad = {
        "forged": logout_token(provider, sign="attacker", **target),
        "replayed": logout_token(provider, sub="user-alice", sid="another-session", jti="once"),
        "expired": logout_token(provider, **target, iat=now - 3600, exp=now - 600),
        "expired without exp": logout_token(provider, **target, iat=now - 3600),
        "wrong audience": logout_token(provider, **target, aud="web-no-rotate"),
        "wrong issuer": logout_token(provider, **target, iss="http://127.0.0.1:9/oidc"),
        "nonce": logout_token(provider, **target, nonce="n"),
        "no event": logout_token(provider, **target, events={}),
        "no sub nor sid": logout_token(provider, sub=None, sid=None),
        "an ID token": logout_token(provider, typ="JWT", **target),
    }
    assert post(alice, bad["replayed"]).status_code == 200  # the first time, for another session
    sessions = {k: redis_client.get(k) for k in redis_client.keys("logto:*")}
    for case, token in bad.items():
        response = post(alice, token)
        assert response.status_code == 400, case
        assert response.json["error"] == "invalid_request", case
        assert response.headers["Cache-Control"] == "no-store"
        assert {k: redis_client.get(k) for k in redis_client.keys("logto:*")} == sessions, case
    assert post(alice, "").status_code == 400
    assert alice.get("/protected").status_code == 200


def test_a_logout_ends_only_the_sessions_it_names(provider: Provider, redis_client: redis.Redis) -> None:
    app = make_app(provider, RedisSessionStorage(redis_client))
    alice_laptop, alice_phone, bob = app.test_client(), app.test_client(), app.test_client()
    laptop = signed_in(alice_laptop, redis_client)
    signed_in(alice_phone, redis_client)
    before = set(redis_client.keys("logto:*:idToken"))
    sign_in_as_bob(bob)
    assert id_token_claims(redis_client, before)["sub"] == "user-bob"

    # sid: that session alone.
    response = post(alice_laptop, logout_token(provider, sub="user-alice", sid=laptop["sid"]))
    assert (response.status_code, response.json) == (200, {})
    assert response.headers["Cache-Control"] == "no-store"
    assert alice_laptop.get("/protected").status_code == 401
    assert alice_phone.get("/protected").status_code == 200
    assert bob.get("/protected").status_code == 200
    # Only sub: every session of that user in this app, and nobody else's.
    assert post(bob, logout_token(provider, sub="user-alice")).status_code == 200
    assert alice_phone.get("/protected").status_code == 401
    assert bob.get("/protected").json["sub"] == "user-bob"
    assert not any(b"user-alice" in (redis_client.get(k) or b"") for k in redis_client.keys("logto:*"))
    # A local sign-out takes the session out of the index too.
    assert redis_client.keys("logto-sessions:*user-bob")
    assert bob.post("/sign-out", headers={"Origin": "http://127.0.0.1"}).status_code == 302
    assert not redis_client.keys("logto-sessions:*user-bob")


def test_a_cookie_session_is_signed_out_from_the_next_request(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(provider, FlaskSessionStorage())
    alice, bob = app.test_client(), app.test_client()
    sign_in(alice)
    sign_in_as_bob(bob)
    cookie = alice.get_cookie("session", domain="127.0.0.1")
    assert cookie is not None
    with caplog.at_level(logging.WARNING, logger="logto_rs.backchannel"):
        assert post(bob, logout_token(provider, sub="user-alice")).status_code == 200
    # The per-process default says, once, that other workers do not learn of the logout.
    assert ["RedisRevocations" in record.getMessage() for record in caplog.records] == [True]
    assert alice.get("/protected").status_code == 401
    assert bob.get("/protected").status_code == 200
    # The old cookie, replayed, is still signed out; signing in again works.
    replay = app.test_client()
    replay.set_cookie("session", cookie.value, domain=cookie.domain)
    assert replay.get("/protected").status_code == 401
    time.sleep(1.1)  # the new ID token is issued after the logout's iat
    sign_in(alice)
    assert json.loads(alice.get("/protected").get_data())["sub"] == "user-alice"


def test_a_replay_store_out_of_reach_answers_503(provider: Provider) -> None:
    from flask import Flask

    from logto_rs import LogtoConfig
    from logto_rs.backchannel import RedisReplayStore
    from logto_rs.flask import LogtoFlask
    from provider_harness import free_port

    app = Flask(__name__)
    config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    nowhere = redis.Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    LogtoFlask(app, config, replay_store=RedisReplayStore(nowhere))
    response = post(app.test_client(), logout_token(provider, sub="user-alice"))
    assert (response.status_code, response.json) == (503, {"error": "temporarily_unavailable"})
    assert response.headers["Cache-Control"] == "no-store"
