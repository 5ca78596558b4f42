"""The Django app, driven by Django's test client against the development provider.

Settings (validated at start-up, never showing the secret), sign-in with ``next`` checked by
Django, the callback's error page, the auth backend (a Django user per ``sub``, its fields,
flags and groups), ``@login_required`` and the admin, CSRF-protected sign-out, the
lightweight decorator, ended sessions answered by the middleware, the session backends
(database, Redis cache, signed cookies) and the refresh lock in Django's cache.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import django_site
from provider_harness import Provider, complete_sign_in, deny_sign_in, token_hash

django_site.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.checks import run_checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from logto_rs.django import conf  # noqa: E402
from logto_rs.django.storage import DjangoSessionStorage, LogtoSessionTooLargeWarning  # noqa: E402

CALLBACK = "http://testserver/auth/callback/"
HOME = "http://testserver/"
API = "https://api.example.com"
HTML = {"HTTP_ACCEPT": "text/html"}

# The test client's host is "testserver", not loopback: the app rightly warns about its cookie.
pytestmark = pytest.mark.filterwarnings("ignore::logto_rs.django.middleware.LogtoInsecureCookieWarning")


@pytest.fixture
def logto(provider: Provider) -> Iterator[dict[str, Any]]:
    """``settings.LOGTO`` pointing at the provider (web-app, confidential)."""
    provider.add_redirect_uris("web-app", [CALLBACK], [HOME])
    values = {
        **settings.LOGTO,
        "ENDPOINT": provider.endpoint,
        "APP_ID": "web-app",
        "APP_SECRET": "web-app-secret",
    }
    with override_settings(LOGTO=values):
        yield values
    get_user_model().objects.all().delete()
    Group.objects.all().delete()


def sign_in_django(browser: Client, next_url: str = "/private/", username: str = "alice") -> Any:
    """The browser round trip through the Django views; returns the callback's response."""
    to_provider = browser.get("/auth/sign-in/", {"next": next_url})
    assert to_provider.status_code == 302, to_provider.content
    return browser.get(complete_sign_in(to_provider["Location"], CALLBACK, username=username))


# Settings.


def test_settings_are_validated_without_showing_the_secret() -> None:
    secret = "s3cr3t-value-never-shown"
    cases = [
        (None, "must be a dict"),
        ({"APP_ID": "x"}, "ENDPOINT is required"),
        ({"ENDPOINT": "https://t.logto.app", "APP_ID": "x", "APP_SECRET": secret, "SCOPE": []}, "'SCOPES'"),
        ({"ENDPOINT": "not a url", "APP_ID": "x", "APP_SECRET": secret}, "LOGTO"),
        (
            {
                "ENDPOINT": "https://t.logto.app",
                "APP_ID": "x",
                "APP_SECRET": secret,
                "REQUEST_TIMEOUT": secret,
            },
            "REQUEST_TIMEOUT",
        ),
        ({"ENDPOINT": "https://t.logto.app", "APP_ID": "x", "APP_SECRET": 12345}, "APP_SECRET must be"),
        ({"ENDPOINT": "https://t.logto.app", "APP_ID": "x", "SCOPES": "email"}, "SCOPES must be a list"),
        ({"ENDPOINT": "https://t.logto.app", "APP_ID": "x", "STAFF_ROLES": "admin"}, "STAFF_ROLES"),
    ]
    for raw, expected in cases:
        with pytest.raises(ImproperlyConfigured) as caught:
            conf.LogtoSettings.from_dict(raw)
        message = str(caught.value)
        assert message.startswith("settings.LOGTO: ") and expected in message, message
        assert secret not in message and "12345" not in message, message
    assert "did you mean 'SCOPES'?" in _message(
        {"ENDPOINT": "https://t.logto.app", "APP_ID": "x", "SCOPE": []}
    )
    valid = conf.LogtoSettings.from_dict(
        {"ENDPOINT": "https://t.logto.app", "APP_ID": "x", "APP_SECRET": secret}
    )
    assert secret not in repr(valid)


def _message(raw: Any) -> str:
    with pytest.raises(ImproperlyConfigured) as caught:
        conf.LogtoSettings.from_dict(raw)
    return str(caught.value)


def test_the_app_refuses_to_start_with_bad_settings() -> None:
    from django.apps import apps

    with override_settings(LOGTO={"ENDPOINT": "https://t.logto.app"}):
        with pytest.raises(ImproperlyConfigured, match="APP_ID is required"):
            apps.get_app_config("logto_rs").ready()
        assert [m.id for m in run_checks(tags=["logto_rs"])] == ["logto_rs.E001"]


