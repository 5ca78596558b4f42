"""Encrypted cookie sessions in Django: ``SESSION_ENGINE = "logto_rs.sessions.django"``, driven by
Django's test client against the development provider.

The cookie hides every token and claim; an altered, moved, expired or foreign-key cookie is an
empty session; keys rotate; and what ``logto_rs.django`` knows of cookie sessions holds for the
sealed one: the 4 KB check measures it, ``manage.py check`` warns, no lock or reload goes through
the cookie, back-channel logouts are recorded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from test_encrypted_sessions import NEW_KEY, OLD_KEY, assert_unreadable, secrets_in

import django_site
from provider_harness import Provider

django_site.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.checks import run_checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import Client, RequestFactory, override_settings  # noqa: E402
from test_backchannel_logout import logout_token  # noqa: E402
from test_django import sign_in_django  # noqa: E402
from test_django_backchannel import post  # noqa: E402

from logto_rs.django.backchannel import is_signed_cookie_backend  # noqa: E402
from logto_rs.django.storage import DjangoSessionStorage, LogtoSessionTooLargeWarning  # noqa: E402
from logto_rs.sessions import SessionSealer  # noqa: E402
from logto_rs.sessions.django import SessionStore  # noqa: E402

ENGINE = "logto_rs.sessions.django"
CALLBACK = "http://testserver/auth/callback/"

pytestmark = pytest.mark.filterwarnings("ignore::logto_rs.django.middleware.LogtoInsecureCookieWarning")


@pytest.fixture
def logto(provider: Provider) -> Iterator[dict[str, Any]]:
    """``settings.LOGTO`` pointing at the provider, sessions sealed with ``NEW_KEY``."""
    provider.add_redirect_uris("web-app", [CALLBACK], ["http://testserver/"])
    values = {
        **settings.LOGTO,
        "ENDPOINT": provider.endpoint,
        "APP_ID": "web-app",
        "APP_SECRET": "web-app-secret",
    }
    with override_settings(LOGTO=values, SESSION_ENGINE=ENGINE, LOGTO_SESSION_KEYS=[NEW_KEY]):
        yield values
    get_user_model().objects.all().delete()


def sign_in(browser: Client, username: str = "alice") -> None:
    back = sign_in_django(browser, "/claims/", username=username)
    assert back.status_code == 302 and back["Location"] == "/claims/"


def cookie_of(browser: Client) -> str:
    return str(browser.cookies[settings.SESSION_COOKIE_NAME].value)


def signed_in_as(value: str) -> Any:
    browser = Client()
    browser.cookies[settings.SESSION_COOKIE_NAME] = value
    answer = browser.get("/")
    assert answer.status_code == 200
    return answer.json()["sub"]


def test_a_django_sign_in_leaves_a_cookie_in_which_no_token_or_claim_can_be_read(
    logto: dict[str, Any],
) -> None:
    browser = Client()
    sign_in(browser)
    assert browser.get("/claims/").json() == {"sub": "user-alice"}
    cookie = cookie_of(browser)
    assert cookie.startswith(f"v1.{SessionSealer(NEW_KEY).key_ids[0]}.")
    session = SessionStore(cookie).load()
    tokens = {key: value for key, value in session.items() if key.startswith("logto_")}
    assert {"logto_idToken", "logto_refreshToken"} <= set(tokens)
    assert_unreadable(cookie, [*secrets_in(tokens), str(session["_auth_user_id"]) + '"'])


def test_an_altered_moved_or_foreign_cookie_is_an_empty_session(
    logto: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    browser = Client()
    sign_in(browser)
    cookie = cookie_of(browser)
    prefix, body = cookie.rsplit(".", 1)
    middle = len(body) // 2
    altered = f"{prefix}.{body[:middle]}{'B' if body[middle] == 'A' else 'A'}{body[middle + 1 :]}"
    foreign = SessionSealer(NEW_KEY).seal(b"[1, 2]", settings.SESSION_COOKIE_NAME, 60)
    with caplog.at_level("INFO", logger="logto_rs.sessions"):
        for value in [altered, cookie[:-8], "v1.AAAAAAAA." + body, "garbage-cookie", foreign]:
            assert signed_in_as(value) is None, value
    assert all(body[10:30] not in record.getMessage() for record in caplog.records)
    with override_settings(SESSION_COOKIE_NAME="other_session"):
        assert signed_in_as(cookie) is None
    assert signed_in_as(cookie) == "user-alice"


def test_keys_rotate_the_old_key_opens_and_the_new_key_seals(logto: dict[str, Any]) -> None:
    old_id, new_id = SessionSealer([OLD_KEY, NEW_KEY]).key_ids
    browser = Client()
    with override_settings(LOGTO_SESSION_KEYS=[OLD_KEY]):
        sign_in(browser)
    old_cookie = cookie_of(browser)
    with override_settings(LOGTO_SESSION_KEYS=[NEW_KEY, OLD_KEY]):
        assert signed_in_as(old_cookie) == "user-alice"
        assert browser.post("/expire/").status_code == 200  # a write: sealed again, with the new key
    new_cookie = cookie_of(browser)
    assert old_cookie.split(".")[1] == old_id and new_cookie.split(".")[1] == new_id
    assert signed_in_as(new_cookie) == "user-alice"
    assert signed_in_as(old_cookie) is None


def test_a_cookie_past_the_session_age_is_expired(
    logto: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(SESSION_COOKIE_AGE=1):
        browser = Client()
        sign_in(browser)
        assert browser.get("/claims/").json() == {"sub": "user-alice"}
        time.sleep(2.1)
        with caplog.at_level("INFO", logger="logto_rs.sessions"):
            assert signed_in_as(cookie_of(browser)) is None
    assert "seal.expired" in caplog.text


def test_the_4kb_check_measures_the_sealed_cookie(logto: dict[str, Any]) -> None:
    with override_settings(LOGTO={**logto, "MAX_COOKIE_BYTES": 1500}):
        browser = Client()
        with pytest.warns(LogtoSessionTooLargeWarning, match="more than the 1500"):
            sign_in(browser)
        request = RequestFactory().get("/")
        request.session = SessionStore(cookie_of(browser))
        measured = DjangoSessionStorage(request).cookie_size()
        assert measured is not None
        sealed = len(request.session._get_session_key())
        assert measured == len(settings.SESSION_COOKIE_NAME) + 1 + sealed + 150


def test_no_lock_or_reload_goes_through_the_cookie(logto: dict[str, Any]) -> None:
    """A refresh in the request is not undone by reloading the session from the request's cookie."""
    browser = Client()
    sign_in(browser)
    request = RequestFactory().get("/")
    request.session = SessionStore(cookie_of(browser))
    storage = DjangoSessionStorage(request)
    storage.set("refreshToken", "rotated-in-this-request")
    token = storage.lock("refresh", 5)
    assert token is not None
    assert storage.get("refreshToken") == "rotated-in-this-request"
    storage.unlock("refresh", token)
    assert storage.get("refreshToken") == "rotated-in-this-request"


