"""What is FastAPI's own in ``require_access_token``: the OpenAPI document names the bearer scheme,
and the header is read once, by the guard, whatever ``HTTPBearer`` is passed (the answers every
framework shares are in test_conformance_bearer.py)."""

from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.security import HTTPBearer
from fastapi_server import serve

from logto_rs import AccessTokenClaims, AccessTokenVerifier
from logto_rs.fastapi import require_access_token
from provider_harness import Provider

API = "https://api.example.com"
Claims = AccessTokenClaims
STRICT = HTTPBearer(auto_error=True, scheme_name="StrictBearer")


def make_app(provider: Provider) -> FastAPI:
    app = FastAPI()
    api = AccessTokenVerifier(provider.endpoint, API)
    organizations = AccessTokenVerifier(provider.endpoint)

    @app.get("/products")
    async def products(
        claims: Annotated[Claims, Depends(require_access_token(api, ["read:products"]))],
    ) -> Any:
        return {"sub": claims.sub}

    @app.delete("/products/{product_id}")
    async def delete_product(
        product_id: str, claims: Annotated[Claims, Depends(require_access_token(api, ["delete:products"]))]
    ) -> Any:
        return {"deleted": product_id}

    @app.get("/orgs/{org_id}/members")
    async def members(
        org_id: str,
        claims: Annotated[
            Claims,
            Depends(
                require_access_token(
                    organizations, organization_id=lambda request: request.path_params["org_id"]
                )
            ),
        ],
    ) -> Any:
        return {"organization": org_id}

    @app.get("/admin")
    async def admin(
        claims: Annotated[Claims, Depends(require_access_token(api, roles=["admin"], bearer=STRICT))],
    ) -> Any:
        return {"sub": claims.sub}

    return app


@pytest.fixture(scope="module")
def url(provider: Provider) -> Iterator[str]:
    with serve(make_app(provider)) as served:
        yield served


def test_the_openapi_document_names_the_bearer_scheme(url: str) -> None:
    document = httpx.get(url + "/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["LogtoAccessToken"]["scheme"] == "bearer" and schemes["StrictBearer"]["scheme"] == "bearer"
    for path, method in (("/products", "get"), ("/orgs/{org_id}/members", "get")):
        assert document["paths"][path][method]["security"] == [{"LogtoAccessToken": []}]
    assert document["paths"]["/admin"]["get"]["security"] == [{"StrictBearer": []}]
    parameters = document["paths"]["/products/{product_id}"]["delete"]["parameters"]
    assert [p["name"] for p in parameters] == ["product_id"]  # the guard adds no parameter


def test_the_header_is_read_by_the_guard_alone(url: str) -> None:
    # An HTTPBearer with auto_error would answer a request without a token by itself (its own
    # 401 and body); it only names the scheme: the guard answers, as on every route.
    for headers in ({}, {"Authorization": "Basic d2ViLWFwcDpzZWNyZXQ="}):
        answer = httpx.get(url + "/admin", headers=headers)
        assert (answer.status_code, answer.headers["WWW-Authenticate"]) == (401, "Bearer")
        assert answer.json() == {
            "detail": {"error": "invalid_token", "error_description": "the request has no bearer token"}
        }
    # "Bearer" without a token is a malformed token to the guard (HTTPBearer reads no credentials).
    answer = httpx.get(url + "/admin", headers={"Authorization": "Bearer"})
    assert answer.status_code == 401 and "malformed" in answer.headers["WWW-Authenticate"]
