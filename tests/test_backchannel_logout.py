"""Back-channel logout at the Flask endpoint: logout tokens signed by the provider's key end the
sessions they name (Redis sessions are deleted, cookie sessions are revoked), and every token
that fails a check is answered 400 without changing any session."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import logging
import threading
import time
import uuid
import warnings
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from test_flask import make_app, session_of, sign_in

from logto_rs.flask import FlaskSessionStorage, RedisSessionStorage
from logto_rs.redis_storage import session_key
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


def id_token_of(app: Flask, client: FlaskClient, store: redis.Redis) -> str:
    """The ID token of a signed-in test client's session (in its cookie, or in Redis)."""
    session = session_of(app, client)
    if "logto_sid" in session:
        return str(store.get(session_key("logto:", session["logto_sid"], "idToken")).decode())  # type: ignore[union-attr]
    return str(session["logto_idToken"])


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
    assert bob.post("/sign-out", headers={"Origin": "http://127.0.0.1"}).status_code == 303
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


# --- a logout is final ------------------------------------------------------------------------


def with_refresh_route(app: Flask) -> Flask:
    """``/refresh`` drops the cached access tokens and asks for one: a refresh at Logto."""
    extension = app.extensions["logto_rs"]

    @app.route("/refresh")
    def refresh() -> dict[str, Any]:
        client = extension.client.blocking
        client.clearAccessToken()
        return {"refreshed": client.getAccessToken() is not None}

    return app


@pytest.mark.parametrize("sessions", ["redis", "cookie"])
def test_a_logout_during_a_refresh_is_not_undone(
    provider: Provider, redis_client: redis.Redis, sessions: str
) -> None:
    storage = RedisSessionStorage(redis_client) if sessions == "redis" else FlaskSessionStorage()
    app = with_refresh_route(make_app(provider, storage))
    alice, logto = app.test_client(), app.test_client()
    sign_in(alice)
    sid = decode_jwt(id_token_of(app, alice, redis_client))[1]["sid"]
    provider.fault("token", "hang", delay_ms=2500)  # the refresh is slow: the logout comes meanwhile
    in_flight: dict[str, Any] = {}
    refresh = threading.Thread(target=lambda: in_flight.update(answer=alice.get("/refresh")))
    refresh.start()
    deadline = time.monotonic() + 10
    while not provider.requests(path="/oidc/token", grant_type="refresh_token"):
        assert time.monotonic() < deadline, "the refresh did not start"
        time.sleep(0.02)
    assert post(logto, logout_token(provider, sub="user-alice", sid=sid)).status_code == 200
    refresh.join(timeout=20)
    assert in_flight["answer"].status_code == 200  # the refresh itself completed
    for _ in range(2):
        assert alice.get("/protected").status_code == 401
    if sessions == "redis":
        assert not redis_client.keys("logto:*:idToken")


def test_an_abandoned_sign_in_leaves_the_session_where_a_logout_finds_it(
    provider: Provider, redis_client: redis.Redis
) -> None:
    app = make_app(provider, RedisSessionStorage(redis_client))
    alice, logto = app.test_client(), app.test_client()
    claims = signed_in(alice, redis_client)
    assert alice.get("/sign-in").status_code == 302  # a second click, a tab closed at Logto
    assert alice.get("/protected").status_code == 200  # still signed in
    assert post(logto, logout_token(provider, sub="user-alice", sid=claims["sid"])).status_code == 200
    assert alice.get("/protected").status_code == 401
    assert not redis_client.keys("logto:*:idToken")


def test_a_copied_cookie_stops_working_after_sign_out(provider: Provider) -> None:
    app = make_app(provider, FlaskSessionStorage())
    alice = app.test_client()
    sign_in(alice)
    cookie = alice.get_cookie("session", domain="127.0.0.1")
    assert cookie is not None
    assert alice.post("/sign-out", headers={"Origin": "http://127.0.0.1"}).status_code == 303
    thief = app.test_client()
    thief.set_cookie("session", cookie.value, domain=cookie.domain)
    assert thief.get("/protected").status_code == 401
    time.sleep(1.1)  # a new sign-in, after the sign-out, is a new session
    sign_in(alice)
    assert alice.get("/protected").status_code == 200


# --- the endpoint under a failing store -------------------------------------------------------


def unreachable_redis() -> redis.Redis:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from provider_harness import free_port

    return redis.Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))


