"""The FastAPI integration, served by uvicorn against the development provider: the demo app with
cookie and Redis sessions, the dependencies, ended sessions, callbacks that fail, sign-out,
proxies and plain Starlette."""

import asyncio
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
from fastapi import Depends, FastAPI, Request
from fastapi_server import serve, sign_in, uvicorn_process
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware

from logto_rs import (
    IdTokenClaims,
    LogtoClient,
    LogtoConfig,
    LogtoInvalidGrantError,
    LogtoNotAuthenticatedError,
)
from logto_rs.fastapi import (
    CookieSessionStorage,
    LogtoFastAPI,
    LogtoInsecureCookieWarning,
    LogtoSessionTooLargeWarning,
    RedisSessionStorage,
)
from provider_harness import Provider, complete_sign_in

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import fastapi_app  # noqa: E402

API = "https://api.example.com"


def web_config(provider: Provider, **fields: Any) -> LogtoConfig:
    return LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret", **fields)


@pytest.fixture(params=["cookie", "redis"])
def storage(request: pytest.FixtureRequest) -> Optional[RedisSessionStorage]:
    if request.param == "cookie":
        return None
    return RedisSessionStorage(request.getfixturevalue("redis_url"), prefix=f"logto-test-{id(request)}:")


@pytest.fixture
def demo(provider: Provider, storage: Optional[RedisSessionStorage]) -> Iterator[str]:
    app = fastapi_app.create_app(
        fastapi_app.demo_config(provider.endpoint, "web-app", "web-app-secret"), storage
    )
    with serve(app) as url:
        yield url


def test_the_demo_sign_in_claims_api_organizations_sign_out(
    provider: Provider, demo: str, storage: Optional[RedisSessionStorage], redis_url: str
) -> None:
    anonymous = httpx.get(demo + "/protected/userinfo?tab=1", headers={"Accept": "text/html"})
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == "/sign-in?next=%2Fprotected%2Fuserinfo%3Ftab%3D1"

    browser = sign_in(demo, next_path="/protected/userinfo?tab=1")
    assert "You are signed out" in httpx.get(demo + "/").text  # another browser
    home = browser.get("/")
    assert '<b id="name">Alice Liddell</b>' in home.text
    userinfo = browser.get("/protected/userinfo")
    assert userinfo.status_code == 200 and "&quot;plan&quot;: &quot;pro&quot;" in userinfo.text
    api = browser.get("/protected/api")
    assert api.status_code == 200 and '<span id="api-status">200</span>' in api.text
    assert "user-alice" in api.text and "read:products" in api.text
    organizations = browser.get("/protected/organizations")
    assert "org-acme: scopes <code>" in organizations.text

    if storage is not None:  # tokens in Redis, only an id in the cookie
        store = redis.Redis.from_url(redis_url)
        assert store.keys(storage.prefix + "*:idToken")
        assert len(str(browser.cookies.get("session"))) < 200

    assert '<form method="post"' in browser.get("/sign-out").text
    refused = browser.post("/sign-out")  # no Origin, Referer nor Sec-Fetch-Site: refused
    assert refused.status_code == 403
    refused = browser.post("/sign-out", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and "Alice" in browser.get("/").text
    out = browser.post("/sign-out", headers={"Origin": demo})
    assert out.status_code == 303
    end_session = out.headers["Location"]
    assert end_session.startswith(provider.issuer + "/session/end?")
    assert parse_qs(urlsplit(end_session).query)["post_logout_redirect_uri"] == [demo + "/"]
    assert "You are signed out" in browser.get("/").text
    assert browser.get("/protected/api").status_code == 302
    if storage is not None:
        assert not redis.Redis.from_url(redis_url).keys(storage.prefix + "*")


def test_the_openapi_document_shows_the_bearer_scheme(demo: str) -> None:
    document = httpx.get(demo + "/openapi.json").json()
    assert document["components"]["securitySchemes"]["LogtoAccessToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A Logto access token: `Authorization: Bearer <token>`.",
    }
    assert document["paths"]["/api/products"]["get"]["security"] == [{"LogtoAccessToken": []}]
    assert set(document["paths"]) == {"/api/products"}  # the sign-in routes and pages stay out


def test_the_redis_session_id_rotates_at_sign_in(provider: Provider, redis_url: str) -> None:
    storage = RedisSessionStorage(redis_url, prefix="logto-rotate:")
    app = fastapi_app.create_app(
        fastapi_app.demo_config(provider.endpoint, "web-app", "web-app-secret"), storage
    )
    store = redis.Redis.from_url(redis_url)

    def session_ids() -> set[str]:
        return {key.decode().split(":")[1] for key in store.keys("logto-rotate:*")}

    with serve(app) as url:
        attacker = httpx.Client(base_url=url, follow_redirects=False)
        assert attacker.get("/sign-in").status_code == 302
        planted = attacker.cookies.get("session")
        attacker_ids = session_ids()
        assert planted and len(attacker_ids) == 1
        victim = httpx.Client(base_url=url, follow_redirects=False)
        victim.cookies.set("session", planted, domain="127.0.0.1")
        callback = complete_sign_in(victim.get("/sign-in").headers["Location"], url + "/callback")
        assert victim.get(callback).status_code == 302
        assert "Alice" in victim.get("/").text
        assert "You are signed out" in attacker.get("/").text
        assert not session_ids() & attacker_ids


def make_app(
    provider: Provider, logto: Optional[LogtoFastAPI] = None, **fields: Any
) -> tuple[FastAPI, LogtoFastAPI]:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key="test-secret")
    logto = logto or LogtoFastAPI(web_config(provider, **fields))
    logto.init_app(app)
    Client = Annotated[LogtoClient, Depends(logto.client_for)]

    @app.get("/me")
    async def me(user: Annotated[IdTokenClaims, Depends(logto.claims())]) -> dict[str, Any]:
        return {"sub": user.sub}

    @app.get("/me/page")
    async def me_page(
        user: Annotated[IdTokenClaims, Depends(logto.claims(should_redirect=True))],
    ) -> dict[str, Any]:
        return {"sub": user.sub}

    @app.get("/token")
    async def token(access_token: Annotated[str, Depends(logto.access_token(API))]) -> dict[str, Any]:
        return {"token": access_token}

    @app.get("/orgs/{organization_id}/token")
    async def organization_token(
        token: Annotated[str, Depends(logto.organization_token())],
    ) -> dict[str, Any]:
        return {"token": token}

    @app.get("/plain/token")
    async def plain_token(client: Client) -> dict[str, Any]:  # errors come straight from the client
        return {"token": await client.getAccessToken(API)}

    @app.post("/expire")
    async def expire(client: Client) -> dict[str, Any]:
        await client.clearAccessToken()
        return {}

    @app.get("/refresh-token")
    async def refresh_token(client: Client) -> dict[str, Any]:
        return {"token": await client.getRefreshTokenAsync()}

    @app.get("/account")
    async def account(client: Client) -> dict[str, Any]:
        profile = await client.account.getProfile()
        return {"username": profile.username}

    @app.get("/raise")
    async def raise_not_authenticated() -> None:
        raise LogtoNotAuthenticatedError("no user", "not_authenticated")

    @app.post("/big")
    async def big(client: Client, request: Request) -> dict[str, Any]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            storage = logto.storage.for_request(request)
            storage.set("accessTokenMap", "x" * 5000)
        return {"warnings": [str(w.category.__name__) for w in caught]}

    return app, logto


