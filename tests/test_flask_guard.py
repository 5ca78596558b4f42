"""The Flask guard ``@require_access_token``, driven by Flask's test client with real tokens."""

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
from logto_rs._flask_guard import VERIFIER_EXTENSION, bearer_token, require_access_token
from provider_harness import Provider

API = "https://api.example.com"
ORGS = "urn:logto:scope:organizations"
Tokens = dict[str, str]


def make_app(provider: Provider) -> Flask:
    app = Flask(__name__)
    app.config.update(TESTING=True, LOGTO_ENDPOINT=provider.endpoint, LOGTO_AUDIENCE=API)
    organizations = AccessTokenVerifier(provider.endpoint)  # organization tokens, named per route

    @app.get("/products")
    @require_access_token(scopes=["read:products"])
    def products() -> Any:
        claims = g.access_token_claims
        assert isinstance(claims, AccessTokenClaims)
        return {"sub": claims.sub, "scopes": claims.scopes}

    @app.delete("/products/<product_id>")
    @require_access_token(scopes=["delete:products"])
    def delete_product(product_id: str) -> Any:
        return {"deleted": product_id}

    @app.get("/orgs/<org_id>/members")
    @require_access_token(
        scopes=["read:members"], organizationId=lambda args: args["org_id"], verifier=organizations
    )
    def members(org_id: str) -> Any:
        return {"organization": org_id, "aud": g.access_token_claims.aud}

    @app.get("/async")
    @require_access_token("read:products")
    async def async_view() -> Any:
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


def test_a_valid_token_reaches_the_view(provider: Provider, http: FlaskClient, tokens: Tokens) -> None:
    for _ in range(3):
        response = http.get("/products", headers=bearer(tokens["api"]))
        assert response.status_code == 200
        assert response.get_json() == {"sub": "user-alice", "scopes": ["read:products", "write:products"]}
    assert http.get("/products", headers={"Authorization": f"bearer  {tokens['api']} "}).status_code == 200
    assert len(provider.requests(path="/oidc/jwks")) == 1  # one verifier per application
    assert isinstance(http.application.extensions[VERIFIER_EXTENSION], AccessTokenVerifier)


def test_no_bearer_token_is_401_without_an_error_code(http: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Basic d2ViLWFwcDpzZWNyZXQ="}, {"Authorization": ""}):
        response = http.get("/products", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"  # RFC 6750 §3.1
        assert response.get_json()["error_description"] == "the request has no bearer token"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Bearer garbage", "Bearer a.b.c", "Bearer " + "A" * 10_000_000, "Bearer \x7f\x01"],
)
def test_malformed_authorization_is_401(http: FlaskClient, tokens: Tokens, authorization: str) -> None:
    response = http.get("/products", headers={"Authorization": authorization})
    assert_401(response)
    assert "the token is malformed" in response.headers["WWW-Authenticate"]
    assert http.get("/products", headers=bearer(tokens["api"])).status_code == 200  # still serving


def test_a_missing_scope_is_403(http: FlaskClient, tokens: Tokens) -> None:
    response = http.delete("/products/42", headers=bearer(tokens["api"]))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", error_description="the token lacks the required '
        'scope(s): delete:products", scope="delete:products"'
    )
    assert response.get_json()["error"] == "insufficient_scope"


def test_a_token_for_another_audience_or_tampered_is_401(http: FlaskClient, tokens: Tokens) -> None:
    assert_401(http.get("/products", headers=bearer(tokens["org"])))
    head, _, signature = tokens["api"].split(".")
    forged = f"{head}.eyJzdWIiOiJ1c2VyLWJvYiJ9.{signature}"
    response = http.get("/products", headers=bearer(forged))
    assert_401(response)
    assert forged not in response.get_data(as_text=True)


def test_organization_routes(http: FlaskClient, tokens: Tokens) -> None:
    response = http.get("/orgs/org-acme/members", headers=bearer(tokens["org"]))
    assert response.status_code == 200
    assert response.get_json() == {"organization": "org-acme", "aud": "urn:logto:organization:org-acme"}
    assert_401(http.get("/orgs/org-globex/members", headers=bearer(tokens["org"])))
    assert_401(http.get("/orgs/org-acme/members", headers=bearer(tokens["api"])))


def test_async_views(http: FlaskClient, tokens: Tokens) -> None:
    response = http.get("/async", headers=bearer(tokens["api"]))
    assert response.status_code == 200 and response.get_json() == {"sub": "user-alice"}
    assert_401(http.get("/async", headers=bearer(tokens["org"])))
    assert http.get("/async").headers["WWW-Authenticate"] == "Bearer"


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


def test_bearer_token_parsing() -> None:
    assert bearer_token(None) is None and bearer_token("") is None
    assert bearer_token("Basic abc") is None and bearer_token("Bearerabc") is None
    assert bearer_token("Bearer") == "" and bearer_token("BEARER  abc ") == "abc"


@pytest.mark.parametrize("endpoint", ["discovery", "jwks"])
@pytest.mark.parametrize("path", ["/products", "/async"])
def test_a_provider_outage_is_503_not_500(
    provider: Provider, tokens: Tokens, endpoint: str, path: str
) -> None:
    http = make_app(provider).test_client()
    provider.fault(endpoint, "status500", times=3)
    response = http.get(path, headers=bearer(tokens["api"]))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert "injected" not in response.get_data(as_text=True)  # no provider text