def test_system_checks_report_the_reach_of_the_refresh_lock(redis_url: str) -> None:
    def ids() -> list[str]:
        return sorted(m.id for m in run_checks(tags=["logto_rs"]) if m.id)

    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    redis_cache = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    with override_settings(CACHES=locmem, SESSION_COOKIE_SECURE=True):
        assert ids() == ["logto_rs.W002"]
    with override_settings(CACHES=redis_cache, SESSION_COOKIE_SECURE=True):
        assert ids() == []
    with override_settings(CACHES=redis_cache, SESSION_COOKIE_SECURE=False):
        assert ids() == ["logto_rs.W003"]
    with override_settings(
        CACHES=redis_cache, SESSION_COOKIE_SECURE=True, LOGTO={**settings.LOGTO, "LOCK_CACHE": "locks"}
    ):
        assert ids() == ["logto_rs.E002"]
    signed = "django.contrib.sessions.backends.signed_cookies"
    with override_settings(CACHES=redis_cache, SESSION_COOKIE_SECURE=True, SESSION_ENGINE=signed):
        assert ids() == ["logto_rs.W001"]


# Sign-in, the Django user, sign-out.


def test_sign_in_logs_a_django_user_in_with_mapped_claims(provider: Provider, logto: dict[str, Any]) -> None:
    browser = Client()
    assert browser.get("/private/")["Location"] == "/auth/sign-in/?next=/private/"
    to_provider = browser.get("/auth/sign-in/", {"next": "/private/"})
    planted = browser.cookies[settings.SESSION_COOKIE_NAME].value
    back = browser.get(complete_sign_in(to_provider["Location"], CALLBACK))
    assert back.status_code == 302 and back["Location"] == "/private/"
    # The session key changed at the callback (login): the id from before sign-in names nothing.
    assert browser.cookies[settings.SESSION_COOKIE_NAME].value != planted
    assert not SessionStore().exists(planted)
    private = browser.get("/private/").json()
    assert private["username"] == "user-alice"
    assert private["email"] == "alice@example.com"
    assert (private["first_name"], private["last_name"]) == ("Alice", "Liddell")
    assert private["is_staff"] and private["is_superuser"]
    assert private["groups"] == ["product-admin"]
    assert private["access_token"]
    assert browser.get("/").json() == {"user": "user-alice", "sub": "user-alice"}
    # The admin lets the Logto user in (staff, superuser from the product-admin role).
    admin = browser.get("/admin/auth/user/")
    assert admin.status_code == 200 and b"user-alice" in admin.content
    # A second sign-in finds the same user.
    sign_in_django(Client())
    assert get_user_model().objects.filter(username="user-alice").count() == 1


def test_the_user_mapping_follows_settings(logto: dict[str, Any]) -> None:
    with override_settings(
        LOGTO={
            **logto,
            "USER_CLAIMS": {"first_name": "username"},
            "GROUP_CLAIMS": ["organization_roles"],
            "STAFF_ROLES": ["org-acme:admin"],
            "SUPERUSER_ROLES": None,
        }
    ):
        browser = Client()
        sign_in_django(browser)
        private = browser.get("/private/").json()
    assert private["first_name"] == "alice" and private["email"] == ""
    assert private["groups"] == ["org-acme:admin", "org-globex:member"]
    assert private["is_staff"] and not private["is_superuser"]
    # bob: no role of the staff list, no organization.
    with override_settings(LOGTO={**logto, "STAFF_ROLES": ["product-admin"]}):
        browser = Client()
        sign_in_django(browser, username="bob")
        bob = browser.get("/private/").json()
    assert not bob["is_staff"] and bob["groups"] == ["product-viewer"]
    assert browser.get("/admin/auth/user/").status_code == 302


def test_no_user_is_created_when_creation_is_off(logto: dict[str, Any]) -> None:
    with override_settings(LOGTO={**logto, "CREATE_USERS": False}):
        browser = Client()
        response = sign_in_django(browser)
    assert response.status_code == 403 and b"may not sign in" in response.content
    assert not get_user_model().objects.filter(username="user-alice").exists()
    assert browser.get("/claims/", **HTML).status_code == 302  # and no Logto session was kept


def test_a_failed_callback_renders_the_error_page(
    provider: Provider, logto: dict[str, Any], tmp_path: Path
) -> None:
    browser = Client()
    to_provider = browser.get("/auth/sign-in/")
    forged = complete_sign_in(to_provider["Location"], CALLBACK).replace("state=", "state=forged")
    response = browser.get(forged)
    assert response.status_code == 400
    assert b"callback.state_mismatch" in response.content or b"callback." in response.content
    assert b'id="logto-error-code"' in response.content
    denied = deny_sign_in(browser.get("/auth/sign-in/")["Location"], CALLBACK)
    response = browser.get(denied)
    assert response.status_code == 400 and b"callback.authorization_error" in response.content
    # A failing provider: 502.
    to_provider = browser.get("/auth/sign-in/")
    callback = complete_sign_in(to_provider["Location"], CALLBACK)
    provider.fault("token", "status500")
    response = browser.get(callback)
    assert response.status_code == 502 and b"Sign-in failed" in response.content
    # The template is overridable.
    (tmp_path / "mine.html").write_text("<p>our own page: {{ code }}</p>")
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    with override_settings(TEMPLATES=templates, LOGTO={**logto, "ERROR_TEMPLATE": "mine.html"}):
        response = browser.get("/auth/callback/?code=x&state=y")
    assert response.status_code == 400 and response.content.startswith(b"<p>our own page: callback.")
    assert browser.get("/private/")["Location"].startswith("/auth/sign-in/")