@pytest.fixture
def app_url(provider: Provider) -> Iterator[str]:
    app, _ = make_app(
        provider,
        scopes=["read:products", "urn:logto:scope:organizations", "read:members"],
        resources=[API],
    )
    with serve(app) as url:
        yield url


def test_dependencies_answer_401_or_redirect_and_give_tokens(app_url: str) -> None:
    anonymous = httpx.Client(base_url=app_url, follow_redirects=False)
    assert (anonymous.get("/me").status_code, anonymous.get("/me").json()) == (
        401,
        {"detail": "Not authenticated"},
    )
    page = anonymous.get("/me/page", params={"q": "1"})
    assert page.status_code == 302
    assert page.headers["Location"] == "/sign-in?next=%2Fme%2Fpage%3Fq%3D1"
    assert anonymous.get("/token").status_code == 401
    assert anonymous.get("/orgs/org-acme/token").status_code == 401
    assert anonymous.get("/plain/token").json() == {"token": None}
    assert anonymous.get("/raise", headers={"Accept": "application/json"}).status_code == 401
    raised = anonymous.get("/raise", headers={"Accept": "text/html"})
    assert raised.status_code == 302 and raised.headers["Location"].startswith("/sign-in?next=")

    browser = sign_in(app_url)
    assert browser.get("/me").json() == {"sub": "user-alice"}
    assert browser.get("/token").json()["token"].count(".") == 2
    assert browser.get("/orgs/org-acme/token").json()["token"].count(".") == 2


def test_a_routes_client_calls_the_account_api_as_its_user(app_url: str) -> None:
    anonymous = httpx.Client(base_url=app_url, follow_redirects=False)
    assert anonymous.get("/account", headers={"Accept": "application/json"}).status_code == 401
    assert sign_in(app_url).get("/account").json() == {"username": "alice"}


