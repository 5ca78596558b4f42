"""The Flask integration over Flask's test client, against the real provider and a real Redis."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import warnings
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import redis
import redis.asyncio
from flask import Flask, g
from flask.testing import FlaskClient

from logto_rs import (
    LogtoClient,
    LogtoConfig,
    LogtoConfigError,
    LogtoException,
    LogtoStorageError,
    Storage,
    UserInfoScope,
)
from logto_rs.flask import (
    AsyncRedisSessionStorage,
    FlaskSessionStorage,
    LogtoFlask,
    LogtoInsecureCookieWarning,
    LogtoSessionTooLargeWarning,
    RedisSessionStorage,
    authenticated,
    safe_next,
)
from logto_rs.redis_storage import session_key
from provider_harness import Provider, complete_sign_in

HOST = "127.0.0.1"
CALLBACK = f"http://{HOST}/callback"
API = "https://api.example.com"


def make_app(provider: Provider, storage: Storage, **config: Any) -> Flask:
    app = Flask(__name__)
    app.secret_key = "test-secret-key"
    app.config["SERVER_NAME"] = HOST
    fields: dict[str, Any] = {
        "endpoint": provider.endpoint,
        "appId": "web-app",
        "appSecret": "web-app-secret",
        "scopes": [UserInfoScope.email, UserInfoScope.custom_data],
    }
    fields.update(config)
    LogtoFlask(app, LogtoConfig(**fields), storage=storage)

    @app.route("/")
    def home() -> str:
        return "home"

    @app.route("/protected")
    @authenticated()
    def protected() -> dict[str, Any]:
        return {"sub": g.user.sub, "kind": type(g.user).__name__}

    @app.route("/protected/redirect")
    @authenticated(shouldRedirect=True)
    def protected_redirect() -> str:
        return f"hello {g.user.name}"

    @app.route("/protected/userinfo")
    @authenticated(fetchUserInfo=True)
    def userinfo() -> str:
        return str(g.user.model_dump_json(exclude_unset=True))

    @app.route("/async/protected")
    @authenticated(fetchUserInfo=True)
    async def async_protected() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"sub": g.user.sub, "custom_data": g.user.custom_data}

    return app


SAME_ORIGIN = {"Origin": f"http://{HOST}"}


def sign_out(client: FlaskClient) -> Any:
    """What the demo's sign-out button sends: a same-origin POST."""
    return client.post("/sign-out", headers=SAME_ORIGIN)


def sign_in(client: FlaskClient, next_path: str = "") -> str:
    """/sign-in → provider → /callback; returns where the callback redirected."""
    response = client.get("/sign-in" + (f"?next={next_path}" if next_path else ""))
    assert response.status_code == 302
    callback = complete_sign_in(response.headers["Location"], CALLBACK)
    response = client.get(callback.replace(f"http://{HOST}", ""))
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


@pytest.fixture(params=["cookie", "redis"])
def storage(request: pytest.FixtureRequest) -> Storage:
    if request.param == "cookie":
        return FlaskSessionStorage()
    return RedisSessionStorage(request.getfixturevalue("redis_client"))


def test_sign_in_protected_views_and_sign_out(provider: Provider, storage: Storage) -> None:
    app = make_app(provider, storage)
    client = app.test_client()
    assert sign_in(client, "/protected") == "/protected"

    response = client.get("/protected")
    assert response.status_code == 200
    assert response.get_json() == {"sub": "user-alice", "kind": "IdTokenClaims"}
    info = json.loads(client.get("/protected/userinfo").get_data(as_text=True))
    assert info["sub"] == "user-alice" and info["custom_data"]["plan"] == "pro"
    assert client.get("/protected/redirect").get_data(as_text=True) == "hello Alice Liddell"
    async_view = client.get("/async/protected").get_json()
    assert async_view == {
        "sub": "user-alice",
        "custom_data": {"plan": "pro", "preferences": {"theme": "dark"}},
    }

    response = sign_out(client)
    assert response.status_code == 303
    location = response.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(provider.issuer + "/session/end")
    assert query["post_logout_redirect_uri"] == [f"http://{HOST}/"] and "id_token_hint" in query
    assert client.get("/protected").status_code == 401


