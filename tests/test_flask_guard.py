"""What is Flask's own in ``@require_access_token``: the application's verifier, ``async def``
views, custom answers, the tenant's configuration (the answers every framework shares are in
test_conformance_bearer.py)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

from conftest import ClientFactory, run, sign_in
from logto_rs import (
    AccessTokenClaims,
    AccessTokenVerifier,
    LogtoAccessTokenError,
    LogtoConfigError,
    MemoryStorage,
)
from logto_rs._flask_guard import VERIFIER_EXTENSION, require_access_token
from provider_harness import Provider

API = "https://api.example.com"
ORGS = "urn:logto:scope:organizations"
Tokens = dict[str, str]


def make_app(provider: Provider) -> Flask:
    app = Flask(__name__)
    app.config.update(TESTING=True, LOGTO_ENDPOINT=provider.endpoint, LOGTO_AUDIENCE=API)

    @app.get("/products")
    @require_access_token(scopes=["read:products"])
    def products() -> Any:
        claims = g.access_token_claims
        assert isinstance(claims, AccessTokenClaims)
        return {"sub": claims.sub, "scopes": claims.scopes}

    @app.get("/async")
    @require_access_token("read:products")
    async def async_view() -> Any:
        return {"sub": g.access_token_claims.sub}

    @app.get("/async/admin")
    @require_access_token(roles=["product-admin"])
    async def async_admin() -> Any:
        return {"sub": g.access_token_claims.sub}

    def teapot(error: LogtoAccessTokenError) -> Any:
        return {"check": error.check}, 418

    @app.get("/custom")
    @require_access_token(onError=teapot)
    def custom() -> Any:
        return {"ok": True}

    return app


@pytest.fixture
def tokens(provider: Provider, make_client: ClientFactory) -> Tokens:
    client = make_client(
        MemoryStorage(), scopes=["read:products", "write:products", "read:members", ORGS], resources=[API]
    )
    run(sign_in(client))
    api = run(client.getAccessToken(API))
    org = run(client.getOrganizationToken("org-acme"))
    assert api and org
    provider.reset()  # count the guard's own requests only
    return {"api": api, "org": org}


@pytest.fixture
def http(provider: Provider) -> FlaskClient:
    return make_app(provider).test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response: Any, challenge: str = 'Bearer error="invalid_token"') -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith(challenge)
    body = response.get_json()
    assert body["error"] == "invalid_token" and body["error_description"]


def test_one_verifier_per_application(provider: Provider, http: FlaskClient, tokens: Tokens) -> None:
    for _ in range(3):
        response = http.get("/products", headers=bearer(tokens["api"]))
        assert response.status_code == 200
        assert response.get_json() == {"sub": "user-alice", "scopes": ["read:products", "write:products"]}
    assert len(provider.requests(path="/oidc/jwks")) == 1  # one verifier per application
    assert isinstance(http.application.extensions[VERIFIER_EXTENSION], AccessTokenVerifier)


def test_async_views(http: FlaskClient, tokens: Tokens) -> None:
    response = http.get("/async", headers=bearer(tokens["api"]))
    assert response.status_code == 200 and response.get_json() == {"sub": "user-alice"}
    assert_401(http.get("/async", headers=bearer(tokens["org"])))
    assert http.get("/async").headers["WWW-Authenticate"] == "Bearer"
    refused = http.get("/async/admin", headers=bearer(tokens["api"]))  # no roles claim
    assert (
        refused.status_code == 403
        and "required role(s): product-admin" in refused.headers["WWW-Authenticate"]
    )


def test_a_custom_error_response(http: FlaskClient, tokens: Tokens) -> None:
    response = http.get("/custom", headers=bearer("garbage"))
    assert (response.status_code, response.get_json()) == (418, {"check": "malformed"})
    assert http.get("/custom", headers=bearer(tokens["api"])).get_json() == {"ok": True}


def test_the_application_must_name_its_tenant(provider: Provider) -> None:
    app = Flask(__name__)
    app.config["TESTING"] = True

    @app.get("/")
    @require_access_token()
    def index() -> Any:
        return {}

    with pytest.raises(LogtoConfigError):
        app.test_client().get("/", headers=bearer("a.b.c"))


def test_roles_are_a_list() -> None:
    with pytest.raises(LogtoConfigError, match="list of role names"):
        require_access_token(roles="product-admin")  # else one role per letter


def test_an_outage_is_503_in_async_views(provider: Provider, tokens: Tokens) -> None:
    http = make_app(provider).test_client()
    provider.fault("jwks", "status500", times=3)
    response = http.get("/async", headers=bearer(tokens["api"]))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert "injected" not in response.get_data(as_text=True)  # no provider text