def test_a_revoked_grant_inside_any_route_is_401_or_a_redirect_never_500(
    provider: Provider, app_url: str
) -> None:
    for accept, expected in (("application/json", 401), ("text/html", 302)):
        browser = sign_in(app_url)
        assert browser.get("/plain/token").status_code == 200
        revoked = httpx.post(
            provider.revocation_endpoint,
            data={"token": browser.get("/refresh-token").json()["token"]},
            auth=("web-app", "web-app-secret"),
        )
        assert revoked.status_code == 200
        assert browser.post("/expire").status_code == 200
        response = browser.get("/plain/token", headers={"Accept": accept})
        assert response.status_code == expected, response.text
        if expected == 401:
            assert response.json() == {"detail": "Not authenticated"}
        else:
            assert urlsplit(response.headers["Location"]).path == "/sign-in"
        assert browser.get("/me").status_code == 401  # the session is over


def test_the_cookie_session_warns_before_the_browser_drops_it(app_url: str) -> None:
    browser = httpx.Client(base_url=app_url)
    assert browser.post("/big").json() == {"warnings": ["LogtoSessionTooLargeWarning"]}
    assert LogtoSessionTooLargeWarning.__name__ == "LogtoSessionTooLargeWarning"
    storage = CookieSessionStorage()
    # The measure is the cookie SessionMiddleware writes (base64 of the JSON, signed, attributes).
    assert 4000 + 8 + 35 < storage.cookie_size({"logto_idToken": "x" * 3000}) < 4000 + 8 + 35 + 100


def test_behind_a_proxy_the_urls_follow_the_forwarded_scheme(provider: Provider) -> None:
    provider.add_redirect_uris("web-app", ["https://127.0.0.1/callback"])
    app, _ = make_app(provider)
    with serve(app, proxy_headers=True, forwarded_allow_ips="127.0.0.1") as url:
        port = urlsplit(url).port
        browser = httpx.Client(base_url=url, follow_redirects=False, headers={"X-Forwarded-Proto": "https"})
        location = browser.get("/sign-in").headers["Location"]
        assert parse_qs(urlsplit(location).query)["redirect_uri"] == [f"https://127.0.0.1:{port}/callback"]
        page = browser.get("/me/page")
        assert page.headers["Location"].startswith("/sign-in?next=")


def test_a_configured_redirect_uri(provider: Provider) -> None:
    logto = LogtoFastAPI(
        web_config(provider),
        redirect_uri="http://127.0.0.1/callback",
        post_sign_out_redirect_uri="http://127.0.0.1/signed-out",
        callback_path="/auth/callback",
    )
    app, _ = make_app(provider, logto)
    with serve(app) as url:
        browser = httpx.Client(base_url=url, follow_redirects=False)
        location = browser.get("/sign-in").headers["Location"]
        assert parse_qs(urlsplit(location).query)["redirect_uri"] == ["http://127.0.0.1/callback"]
        callback = complete_sign_in(location, "http://127.0.0.1/callback")
        # The proxy maps the public callback onto this app's /auth/callback.
        assert browser.get(url + "/auth/callback?" + urlsplit(callback).query).status_code == 302
        out = browser.post("/sign-out", headers={"Sec-Fetch-Site": "same-origin"})
        assert "post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%2Fsigned-out" in out.headers["Location"]


def test_plain_starlette(provider: Provider) -> None:
    logto = LogtoFastAPI(web_config(provider))
    app = Starlette(
        routes=logto.routes(),
        middleware=[Middleware(SessionMiddleware, secret_key="test-secret")],
        exception_handlers=logto.exception_handlers(),
    )
    with serve(app) as url:
        browser = sign_in(url)
        assert browser.get("/sign-out").status_code == 200
        assert browser.post("/sign-out", headers={"Origin": url}).status_code == 303


def test_without_session_middleware_the_error_says_what_to_add(provider: Provider) -> None:
    app = FastAPI()
    LogtoFastAPI(web_config(provider)).init_app(app)
    with serve(app) as url:
        answer = httpx.get(url + "/sign-in")
    assert answer.status_code == 500


def test_the_redis_storage_opens_one_client_per_event_loop(redis_url: str) -> None:
    storage = RedisSessionStorage(redis_url)

    async def clients() -> tuple[int, int]:
        first, again = storage.client(), storage.client()
        assert first is again and await first.ping()
        await storage.aclose()
        return id(first), len(storage.redis._clients)

    one, left = asyncio.run(clients())
    two, _ = asyncio.run(clients())
    assert left == 0
    assert isinstance(one, int) and isinstance(two, int)

    loops = [asyncio.new_event_loop() for _ in range(2)]
    try:
        made = [loop.run_until_complete(_client_id(storage)) for loop in loops]
        assert made[0] != made[1] and len(storage.redis._clients) == 2
    finally:
        for loop in loops:
            loop.run_until_complete(storage.aclose())
            loop.close()
    assert len(storage.redis._clients) == 0


