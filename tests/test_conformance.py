"""The same browser journeys over Flask, FastAPI and Django, with the same expected answers.

Each site is served on 127.0.0.1 by a real server in this process (werkzeug's threaded WSGI
server for Flask and Django, uvicorn for FastAPI) against the development provider, and driven
by one httpx browser per user: sign-in and ``next``, the sign-up route, CSRF-safe sign-out, the
callback error page, an ended session, a provider outage, a session store outage (a real
redis-server frozen with SIGSTOP) and back-channel logout.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi_server import serve as serve_asgi
from flask import Flask, g
from starlette.middleware.sessions import SessionMiddleware
from werkzeug.serving import make_server

import django_site
from logto_rs import IdTokenClaims, LogtoConfig, LogtoContext, UserInfoResponse, UserInfoScope
from logto_rs.fastapi import LogtoFastAPI
from logto_rs.fastapi import RedisSessionStorage as FastAPIRedisSessionStorage
from logto_rs.flask import LogtoFlask, RedisSessionStorage, authenticated, get_context
from provider_harness import Provider, complete_sign_in, free_port

django_site.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.test import override_settings  # noqa: E402

FRAMEWORKS = ["flask", "fastapi", "django"]
EVENT = "http://schemas.openid.net/event/backchannel-logout"
API = "https://api.example.com"
REDIS_TIMEOUTS = {"socket_timeout": 1, "socket_connect_timeout": 1}
HOSTILE = "Your account is locked. Call +1-555-0100 <script>alert(1)</script>"


@dataclass
class Site:
    """A served site: its base URL and the paths of its routes and protected views."""

    url: str
    sign_in: str
    sign_up: str
    callback: str
    sign_out: str
    backchannel: str
    protected: str
    userinfo: str
    context: str

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)

    def sign_in_as(
        self, browser: httpx.Client, next_path: Optional[str] = None, username: str = "alice"
    ) -> str:
        """The round trip through the site and the provider; returns where the callback sends the user."""
        to_provider = browser.get(self.sign_in, params={"next": next_path} if next_path else None)
        assert to_provider.status_code == 302, to_provider.text
        location = to_provider.headers["Location"]
        back = browser.get(complete_sign_in(location, self.url + self.callback, username=username))
        assert back.status_code == 302, back.text
        return back.headers["Location"]

    def sign_out_of(self, browser: httpx.Client, origin: Optional[str]) -> httpx.Response:
        """A POST from the sign-out page's form (with Django's CSRF token), from ``origin``."""
        page = browser.get(self.sign_out)
        assert page.status_code == 200 and 'method="post"' in page.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        headers = {"Origin": origin} if origin else {}
        form = {"csrfmiddlewaretoken": token.group(1)} if token else {}
        return browser.post(self.sign_out, data=form, headers=headers)


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """``app`` served by werkzeug's threaded server in a background thread; yields the base URL."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=20)


def config(provider: Provider) -> LogtoConfig:
    return LogtoConfig(
        endpoint=provider.endpoint,
        appId="web-app",
        appSecret="web-app-secret",
        scopes=[UserInfoScope.email, UserInfoScope.custom_data, UserInfoScope.organizations],
        resources=[API],
    )


def context_answer(plain: LogtoContext, full: LogtoContext) -> dict[str, Any]:
    """What every site's context view answers: the plain context and the one with every token."""
    return {
        "is_authenticated": plain.is_authenticated,
        "sub": plain.claims.sub if plain.claims else None,
        "user_info": full.user_info.sub if full.user_info else None,
        "access_tokens": sorted(full.access_tokens),
        "organization_tokens": sorted(full.organization_tokens),
    }


def flask_app(provider: Provider, redis_url: Optional[str] = None) -> Flask:
    app = Flask(__name__)
    app.secret_key = "conformance-secret"
    storage = None
    if redis_url is not None:
        import redis

        storage = RedisSessionStorage(redis.Redis.from_url(redis_url, **REDIS_TIMEOUTS))
    LogtoFlask(app, config(provider), storage=storage)

    @app.route("/protected")
    @authenticated()
    def protected() -> dict[str, Any]:
        return {"sub": g.user.sub}

    @app.route("/userinfo")
    @authenticated(fetchUserInfo=True)
    def userinfo() -> dict[str, Any]:
        return {"sub": g.user.sub}

    @app.route("/context")
    def context() -> dict[str, Any]:
        full = get_context(fetch_user_info=True, access_tokens=True, organization_tokens=True)
        return context_answer(get_context(), full)

    return app


