"""Back-channel logout in Django: the csrf-exempt view ends the sessions a logout token names
(deleted from a server-side session store, revoked for signed-cookie sessions); a bad token is
answered 400 and changes nothing."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from test_backchannel_logout import logout_token

import django_site
from provider_harness import Provider, decode_jwt

django_site.setup()

from django.conf import settings  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from test_django import logto, sign_in_django  # noqa: E402, F401

from logto_rs.django import conf  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::logto_rs.django.middleware.LogtoInsecureCookieWarning"),
    pytest.mark.usefixtures("logto"),
]

URL = "/auth/backchannel-logout/"


@pytest.fixture(autouse=True)
def session_required(provider: Provider) -> None:
    provider.set_backchannel_logout("web-app", "http://127.0.0.1:9/backchannel-logout")


def post(token: str) -> Any:
    """What Logto sends: a urlencoded form POST with no CSRF token and no session."""
    body = urlencode({"logout_token": token})
    return Client(enforce_csrf_checks=True).post(URL, body, content_type="application/x-www-form-urlencoded")


def sid_of(browser: Client) -> str:
    id_token = browser.session[conf.option("SESSION_PREFIX") + "idToken"]
    return str(decode_jwt(id_token)[1]["sid"])


def signed_in_sub(browser: Client) -> Any:
    return browser.get("/").json()["sub"]


def test_a_logout_token_ends_that_django_session_only(provider: Provider) -> None:
    laptop, phone = Client(), Client()
    sign_in_django(laptop)
    sign_in_django(phone)
    forged = post(logout_token(provider, sign="attacker", sub="user-alice", sid=sid_of(laptop)))
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_request"
    assert forged["Cache-Control"] == "no-store"
    assert signed_in_sub(laptop) == signed_in_sub(phone) == "user-alice"

    response = post(logout_token(provider, sub="user-alice", sid=sid_of(laptop)))
    assert (response.status_code, response.json()) == (200, {})
    assert response["Cache-Control"] == "no-store"
    assert laptop.get("/").json() == {"user": None, "sub": None}
    assert signed_in_sub(phone) == "user-alice"


@pytest.fixture
def signed_cookies(redis_url: str) -> Iterator[None]:
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    signed = "django.contrib.sessions.backends.signed_cookies"
    with override_settings(CACHES=caches, SESSION_ENGINE=signed):
        yield


def test_a_signed_cookie_session_is_revoked(provider: Provider, signed_cookies: None) -> None:
    alice, bob = Client(), Client()
    sign_in_django(alice)
    sign_in_django(bob, username="bob")
    assert settings.SESSION_COOKIE_NAME in alice.cookies
    assert post(logout_token(provider, sub="user-alice")).status_code == 200
    assert alice.get("/").json() == {"user": None, "sub": None}
    assert signed_in_sub(bob) == "user-bob"


def test_sign_ins_at_the_same_instant_all_land_in_the_users_entry(redis_url: str) -> None:
    # Several workers record sessions of one user at once in a shared Redis cache: none is left
    # out of the `sub` entry, so a `sub`-only logout ends them all.
    from django.core.cache import caches

    from logto_rs.django.backchannel import DjangoSessionIndex

    shared = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    with override_settings(CACHES=shared):
        caches["default"].clear()
        index = DjangoSessionIndex(f"race-{uuid.uuid4().hex}")
        record_concurrently(index)
        recorded = caches["default"].get(f"{index.index}sub:user-race")
    assert sorted(recorded) == sorted(f"session-{w}-{n}" for w in range(8) for n in range(15))


def record_concurrently(index: Any) -> None:
    """Eight threads record fifteen sessions each of one user, all at once."""
    barrier = threading.Barrier(8)

    def sign_ins(worker: int) -> None:
        barrier.wait()
        for n in range(15):
            index.record({"sub": "user-race", "sid": f"sid-{worker}-{n}"}, f"session-{worker}-{n}")

    threads = [threading.Thread(target=sign_ins, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


SESSION_ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "cache": "django.contrib.sessions.backends.cache",
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
}


@pytest.mark.parametrize("engine", sorted(SESSION_ENGINES))
def test_a_logout_during_a_refresh_is_not_undone(provider: Provider, engine: str) -> None:
    with override_settings(SESSION_ENGINE=SESSION_ENGINES[engine]):
        alice = Client(raise_request_exception=False)  # the request in flight may be interrupted
        sign_in_django(alice)
        sid = sid_of(alice) if engine != "signed_cookies" else signed_cookie_sid(alice)
        assert alice.post("/expire/").status_code == 200  # the next token needs a refresh
        provider.fault("token", "hang", delay_ms=2500)  # slow: the logout comes meanwhile
        refresh = threading.Thread(target=alice.get, args=("/token/",))
        refresh.start()
        deadline = time.monotonic() + 10
        while not provider.requests(path="/oidc/token", grant_type="refresh_token"):
            assert time.monotonic() < deadline, "the refresh did not start"
            time.sleep(0.02)
        assert post(logout_token(provider, sub="user-alice", sid=sid)).status_code == 200
        refresh.join(timeout=20)
        for _ in range(2):
            assert alice.get("/").json() == {"user": None, "sub": None}


def signed_cookie_sid(browser: Client) -> str:
    from django.contrib.sessions.backends.signed_cookies import SessionStore

    session = SessionStore(browser.cookies[settings.SESSION_COOKIE_NAME].value)
    return str(decode_jwt(session[conf.option("SESSION_PREFIX") + "idToken"])[1]["sid"])


MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
"""Without LogtoBackend, a Logto sign-in logs no Django user in: the middleware-only mode."""


@pytest.mark.parametrize("auth", ["django.contrib.auth", "middleware only"])
def test_an_abandoned_sign_in_leaves_the_session_where_a_logout_finds_it(
    provider: Provider, auth: str
) -> None:
    with override_settings(
        **({} if auth == "django.contrib.auth" else {"AUTHENTICATION_BACKENDS": [MODEL_BACKEND]})
    ):
        alice = Client()
        sign_in_django(alice)
        sid = sid_of(alice)
        assert alice.get("/auth/sign-in/").status_code == 302  # a second click, a tab closed at Logto
        assert signed_in_sub(alice) == "user-alice"
        assert post(logout_token(provider, sub="user-alice", sid=sid)).status_code == 200
        assert alice.get("/").json() == {"user": None, "sub": None}


def test_a_cross_site_get_of_sign_in_signs_nobody_out(provider: Provider) -> None:
    alice = Client()
    sign_in_django(alice)
    # An image or a link on another site: the browser sends the cookie (SameSite=Lax, top-level).
    assert alice.get("/auth/sign-in/", HTTP_SEC_FETCH_SITE="cross-site").status_code == 302
    assert alice.get("/").json() == {"user": "user-alice", "sub": "user-alice"}


def test_a_copied_signed_cookie_stops_working_after_sign_out(
    provider: Provider, signed_cookies: None
) -> None:
    alice = Client(enforce_csrf_checks=False)
    sign_in_django(alice)
    copied = alice.cookies[settings.SESSION_COOKIE_NAME].value
    assert alice.post("/auth/sign-out/", HTTP_ORIGIN="http://testserver").status_code == 303
    thief = Client()
    thief.cookies[settings.SESSION_COOKIE_NAME] = copied
    assert thief.get("/").json() == {"user": None, "sub": None}


def test_a_replayed_logout_ends_no_session_that_signed_in_after_it(provider: Provider) -> None:
    alice = Client()
    sign_in_django(alice)
    token = logout_token(provider, sub="user-alice")
    assert post(token).status_code == 200
    assert alice.get("/").json() == {"user": None, "sub": None}
    time.sleep(1.1)
    sign_in_django(alice)
    assert post(token).status_code == 400
    assert signed_in_sub(alice) == "user-alice"
