"""What is Django REST framework's own in its Logto classes: ``request.user``, organization
tokens for the organization in the URL, the settings, expired tokens, a session error in a DRF
view (the answers every framework shares are in test_conformance_bearer.py)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

import django_site
from conftest import run, sign_in
from provider_harness import Provider

django_site.setup()

# The test client's host is "testserver", not loopback: the app rightly warns about its cookie.
pytestmark = pytest.mark.filterwarnings("ignore::logto_rs.django.middleware.LogtoInsecureCookieWarning")

from django.conf import settings  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

API = "https://api.example.com"
SHORT = "https://short.example.com"


@pytest.fixture
def logto(provider: Provider) -> Iterator[dict[str, Any]]:
    values = {**settings.LOGTO, "ENDPOINT": provider.endpoint}
    with override_settings(LOGTO=values):
        yield values


@pytest.fixture(scope="module")
def tokens(provider: Provider) -> dict[str, str]:
    """Alice's tokens: the API (read:products only), a short-lived API, an organization."""
    from logto_rs import LogtoClient, LogtoConfig, MemoryStorage

    config = LogtoConfig(
        endpoint=provider.endpoint,
        appId="web-app",
        appSecret="web-app-secret",
        scopes=["read:products", "read:short", "read:members", "urn:logto:scope:organizations"],
        resources=[API, SHORT],
    )
    client = LogtoClient(config, storage=MemoryStorage())
    run(sign_in(client))
    blocking = client.blocking
    return {
        "api": blocking.getAccessToken(API) or "",
        "short": blocking.getAccessToken(SHORT) or "",
        "org": blocking.getOrganizationToken("org-acme") or "",
        "api-acme": blocking.getAccessToken(API, "org-acme") or "",
    }


def get(path: str, token: str | None = None) -> Any:
    headers = {} if token is None else {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    return Client().get(path, **headers)


def test_the_token_user_is_request_user(logto: dict[str, Any], tokens: dict[str, str]) -> None:
    response = get("/api/products/", tokens["api"])
    assert response.status_code == 200, response.content
    assert response.json() == {"sub": "user-alice", "user": "user-alice", "scope": "read:products"}


def test_an_expired_token_is_401(provider: Provider, logto: dict[str, Any], tokens: dict[str, str]) -> None:
    # The short resource's tokens live 2 s; this verifier tolerates no clock skew.
    with override_settings(LOGTO={**logto, "AUDIENCE": SHORT, "CLOCK_TOLERANCE": 0}):
        time.sleep(max(0.0, _expires_at(tokens["short"]) - time.time() + 1.1))
        response = get("/api/products/", tokens["short"])
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert "exp" in response.json()["error_description"]


def _expires_at(token: str) -> float:
    payload = token.split(".")[1]
    return float(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])


def test_organization_tokens_for_the_organization_in_the_url(
    logto: dict[str, Any], tokens: dict[str, str]
) -> None:
    response = get("/api/orgs/org-acme/members/", tokens["org"])
    assert response.status_code == 200, response.content
    assert response.json() == {"sub": "user-alice", "organization": "org-acme"}
    other = get("/api/orgs/org-globex/members/", tokens["org"])
    assert other.status_code in (401, 403) and "WWW-Authenticate" in other
    assert get("/api/orgs/org-acme/members/", tokens["api"]).status_code == 401  # not an organization token


def test_a_verifier_needs_an_audience(logto: dict[str, Any], tokens: dict[str, str]) -> None:
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(LOGTO={**logto, "AUDIENCE": None}):
        with pytest.raises(ImproperlyConfigured, match="AUDIENCE"):
            get("/api/products/", tokens["api"])
        # A request without a bearer token is not the verifier's: it is answered all the same.
        anonymous = get("/api/products/")
        assert (anonymous.status_code, anonymous["WWW-Authenticate"]) == (401, "Bearer")


def test_a_logto_session_error_in_a_drf_view_is_401_not_500(logto: dict[str, Any]) -> None:
    response = Client(raise_request_exception=False).get(
        "/api/signed-in-only/", HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 401 and response.json() == {"error": "Not authenticated"}
