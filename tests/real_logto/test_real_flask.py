"""LogtoFlask against the real Logto over HTTP (Flask's test client), with the signed
cookie session and with RedisSessionStorage on a real redis-server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
from flask import Flask, g
from flask.testing import FlaskClient

from conftest import ORGANIZATIONS_SCOPE, RealLogto, experience_sign_in, jwt_parts
from logto_rs import LogtoConfig, Storage
from logto_rs.flask import FlaskSessionStorage, LogtoFlask, RedisSessionStorage, authenticated

HOST = "127.0.0.1:5000"  # a redirect URI registered for the `web` app
ORIGIN = f"http://{HOST}"


def make_app(logto: RealLogto, storage: Storage) -> tuple[Flask, LogtoFlask]:
    app = Flask(__name__)
    app.secret_key = "real-logto-test-secret"
    app.config["SERVER_NAME"] = HOST
    config = LogtoConfig(
        endpoint=logto.endpoint,
        appId=logto.web[0],
        appSecret=logto.web[1],
        scopes=["email", ORGANIZATIONS_SCOPE, "read:products"],
        resources=[logto.resource],
    )
    logto_flask = LogtoFlask(app, config, storage=storage)

    @app.route("/protected")
    @authenticated()
    def protected() -> dict[str, Any]:
        return {"sub": g.user.sub}

    @app.route("/protected/userinfo")
    @authenticated(fetchUserInfo=True)
    def userinfo() -> str:
        return str(g.user.model_dump_json(exclude_unset=True))

    @app.route("/async/products")
    @authenticated()
    async def products() -> dict[str, Any]:
        await asyncio.sleep(0)
        token = await logto_flask.client.getAccessToken(logto.resource)
        organization = await logto_flask.client.getOrganizationToken(logto.organization_id)
        return {"api": jwt_parts(token or "")[1], "org": jwt_parts(organization or "")[1]}

    @app.route("/products")
    @authenticated()
    def products_sync() -> dict[str, Any]:
        token = logto_flask.client.blocking.getAccessToken(logto.resource)
        return {"api": jwt_parts(token or "")[1]}

    return app, logto_flask


def sign_in(client: FlaskClient, logto: RealLogto, next_path: str = "/protected") -> str:
    response = client.get(f"/sign-in?next={next_path}")
    assert response.status_code == 302
    callback = experience_sign_in(response.headers["Location"], logto)
    assert callback.startswith(ORIGIN + "/callback?")
    response = client.get(callback.removeprefix(ORIGIN))
    assert response.status_code == 302, response.get_data(as_text=True)
    return str(response.headers["Location"])


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url=redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(params=["cookie", "redis"])
def storage(request: pytest.FixtureRequest) -> Storage:
    if request.param == "cookie":
        return FlaskSessionStorage()
    return RedisSessionStorage(request.getfixturevalue("redis_client"), ttl=timedelta(minutes=10))


def test_flask_journey(logto: RealLogto, storage: Storage) -> None:
    app, _ = make_app(logto, storage)
    client = app.test_client()
    assert client.get("/protected").status_code == 401
    assert sign_in(client, logto) == "/protected"

    assert client.get("/protected").get_json() == {"sub": logto.user_id("alice")}
    info = json.loads(client.get("/protected/userinfo").get_data(as_text=True))
    assert info["sub"] == logto.user_id("alice") and info["username"] == "alice"
    assert info["email"] == "alice@example.com"

    tokens = client.get("/async/products").get_json()
    assert tokens["api"]["aud"] == logto.resource and "read:products" in tokens["api"]["scope"]
    assert tokens["org"]["aud"] == f"urn:logto:organization:{logto.organization_id}"
    # a sync view of the same session gets the token the async one cached
    assert client.get("/products").get_json()["api"]["jti"] == tokens["api"]["jti"]

    response = client.post("/sign-out", headers={"Origin": ORIGIN})
    assert response.status_code == 303
    end_session = response.headers["Location"]
    query = parse_qs(urlsplit(end_session).query)
    assert end_session.startswith(logto.issuer + "/session/end?")
    assert query["post_logout_redirect_uri"] == [ORIGIN + "/"] and query["client_id"] == [logto.web[0]]
    assert client.get("/protected").status_code == 401

    # Logto accepts the end-session request (id_token_hint, registered post-logout URI).
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        page = browser.get(end_session)
        assert page.status_code == 200 and "<form" in page.text


def test_redis_session_lives_server_side(logto: RealLogto, redis_client: redis.Redis) -> None:
    app, _ = make_app(logto, RedisSessionStorage(redis_client, ttl=timedelta(minutes=10)))
    client = app.test_client()
    sign_in(client, logto)
    keys = redis_client.keys("logto:*")
    assert keys, "the tokens live in Redis"
    stored = b"".join(redis_client.get(k) or b"" for k in keys)
    cookie = client.get_cookie("session", domain="127.0.0.1")
    assert cookie is not None and len(cookie.value) < 300  # only a session id
    assert client.get("/products").status_code == 200
    assert len(redis_client.keys("logto:*")) >= len(keys)
    assert stored
    assert client.post("/sign-out", headers={"Origin": ORIGIN}).status_code == 303
    assert redis_client.keys("*") == []
    assert client.get("/protected").status_code == 401


def test_two_browsers_two_sessions(logto: RealLogto, redis_client: redis.Redis) -> None:
    app, _ = make_app(logto, RedisSessionStorage(redis_client, ttl=timedelta(minutes=10)))
    first, second = app.test_client(), app.test_client()
    sign_in(first, logto)
    assert second.get("/protected").status_code == 401
    sign_in(second, logto)
    assert first.post("/sign-out", headers={"Origin": ORIGIN}).status_code == 303
    assert first.get("/protected").status_code == 401
    assert second.get("/protected").get_json() == {"sub": logto.user_id("alice")}