def test_sign_out_is_a_csrf_protected_post(provider: Provider, logto: dict[str, Any]) -> None:
    browser = Client(enforce_csrf_checks=True)
    sign_in_django(browser)
    assert browser.get("/private/").status_code == 200
    # A cross-site form (no CSRF token) does not sign the user out.
    assert browser.post("/auth/sign-out/").status_code == 403
    assert browser.get("/private/").status_code == 200
    page = browser.get("/auth/sign-out/")
    assert page.status_code == 200 and b'name="csrfmiddlewaretoken"' in page.content
    token = browser.cookies[settings.CSRF_COOKIE_NAME].value
    provider.reset()
    response = browser.post(
        "/auth/sign-out/", {"csrfmiddlewaretoken": token}, HTTP_ORIGIN="http://testserver"
    )
    assert response.status_code == 303
    assert response["Location"].startswith(provider.issuer + "/session/end?")
    assert "post_logout_redirect_uri=http%3A%2F%2Ftestserver%2F" in response["Location"]
    assert provider.requests(path="/oidc/token/revocation")
    assert browser.get("/private/")["Location"].startswith("/auth/sign-in/")
    assert browser.get("/").json() == {"user": None, "sub": None}


# Without django.contrib.auth's login: the decorator and the middleware.


def test_the_decorator_admits_signed_in_users_only(logto: dict[str, Any]) -> None:
    browser = Client()
    assert browser.get("/claims/", **HTML)["Location"] == "/auth/sign-in/?next=%2Fclaims%2F"
    anonymous = browser.get("/claims/", HTTP_ACCEPT="application/json")
    assert anonymous.status_code == 401 and anonymous.json() == {"error": "Not authenticated"}
    assert browser.get("/claims-async/", **HTML).status_code == 401  # should_redirect=False
    sign_in_django(browser)
    assert browser.get("/claims/").json() == {"sub": "user-alice"}
    assert browser.get("/claims-async/").json() == {"sub": "user-alice", "userinfo": "user-alice"}


@pytest.mark.parametrize(
    ("login_url", "location"),
    [
        ("/accounts/login/", "/auth/sign-in/?next=%2Fclaims%2F"),  # Django's default: the SDK's route
        ("/welcome/", "/welcome/?next=%2Fclaims%2F"),
        ("/welcome/?via=logto", "/welcome/?via=logto&next=%2Fclaims%2F"),
        ("https://login.example.com/", "https://login.example.com/?next=http%3A%2F%2Ftestserver%2Fclaims%2F"),
    ],
)
def test_an_anonymous_browser_goes_to_login_url_when_the_project_sets_one(
    logto: dict[str, Any], login_url: str, location: str
) -> None:
    with override_settings(LOGIN_URL=login_url):
        browser = Client()
        assert browser.get("/claims/", **HTML)["Location"] == location
        anonymous = browser.get("/claims/", HTTP_ACCEPT="application/json")
        assert anonymous.status_code == 401 and anonymous.json() == {"error": "Not authenticated"}


def test_an_ended_session_in_a_view_is_a_redirect_or_401_never_500(logto: dict[str, Any]) -> None:
    browser = Client(raise_request_exception=False)
    sign_in_django(browser)
    response = browser.get("/revoked/", **HTML)
    assert response.status_code == 302 and response["Location"] == "/auth/sign-in/?next=%2Frevoked%2F"
    assert browser.get("/private/").status_code == 302  # the Django login ended with it
    sign_in_django(browser)
    api = browser.get("/revoked/", HTTP_ACCEPT="application/json")
    assert api.status_code == 401 and api.json() == {"error": "Not authenticated"}
    form = browser.post("/revoked/", **HTML)
    assert form.status_code in (401, 403)


def test_a_refresh_rejected_by_logto_answers_401(provider: Provider, logto: dict[str, Any]) -> None:
    browser = Client()
    sign_in_django(browser)
    assert browser.post("/expire/").status_code == 200
    # Logto revokes the grant: the next refresh is refused with invalid_grant.
    session = browser.session
    session[conf.option("SESSION_PREFIX") + "refreshToken"] = "revoked-refresh-token"
    session.save()
    response = browser.get("/token/")
    assert response.status_code == 401 and response.json() == {"error": "Not authenticated"}