def test_unauthenticated_answers(provider: Provider, storage: Storage) -> None:
    client = make_app(provider, storage).test_client()
    response = client.get("/protected")
    assert response.status_code == 401 and response.get_json() == {"error": "Not authenticated"}
    assert client.get("/async/protected").status_code == 401
    response = client.get("/protected/redirect?tab=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in?next=%2Fprotected%2Fredirect%3Ftab%3D1"
    # After signing in from there, the user lands back where they were going.
    next_path = parse_qs(urlsplit(response.headers["Location"]).query)["next"][0]
    assert sign_in(client, next_path.replace("?", "%3F").replace("=", "%3D")) == "/protected/redirect?tab=1"


def test_same_origin_paths_are_kept() -> None:
    assert safe_next("/a/b?c=d#e") == "/a/b?c=d#e"
    assert safe_next("/\r\nSet-Cookie:x") == "/"


def session_of(app: Flask, client: FlaskClient) -> dict[str, Any]:
    cookie = client.get_cookie("session", domain=HOST)
    assert cookie is not None
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return dict(serializer.loads(cookie.value))


def test_redis_keeps_tokens_server_side(provider: Provider, redis_client: redis.Redis) -> None:
    app = make_app(provider, RedisSessionStorage(redis_client, ttl=timedelta(hours=1)))
    client = app.test_client()
    sign_in(client)
    cookie_session = session_of(app, client)
    assert set(cookie_session) == {"logto_sid", "logto_signed_in"}  # the id, and when it signed in
    sid = cookie_session["logto_sid"]
    keys = sorted(k.decode() for k in redis_client.keys("logto:*"))
    assert keys == [session_key("logto:", sid, k) for k in ("accessTokenMap", "idToken", "refreshToken")]
    assert all(0 < redis_client.ttl(k) <= 3600 for k in keys)
    # Two browsers, two sessions: their keys never mix.
    other = app.test_client()
    sign_in(other)
    assert session_of(app, other)["logto_sid"] != sid
    assert len(redis_client.keys("logto:*")) == 6
    sign_out(client)
    assert sorted(k.decode() for k in redis_client.keys("logto:*")) == sorted(
        k.decode() for k in redis_client.keys(session_key("logto:", session_of(app, other)["logto_sid"], "*"))
    )
    # The emptied session cookie is deleted altogether.
    assert client.get_cookie("session", domain=HOST) is None


def token_app(provider: Provider, storage: FlaskSessionStorage) -> Flask:
    """An app with a /tokens view that caches three more access tokens in the session."""
    app = make_app(
        provider,
        storage,
        scopes=["read:products", "read:members", "urn:logto:scope:organizations", UserInfoScope.email],
        resources=[API],
    )
    extension: LogtoFlask = app.extensions["logto_rs"]

    @app.route("/tokens")
    def tokens() -> str:
        blocking = extension.client.blocking
        assert blocking.getAccessToken(API)
        assert blocking.getOrganizationToken("org-acme")
        assert blocking.getOrganizationToken("org-globex")
        return str(storage.cookie_size())

    return app


def test_cookie_size_is_measured_like_the_browser_sees_it(provider: Provider) -> None:
    storage = FlaskSessionStorage()
    client = token_app(provider, storage).test_client()
    sign_in(client)
    response = client.get("/tokens")
    measured = int(response.get_data(as_text=True))
    set_cookie = response.headers["Set-Cookie"]
    assert abs(measured - len(set_cookie)) < 120, (measured, len(set_cookie))


def test_cookie_session_warns_before_the_browser_drops_it(provider: Provider) -> None:
    # Budget 2,000 bytes (the rest of a 4 KB cookie taken by the app's own session data): an ID
    # token and a refresh token fit; three more access tokens do not.
    client = token_app(provider, FlaskSessionStorage(max_cookie_bytes=2000)).test_client()
    with warnings.catch_warnings():
        warnings.simplefilter("error", LogtoSessionTooLargeWarning)
        sign_in(client)
    with pytest.warns(LogtoSessionTooLargeWarning, match="RedisSessionStorage"):
        assert client.get("/tokens").status_code == 200


def test_strict_cookie_session_refuses_to_grow_past_the_limit(provider: Provider) -> None:
    storage = FlaskSessionStorage(max_cookie_bytes=2000, strict=True)
    app = token_app(provider, storage)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    client = app.test_client()
    sign_in(client)
    with pytest.raises(LogtoStorageError) as caught:
        client.get("/tokens")
    assert isinstance(caught.value.__cause__, LogtoException)
    assert caught.value.__cause__.code == "storage.cookie_too_large"


def test_async_redis_storage_through_the_whole_flow(provider: Provider, redis_url: str) -> None:
    app = Flask(__name__)
    app.secret_key = "test-secret-key"

    async def flow() -> None:
        connection = redis.asyncio.Redis.from_url(redis_url)
        storage = AsyncRedisSessionStorage(connection, prefix="async:")
        client = LogtoClient(
            LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret"),
            storage=storage,
        )
        with app.test_request_context("/"):
            url = await client.signIn(CALLBACK)
            await client.handleSignInCallback(await asyncio.to_thread(complete_sign_in, url, CALLBACK))
            assert await client.isAuthenticatedAsync()
            assert (await client.fetchUserInfo()).sub == "user-alice"
            assert len(await connection.keys("async:*")) == 3
            await client.signOut()
            assert await connection.keys("async:*") == []
        await connection.aclose()

    asyncio.run(flow())


def test_a_revoked_grant_inside_any_view_signs_in_again_never_500(
    provider: Provider, storage: Storage
) -> None:
    app = make_app(provider, storage, resources=[API], scopes=["read:products"])
    client = app.extensions["logto_rs"].client

    @app.route("/plain/token")
    def plain_token() -> str:  # no @authenticated: the error comes straight from the client
        return client.blocking.getAccessToken(API) or ""

    @app.post("/expire")
    def expire() -> str:
        client.blocking.clearAccessToken()
        return ""

    @app.route("/refresh-token")
    def refresh_token() -> str:
        return str(storage.get("refreshToken"))

    for accept, expected in (("application/json", 401), ("text/html", 302)):
        browser = app.test_client()
        sign_in(browser)
        assert browser.get("/plain/token").status_code == 200
        # The grant is revoked at the provider (signed out elsewhere, an admin, a detected theft).
        revoked = httpx.post(
            provider.revocation_endpoint,
            data={"token": browser.get("/refresh-token").get_data(as_text=True)},
            auth=("web-app", "web-app-secret"),
        )
        assert revoked.status_code == 200
        assert browser.post("/expire").status_code == 200
        response = browser.get("/plain/token", headers={"Accept": accept})
        assert response.status_code == expected, response.get_data(as_text=True)
        if expected == 401:
            assert response.get_json() == {"error": "Not authenticated"}
        else:
            assert urlsplit(response.headers["Location"]).path == "/sign-in"


def test_async_redis_storage_is_refused_with_a_clear_error(provider: Provider) -> None:
    app = Flask(__name__)

    async def make_storage() -> AsyncRedisSessionStorage:  # Python 3.9's asyncio objects need a loop
        return AsyncRedisSessionStorage(redis.asyncio.Redis())

    storage = asyncio.run(make_storage())
    with pytest.raises(LogtoConfigError) as caught:
        LogtoFlask(app, LogtoConfig(endpoint=provider.endpoint, appId="web-app"), storage=storage)
    assert "RedisSessionStorage" in str(caught.value)


def test_cookie_defaults_and_the_insecure_cookie_warning(provider: Provider) -> None:
    app = make_app(provider, FlaskSessionStorage())
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    kept = Flask(__name__)
    kept.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    LogtoFlask(kept, LogtoConfig(endpoint=provider.endpoint, appId="web-app"))
    assert kept.config["SESSION_COOKIE_SAMESITE"] == "Strict"
    # Loopback: no warning. Another host without Secure: one warning, once.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.test_client().get("/")
    public = make_app(provider, FlaskSessionStorage())
    public.config["SERVER_NAME"] = "app.example.com"
    with pytest.warns(LogtoInsecureCookieWarning):
        public.test_client().get("/", base_url="http://app.example.com")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        public.test_client().get("/", base_url="http://app.example.com")


def test_starting_a_sign_in_does_not_sign_the_user_out(provider: Provider, storage: Storage) -> None:
    client = make_app(provider, storage).test_client()
    sign_in(client)
    assert client.get("/sign-in").status_code == 302  # abandoned at the provider
    assert client.get("/protected").get_json()["sub"] == "user-alice"


@pytest.mark.parametrize("mode", ["status500", "html"])
@pytest.mark.parametrize("path", ["/protected/userinfo", "/async/protected"])
def test_a_provider_outage_behind_authenticated_is_503(provider: Provider, mode: str, path: str) -> None:
    client = make_app(provider, FlaskSessionStorage()).test_client()
    sign_in(client)
    provider.fault("userinfo", mode, times=2)
    response = client.get(path)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert client.get(path).status_code == 503
    assert client.get(path).status_code == 200  # back once the provider is


def test_a_stateless_error_callback_shows_no_attacker_text(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_app(provider, FlaskSessionStorage()).test_client()
    client.get("/sign-in")
    text = "Your account is locked. Call +1-555-0100\r\nINFO forged log line"
    query = urlencode({"error": "access_denied", "error_description": text})
    with caplog.at_level("WARNING", logger="logto_rs.flask"):
        response = client.get(f"/callback?{query}")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "callback.missing_state" in page
    assert "555" not in page and "locked" not in page
    assert all(
        "\n" not in record.getMessage() and "555" not in record.getMessage() for record in caplog.records
    )


def test_a_request_binds_the_apps_client_to_its_own_session(provider: Provider, storage: Storage) -> None:
    app = make_app(provider, storage)
    logto = app.extensions["logto_rs"]
    app_client = logto.client  # outside a request: the app's one client

    @app.route("/bound")
    def bound() -> dict[str, Any]:
        client = logto.client
        assert client is logto.client_for() and client is not app_client
        assert client.config is app_client.config  # one configuration, pool and caches
        # The request's storage holds the request's session: it reads it from any thread.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            claims = pool.submit(client.blocking.getIdTokenClaims).result()
        return {"sub": claims.sub}

    browser = app.test_client()
    sign_in(browser)
    assert browser.get("/bound").get_json() == {"sub": "user-alice"}