def test_a_logout_that_could_not_end_its_sessions_is_accepted_again(
    provider: Provider, redis_client: redis.Redis
) -> None:
    from logto_rs.backchannel import RedisSessionIndex

    app = make_app(provider, RedisSessionStorage(redis_client))
    logto = app.extensions["logto_rs"]
    working = logto.backchannel.sessions
    alice, caller = app.test_client(), app.test_client()
    claims = signed_in(alice, redis_client)
    token = logout_token(provider, sub="user-alice", sid=claims["sid"])
    logto.backchannel.sessions = RedisSessionIndex(unreachable_redis(), "web-app")
    response = post(caller, token)
    assert (response.status_code, response.json) == (503, {"error": "temporarily_unavailable"})
    assert alice.get("/protected").status_code == 200
    logto.backchannel.sessions = working  # the store is back: Logto's resend is not a replay
    assert post(caller, token).status_code == 200
    assert alice.get("/protected").status_code == 401
    assert post(caller, token).status_code == 400  # now it is one


def test_a_revocation_store_outage_answers_503_not_500(provider: Provider) -> None:
    from logto_rs import LogtoConfig
    from logto_rs.backchannel import RedisRevocations
    from logto_rs.flask import LogtoFlask, authenticated

    app = Flask(__name__)
    app.secret_key = "test-secret-key"
    app.config["SERVER_NAME"] = "127.0.0.1"
    config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
    LogtoFlask(app, config, session_index=RedisRevocations(unreachable_redis(), "web-app"))

    @app.route("/protected")
    @authenticated()
    def protected() -> str:
        return "secret"

    alice = app.test_client()
    location = alice.get("/sign-in").headers["Location"]
    callback = complete_sign_in(location, "http://127.0.0.1/callback")
    assert alice.get(callback.replace("http://127.0.0.1", "")).status_code == 302
    response = alice.get("/protected")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json["error"] == "temporarily_unavailable"


# --- bounded records --------------------------------------------------------------------------


def test_memory_revocations_fail_closed_rather_than_forget(caplog: pytest.LogCaptureFixture) -> None:
    from logto_rs.backchannel import LogoutToken, MemoryRevocations, SessionMark

    records = MemoryRevocations("web-app", capacity=3)
    first = {"sub": "user-0", "sid": "sid-0", "iat": 1000}
    records.end(LogoutToken(sub="user-0", sid="sid-0", iat=1000, exp=1300))
    assert records.is_ended(first, SessionMark(999, "m0"))
    with caplog.at_level(logging.ERROR, logger="logto_rs.backchannel"):
        for n in range(1, 10):
            records.end(LogoutToken(sub=f"user-{n}", sid=f"sid-{n}", iat=1000 + n, exp=1300 + n))
    assert len(records._records) <= 3
    assert records.is_ended(first, SessionMark(999, "m0"))  # never forgotten: failed closed
    assert any("full" in record.getMessage() for record in caplog.records)
    # A session that signed in after every recorded logout goes on.
    assert not records.is_ended({"sub": "user-0", "sid": "sid-new"}, SessionMark(2000, "m1"))
    # A late delivery never shortens a record.
    later = MemoryRevocations("web-app")
    later.end(LogoutToken(sub="user-0", sid=None, iat=2000, exp=2300))
    later.end(LogoutToken(sub="user-0", sid=None, iat=1000, exp=1300))
    assert later.is_ended({"sub": "user-0"}, SessionMark(1500, "m2"))


def test_revocations_of_cookie_sessions_outlive_the_cookie(provider: Provider) -> None:
    app = Flask(__name__)
    app.secret_key = "test-secret-key"
    app.permanent_session_lifetime = timedelta(days=31)
    from logto_rs import LogtoConfig
    from logto_rs.flask import LogtoFlask

    config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
    logto = LogtoFlask(app, config)
    assert logto.backchannel is not None
    assert logto.backchannel.sessions.ttl == timedelta(days=31)


def test_the_redis_index_drops_sessions_that_expired(provider: Provider, redis_client: redis.Redis) -> None:
    app = make_app(provider, RedisSessionStorage(redis_client))
    first, second = app.test_client(), app.test_client()
    signed_in(first, redis_client)
    (index,) = redis_client.keys("logto-sessions:*:sub:user-alice")
    (expired,) = redis_client.smembers(index)
    redis_client.delete(*redis_client.keys(session_key("logto:", expired.decode(), "*")))  # its keys expired
    signed_in(second, redis_client)
    assert expired not in redis_client.smembers(index)
    assert len(redis_client.smembers(index)) == 1