def test_async_views_refresh_over_database_sessions(provider: Provider, logto: dict[str, Any]) -> None:
    browser = Client()
    sign_in_django(browser)
    first = browser.get("/token-async/").json()
    assert browser.post("/expire/").status_code == 200
    provider.reset()
    second = browser.get("/token-async/").json()
    assert second["sub"] == "user-alice" and second["token"] != first["token"]
    assert len(provider.requests(path="/oidc/token", grant_type="refresh_token")) == 1
    # The refreshed token was saved with the session: the sync view finds it cached.
    assert browser.get("/token/").json()["token"] == second["token"]
    assert len(provider.requests(path="/oidc/token", grant_type="refresh_token")) == 1


# Session backends and the refresh lock.


@pytest.fixture
def redis_sessions(redis_url: str) -> Iterator[str]:
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    with override_settings(CACHES=caches, SESSION_ENGINE="django.contrib.sessions.backends.cache"):
        yield redis_url


def test_sessions_in_django_redis_cache(
    provider: Provider, logto: dict[str, Any], redis_sessions: str
) -> None:
    import redis

    store = redis.Redis.from_url(redis_sessions)
    browser = Client()
    sign_in_django(browser)
    first = browser.get("/token/").json()
    key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    assert any(key in name.decode() for name in store.keys("*"))
    assert browser.post("/expire/").status_code == 200
    provider.reset()
    second = browser.get("/token/").json()
    assert second["sub"] == "user-alice" and second["token"] != first["token"]
    assert len(provider.requests(path="/oidc/token", grant_type="refresh_token")) == 1
    assert not store.keys("*logto_rs:lock:*"), "the refresh lock was released"


def test_the_lock_in_django_redis_cache_is_owned(logto: dict[str, Any], redis_sessions: str) -> None:
    from django.contrib.sessions.backends.cache import SessionStore
    from django.http import HttpRequest

    request = HttpRequest()
    request.session = SessionStore()
    storage = DjangoSessionStorage(request)
    token = storage.lock("refresh", 5)
    assert token and storage.lock("refresh", 5) is None
    storage.unlock("refresh", "someone-else")
    assert storage.lock("refresh", 5) is None
    storage.unlock("refresh", token)
    again = storage.lock("refresh", 1)
    assert again and again != token
    time.sleep(1.2)
    assert storage.lock("refresh", 5), "a crashed holder's lock expires"


def test_signed_cookie_sessions_warn_before_outgrowing_the_browser(logto: dict[str, Any]) -> None:
    signed = "django.contrib.sessions.backends.signed_cookies"
    with override_settings(SESSION_ENGINE=signed, LOGTO={**logto, "MAX_COOKIE_BYTES": 1500}):
        browser = Client()
        with pytest.warns(LogtoSessionTooLargeWarning, match="more than the 1500"):
            sign_in_django(browser)
        assert browser.get("/claims/").json() == {"sub": "user-alice"}
        assert len(browser.cookies[settings.SESSION_COOKIE_NAME].value) > 1000


# The Account API through the request's client.


def test_the_requests_client_calls_the_account_api_as_its_user(
    logto: dict[str, Any], provider: Provider
) -> None:
    from django.test import RequestFactory

    from logto_rs.django import get_client

    browser = Client()
    sign_in_django(browser)
    request = RequestFactory().get("/")
    request.session = browser.session
    client = get_client(request)
    profile = client.account.getProfile()
    assert (profile.id, profile.username) == ("user-alice", "alice")
    [call] = [r for r in provider.requests() if r["path"] == "/api/my-account"]
    assert call["authorization"]["token"] == token_hash(client.getAccessToken() or "")


def test_redirect_is_the_deprecated_name_of_should_redirect(logto: dict[str, Any]) -> None:
    from django.http import HttpRequest, JsonResponse
    from django.test import RequestFactory

    from logto_rs.django.decorators import logto_required

    def view(request: HttpRequest) -> JsonResponse:
        return JsonResponse({})

    def answer(protected: Any) -> int:
        request = RequestFactory().get("/claims/", **HTML)
        request.session = SessionStore()
        return int(protected(request).status_code)

    with pytest.warns(DeprecationWarning, match="redirect= is deprecated: use should_redirect="):
        old = logto_required(redirect=False)(view)
    assert answer(old) == answer(logto_required(should_redirect=False)(view)) == 401  # a browser, yet 401
    assert answer(logto_required(view)) == 302
    with pytest.raises(TypeError, match="should_redirect= only"):
        logto_required(redirect=False, should_redirect=False)