def fastapi_app(provider: Provider, redis_url: Optional[str] = None) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key="conformance-secret")
    storage = None if redis_url is None else FastAPIRedisSessionStorage(redis_url, **REDIS_TIMEOUTS)
    logto = LogtoFastAPI(config(provider), storage=storage)
    logto.init_app(app)

    @app.get("/protected")
    async def protected(user: IdTokenClaims = Depends(logto.claims())) -> dict[str, Any]:  # noqa: B008
        return {"sub": user.sub}

    @app.get("/userinfo")
    async def userinfo(user: UserInfoResponse = Depends(logto.userinfo())) -> dict[str, Any]:  # noqa: B008
        return {"sub": user.sub}

    every = logto.context(fetch_user_info=True, access_tokens=True, organization_tokens=True)

    @app.get("/context")
    async def context(
        plain: LogtoContext = Depends(logto.context()),  # noqa: B008
        full: LogtoContext = Depends(every),  # noqa: B008
    ) -> dict[str, Any]:
        return context_answer(plain, full)

    return app


PATHS = {
    "flask": (
        "/sign-in",
        "/sign-up",
        "/callback",
        "/sign-out",
        "/backchannel-logout",
        "/protected",
        "/userinfo",
        "/context",
    ),
    "django": (
        "/auth/sign-in/",
        "/auth/sign-up/",
        "/auth/callback/",
        "/auth/sign-out/",
        "/auth/backchannel-logout/",
        "/claims/",
        "/claims-async/",
        "/context/",
    ),
}
PATHS["fastapi"] = PATHS["flask"]


def django_redis_settings(redis_url: Optional[str]) -> dict[str, Any]:
    """Django's sessions (and the cache of its locks and records) in Redis, or the test site's own."""
    if redis_url is None:
        return {}
    cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    return {
        "CACHES": {"default": {**cache, "OPTIONS": REDIS_TIMEOUTS}},
        "SESSION_ENGINE": "django.contrib.sessions.backends.cache",
    }


@contextmanager
def served(framework: str, provider: Provider, redis_url: Optional[str] = None) -> Iterator[str]:
    """The framework's site on the provider; its sessions in Redis at ``redis_url`` when given."""
    if framework == "flask":
        with serve_wsgi(flask_app(provider, redis_url)) as url:
            yield url
    elif framework == "fastapi":
        with serve_asgi(fastapi_app(provider, redis_url)) as url:
            yield url
    else:
        from django.conf import settings

        app = {"ENDPOINT": provider.endpoint, "APP_ID": "web-app", "APP_SECRET": "web-app-secret"}
        values = {**settings.LOGTO, **app}
        with (
            override_settings(LOGTO=values, **django_redis_settings(redis_url)),
            serve_wsgi(WSGIHandler()) as url,
        ):
            yield url


@contextmanager
def site_of(framework: str, provider: Provider, redis_url: Optional[str] = None) -> Iterator[Site]:
    with served(framework, provider, redis_url) as url:
        paths = PATHS[framework]
        provider.add_redirect_uris("web-app", [url + paths[2]], [url + "/"])
        yield Site(url, *paths)


@pytest.fixture(params=FRAMEWORKS)
def site(request: pytest.FixtureRequest, provider: Provider) -> Iterator[Site]:
    with site_of(request.param, provider) as served_site:
        yield served_site


def state_of(authorization_url: str) -> str:
    return parse_qs(urlsplit(authorization_url).query)["state"][0]


def logout_token(provider: Provider, sub: str) -> str:
    payload = {
        "iss": provider.issuer,
        "aud": "web-app",
        "iat": int(time.time()),
        "jti": uuid.uuid4().hex,
        "events": {EVENT: {}},
        "sub": sub,
    }
    return provider.sign_jwt(payload, {"typ": "logout+jwt"}, "provider")


def test_an_anonymous_request_is_redirected_when_navigating_else_401(site: Site) -> None:
    browser = site.browser()
    page = browser.get(site.protected + "?tab=1", headers={"Accept": "text/html"})
    assert page.status_code == 302
    assert page.headers["Location"] == f"{site.sign_in}?{urlencode({'next': site.protected + '?tab=1'})}"
    api = browser.get(site.protected, headers={"Accept": "application/json"})
    assert api.status_code == 401
    assert "Not authenticated" in api.text


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/protected?tab=1", True),
        ("https://evil.example/", False),
        ("//evil.example/path", False),
        ("/\\evil.example", False),
        ("javascript:alert(1)", False),
    ],
)
def test_sign_in_returns_to_next_only_on_the_same_origin(site: Site, target: str, kept: bool) -> None:
    browser = site.browser()
    assert site.sign_in_as(browser, target) == (target if kept else "/")
    assert browser.get(site.protected).json() == {"sub": "user-alice"}


def test_next_may_be_an_absolute_url_of_the_site_itself(site: Site) -> None:
    target = site.url + site.protected
    assert site.sign_in_as(site.browser(), target) == target


def test_the_sign_up_route_opens_logtos_sign_up_screen(site: Site) -> None:
    browser = site.browser()
    to_provider = browser.get(site.sign_up, params={"next": site.protected})
    assert to_provider.status_code == 302
    assert parse_qs(urlsplit(to_provider.headers["Location"]).query)["interaction_mode"] == ["signUp"]
    callback = complete_sign_in(to_provider.headers["Location"], site.url + site.callback)
    back = browser.get(callback)
    assert back.status_code == 302 and back.headers["Location"] == site.protected
    assert browser.get(site.protected).json() == {"sub": "user-alice"}