@pytest.mark.parametrize("sessions", ["redis", "cookie"])
def test_a_replayed_logout_ends_no_session_that_signed_in_after_it(
    provider: Provider, redis_client: redis.Redis, sessions: str
) -> None:
    # The jti is claimed last, so a replay reaches the store before it is refused: it must end
    # nothing that the first delivery had not already ended.
    storage = RedisSessionStorage(redis_client) if sessions == "redis" else FlaskSessionStorage()
    app = make_app(provider, storage)
    alice, caller = app.test_client(), app.test_client()
    sign_in(alice)
    token = logout_token(provider, sub="user-alice")  # "Is session required?" off: sub only
    assert post(caller, token).status_code == 200
    assert alice.get("/protected").status_code == 401
    time.sleep(1.1)
    sign_in(alice)
    assert post(caller, token).status_code == 400  # the replay is refused...
    assert alice.get("/protected").status_code == 200  # ...and ended nothing


@pytest.mark.parametrize("client", ["redis", "redis.asyncio"])
def test_a_logout_between_a_callback_and_its_index_entry_still_ends_the_session(
    provider: Provider, redis_client: redis.Redis, redis_url: str, client: str
) -> None:
    from logto_rs.backchannel import LogoutToken, RedisSessionIndex
    from logto_rs.redis_storage import AsyncRedisClient

    async def scenario() -> None:
        # The same index logic over either client: plain results, or awaitables of them.
        shared = redis_client if client == "redis" else AsyncRedisClient(redis_url)
        index = RedisSessionIndex(shared, "web-app")

        async def done(result: Any) -> Any:
            assert inspect.isawaitable(result) == (client == "redis.asyncio")
            return await result if inspect.isawaitable(result) else result

        redis_client.set(
            session_key("logto:", "just-signed-in", "idToken"), "a token"
        )  # the callback's commit
        claims = {"sub": "user-alice", "sid": "sid-1", "iat": 1_000}
        await done(index.end(LogoutToken(sub="user-alice", sid="sid-1", iat=1_000, exp=1_300)))  # the logout
        await done(index.record(claims, "just-signed-in"))  # then the callback indexes the session
        assert redis_client.get(session_key("logto:", "just-signed-in", "idToken")) is None
        assert redis_client.exists(session_key("logto:", "just-signed-in", "ended"))
        # A session that signs in after the logout is indexed as usual.
        redis_client.set(session_key("logto:", "later", "idToken"), "a token")
        await done(index.record({**claims, "iat": 1_001}, "later"))
        assert redis_client.get(session_key("logto:", "later", "idToken")) == b"a token"
        assert b"later" in redis_client.smembers("logto-sessions:web-app:sid:sid-1")
        # A later logout ends it; one issued before its sign-in leaves it alone.
        assert await done(index.end(LogoutToken(sub="user-alice", sid="sid-1", iat=1_000, exp=1_300))) == 0
        assert await done(index.end(LogoutToken(sub="user-alice", sid="sid-1", iat=1_001, exp=1_300))) == 1
        assert redis_client.get(session_key("logto:", "later", "idToken")) is None
        if isinstance(shared, AsyncRedisClient):
            await shared.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("client", ["AsyncRedisClient", "redis.asyncio.Redis"])
def test_an_asyncio_store_in_a_blocking_path_is_a_config_error(
    provider: Provider, redis_url: str, client: str
) -> None:
    import redis.asyncio

    from logto_rs import LogtoClient, LogtoConfig, LogtoConfigError
    from logto_rs.backchannel import MARK_KEY, BackchannelLogout, RedisRevocations
    from logto_rs.redis_storage import AsyncRedisClient

    # redis.asyncio's pool makes an asyncio.Lock when it is built, which on Python 3.9 asks for the
    # current event loop: the test gives it one, and runs the async twin on that loop.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
        shared = (
            AsyncRedisClient(redis_url)
            if client == "AsyncRedisClient"
            else redis.asyncio.Redis.from_url(redis_url)
        )
        handler = BackchannelLogout(LogtoClient(config), RedisRevocations(shared, "web-app"))
        token = logout_token(provider, sub="user-alice")
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(LogtoConfigError, match="synchronous redis.Redis") as refused:
                handler.signed_out({MARK_KEY: "1000:mark-id"}, None, None)
            assert refused.value.code == "config.invalid"
            with pytest.raises(LogtoConfigError, match="synchronous redis.Redis"):
                handler.is_ended(
                    {MARK_KEY: "1000:mark-id"},
                    provider.sign_jwt({"sub": "user-alice", "iat": 1000}, {}, "provider"),
                )
            with pytest.raises(LogtoConfigError, match="synchronous redis.Redis"):
                handler.respond({"logout_token": token})
            gc.collect()
        assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []

        async def respond() -> Any:  # the async twin takes it
            answer = await handler.respond_async({"logout_token": token})
            await shared.aclose()
            return answer

        answer = loop.run_until_complete(respond())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert (answer.status, answer.body) == (200, {})