def test_system_checks_and_back_channel_logout_treat_it_as_a_cookie_session(logto: dict[str, Any]) -> None:
    with override_settings(SESSION_COOKIE_SECURE=True):
        assert [message.id for message in run_checks() if message.id.startswith("logto_rs.")] == [
            "logto_rs.W001"
        ]
    assert is_signed_cookie_backend()


def test_missing_or_bad_keys_fail_at_configuration(logto: dict[str, Any]) -> None:
    for keys in [None, [], ["0" * 64], "short"]:
        with override_settings(LOGTO_SESSION_KEYS=keys):
            with pytest.raises(ImproperlyConfigured, match="LOGTO_SESSION_KEYS") as caught:
                SessionStore().save()
            assert "0" * 64 not in str(caught.value)


@pytest.fixture
def shared_cache(provider: Provider, redis_url: str) -> Iterator[None]:
    """Back-channel logout on, its records in a real Redis cache."""
    provider.set_backchannel_logout("web-app", "http://127.0.0.1:9/backchannel-logout")
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    with override_settings(CACHES=caches):
        yield


def test_a_back_channel_logout_ends_an_encrypted_cookie_session(
    provider: Provider, logto: dict[str, Any], shared_cache: None, redis_url: str
) -> None:
    alice, bob = Client(), Client()
    sign_in(alice)
    sign_in(bob, username="bob")
    # The cookie is the session: it is not indexed as a session id (which would copy it, tokens
    # and all, into the cache); the logout is recorded instead.
    sealed = f"v1.{SessionSealer(NEW_KEY).key_ids[0]}.".encode()
    store = redis.Redis.from_url(redis_url)
    for key in store.keys("*"):
        value = store.get(key) if store.type(key) == b"string" else b""
        assert sealed not in (value or b""), key
    assert post(logout_token(provider, sub="user-alice")).status_code == 200
    assert alice.get("/").json() == {"user": None, "sub": None}
    assert bob.get("/").json()["sub"] == "user-bob"


def test_a_copied_encrypted_cookie_stops_working_after_sign_out(
    logto: dict[str, Any], shared_cache: None
) -> None:
    alice = Client()
    sign_in(alice)
    copied = cookie_of(alice)
    assert alice.post("/auth/sign-out/", HTTP_ORIGIN="http://testserver").status_code == 303
    assert signed_in_as(copied) is None