async def _client_id(storage: RedisSessionStorage) -> int:
    client = storage.client()
    assert await client.ping()
    return id(client)


def test_error_classes_are_the_ones_handled() -> None:
    logto_handlers = set(LogtoFastAPI.__init__.__code__.co_varnames)
    assert logto_handlers  # the handlers cover the two ended-session errors
    assert {LogtoInvalidGrantError, LogtoNotAuthenticatedError} <= set(
        LogtoFastAPI(LogtoConfig(endpoint="http://127.0.0.1:9", appId="x")).exception_handlers()
    )


def test_the_demo_from_the_uvicorn_command_line_keeps_codes_out_of_its_log(
    provider: Provider, redis_url: str, tmp_path: Path
) -> None:
    env = {
        "LOGTO_ENDPOINT": provider.endpoint,
        "LOGTO_APP_ID": "web-app",
        "LOGTO_APP_SECRET": "web-app-secret",
        "LOGTO_REDIS_URL": redis_url,
        "APP_SECRET_KEY": "a-fixed-key-shared-by-the-workers",
    }
    log = tmp_path / "uvicorn.log"
    with uvicorn_process("fastapi_app:app_from_env", env, log, workers=2) as server:
        browser = sign_in(server.url)
        assert "Alice Liddell" in browser.get("/").text
        assert '<span id="api-status">200</span>' in browser.get("/protected/api").text
        httpx.get(server.url + "/callback?code=the-code-0123&state=the-state-4567")
    text = log.read_text()
    assert "/callback?code=[redacted]&state=[redacted]" in text, text
    assert "the-code-0123" not in text and "the-state-4567" not in text


def test_an_insecure_cookie_on_a_public_host_is_logged_once(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="logto_rs.fastapi")
    app, _ = make_app(provider)
    with serve(app) as url, pytest.warns(LogtoInsecureCookieWarning):
        for _ in range(2):
            httpx.get(url + "/me", headers={"Host": "app.example"})
    messages = [r.getMessage() for r in caplog.records if r.name == "logto_rs.fastapi"]
    assert len(messages) == 1 and "SessionMiddleware(..., https_only=True)" in messages[0], messages
    secure = FastAPI()
    secure.add_middleware(SessionMiddleware, secret_key="k", https_only=True)
    LogtoFastAPI(web_config(provider)).init_app(secure)
    caplog.clear()
    with serve(secure) as url:
        httpx.get(url + "/sign-in", headers={"Host": "app.example"})
    assert not [r for r in caplog.records if r.name == "logto_rs.fastapi"]


def test_redirect_is_the_deprecated_name_of_should_redirect(provider: Provider) -> None:
    def reached() -> dict[str, Any]:
        return {}

    logto = LogtoFastAPI(web_config(provider, resources=[API]))
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key="test-secret")
    logto.init_app(app)
    dependencies = {
        "claims": lambda **keyword: logto.claims(**keyword),
        "userinfo": lambda **keyword: logto.userinfo(**keyword),
        "token": lambda **keyword: logto.access_token(API, **keyword),
        "org": lambda **keyword: logto.organization_token("org-acme", **keyword),
    }
    for name, dependency in dependencies.items():
        with pytest.warns(DeprecationWarning, match="redirect= is deprecated: use should_redirect="):
            old = dependency(redirect=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            new = dependency(should_redirect=True)
        with pytest.raises(TypeError, match="should_redirect= only"):
            dependency(redirect=True, should_redirect=True)
        app.add_api_route(f"/old/{name}", reached, dependencies=[Depends(old)])
        app.add_api_route(f"/new/{name}", reached, dependencies=[Depends(new)])
    with serve(app) as url:
        api_client = httpx.Client(
            base_url=url, follow_redirects=False, headers={"Accept": "application/json"}
        )
        for name in dependencies:
            old_answer, new_answer = api_client.get(f"/old/{name}"), api_client.get(f"/new/{name}")
            assert (old_answer.status_code, new_answer.status_code) == (302, 302)  # even for an API client
            assert old_answer.headers["Location"] == f"/sign-in?next=%2Fold%2F{name}"
            assert new_answer.headers["Location"] == f"/sign-in?next=%2Fnew%2F{name}"