def test_only_a_same_origin_post_signs_out(provider: Provider, site: Site) -> None:
    browser = site.browser()
    site.sign_in_as(browser)
    assert site.sign_out_of(browser, "https://evil.example").status_code == 403
    assert site.sign_out_of(browser, None).status_code == 403
    assert browser.get(site.protected).json() == {"sub": "user-alice"}
    provider.reset()
    out = site.sign_out_of(browser, site.url)
    assert out.status_code == 303
    end_session = out.headers["Location"]
    assert end_session.startswith(provider.issuer + "/session/end?")
    assert parse_qs(urlsplit(end_session).query)["post_logout_redirect_uri"] == [site.url + "/"]
    assert provider.requests(path="/oidc/token/revocation")
    assert browser.get(site.protected, headers={"Accept": "application/json"}).status_code == 401


def test_the_callback_error_page_shows_fixed_words_and_the_code(provider: Provider, site: Site) -> None:
    browser = site.browser()
    state = state_of(browser.get(site.sign_in).headers["Location"])
    hostile = {"error": "access_denied", "error_description": HOSTILE, "state": state, "iss": provider.issuer}
    query = urlencode(hostile)
    page = browser.get(f"{site.callback}?{query}")
    assert page.status_code == 400
    assert "callback.authorization_error" in page.text
    assert "555" not in page.text and "locked" not in page.text and "<script>" not in page.text
    forged = browser.get(f"{site.callback}?code=x&state=forged&error_description=locked")
    assert forged.status_code == 400 and "locked" not in forged.text
    # A failing provider: 502, in the same fixed words.
    to_provider = browser.get(site.sign_in).headers["Location"]
    callback = complete_sign_in(to_provider, site.url + site.callback)
    provider.fault("token", "status500")
    failed = browser.get(callback)
    assert failed.status_code == 502 and "Logto could not complete the sign-in" in failed.text


def test_a_copied_cookie_of_a_signed_out_session_is_signed_out(site: Site) -> None:
    browser = site.browser()
    site.sign_in_as(browser)
    copy = httpx.Cookies(browser.cookies)
    assert site.sign_out_of(browser, site.url).status_code == 303
    with httpx.Client(base_url=site.url, cookies=copy, follow_redirects=False) as replay:
        assert replay.get(site.protected, headers={"Accept": "application/json"}).status_code == 401


def test_a_provider_outage_is_503_with_retry_after(provider: Provider, site: Site) -> None:
    browser = site.browser()
    site.sign_in_as(browser)
    provider.fault("userinfo", "status500", times=1)
    down = browser.get(site.userinfo)
    assert down.status_code == 503, down.text
    assert down.headers["Retry-After"] == "5"
    assert browser.get(site.userinfo).json()["sub"] == "user-alice"  # back with the provider


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_session_store_outage_is_503_with_retry_after(
    provider: Provider, framework: str, own_redis_server: tuple[str, subprocess.Popen[bytes]]
) -> None:
    redis_url, redis_process = own_redis_server
    with site_of(framework, provider, redis_url) as site:
        browser = site.browser()
        site.sign_in_as(browser)
        assert browser.get(site.protected).json() == {"sub": "user-alice"}
        redis_process.send_signal(signal.SIGSTOP)
        try:
            down = browser.get(site.protected, headers={"Accept": "application/json"})
        finally:
            redis_process.send_signal(signal.SIGCONT)
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"] == "5"
        assert browser.get(site.protected).json() == {"sub": "user-alice"}  # back with the store


def test_a_back_channel_logout_ends_the_users_sessions(provider: Provider, site: Site) -> None:
    alice, bob = site.browser(), site.browser()
    site.sign_in_as(alice)
    site.sign_in_as(bob, username="bob")
    refused = alice.post(site.backchannel, data={"logout_token": "not-a-token"})
    assert refused.status_code == 400 and refused.headers["Cache-Control"] == "no-store"
    token = logout_token(provider, "user-alice")
    done = httpx.post(site.url + site.backchannel, data={"logout_token": token})
    assert done.status_code == 200 and done.json() == {}
    assert alice.get(site.protected, headers={"Accept": "application/json"}).status_code == 401
    assert bob.get(site.protected).json() == {"sub": "user-bob"}


def test_the_context_gives_claims_userinfo_and_every_token_in_one_call(site: Site) -> None:
    browser = site.browser()
    assert browser.get(site.context).json() == {
        "is_authenticated": False,
        "sub": None,
        "user_info": None,
        "access_tokens": [],
        "organization_tokens": [],
    }
    site.sign_in_as(browser)
    assert browser.get(site.context).json() == {
        "is_authenticated": True,
        "sub": "user-alice",
        "user_info": "user-alice",
        "access_tokens": [API],
        "organization_tokens": ["org-acme", "org-globex"],
    }
