"""The FastAPI bearer guard ``require_access_token`` served by uvicorn: the provider's real tokens
(valid, forged, expired, for another audience or organization, lacking a scope), roles from a
custom JWT claim (signed by a local Logto-shaped issuer), and the OpenAPI document."""

import base64
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi_server import serve

from conftest import ClientFactory, run, sign_in
from logto_rs import AccessTokenClaims, AccessTokenVerifier, MemoryStorage
from logto_rs.fastapi import require_access_token
from provider_harness import Provider, decode_jwt

sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))
from local_tenant import LocalTenant  # noqa: E402

API = "https://api.example.com"
SHORT = "https://short.example.com"
ORGS = "urn:logto:scope:organizations"
Claims = AccessTokenClaims


@pytest.fixture(scope="module")
def tenant() -> Iterator[LocalTenant]:
    served = LocalTenant()
    yield served
    served.close()


def make_app(provider: Provider, tenant: LocalTenant) -> FastAPI:
    app = FastAPI()
    api = AccessTokenVerifier(provider.endpoint, API)
    organizations = AccessTokenVerifier(provider.endpoint)
    short = AccessTokenVerifier(provider.endpoint, SHORT, clockTolerance=0)
    local = AccessTokenVerifier(tenant.endpoint, API)

    @app.get("/products")
    async def products(
        claims: Annotated[Claims, Depends(require_access_token(api, ["read:products"]))],
    ) -> Any:
        return {"sub": claims.sub, "scopes": claims.scopes}

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
                    organizations,
                    ["read:members"],
                    organization_id=lambda request: request.path_params["org_id"],
                )
            ),
        ],
    ) -> Any:
        return {"organization": org_id, "aud": claims.aud}

    @app.get("/short")
    async def short_lived(claims: Annotated[Claims, Depends(require_access_token(short))]) -> Any:
        return {"sub": claims.sub}

    @app.get("/admin")
    async def admin(
        claims: Annotated[Claims, Depends(require_access_token(local, ["read:products"], roles=["admin"]))],
    ) -> Any:
        return {"sub": claims.sub, "roles": getattr(claims, "roles", None)}

    return app


@pytest.fixture(scope="module")
def tokens(provider: Provider, make_client_module: ClientFactory) -> dict[str, str]:
    client = make_client_module(
        MemoryStorage(),
        scopes=["read:products", "write:products", "read:members", "read:short", ORGS],
        resources=[API, SHORT],
    )
    run(sign_in(client))
    api, org, short = (
        run(client.getAccessToken(API)),
        run(client.getOrganizationToken("org-acme")),
        run(client.getAccessToken(SHORT)),
    )
    assert api and org and short
    return {"api": api, "org": org, "short": short}


@pytest.fixture(scope="module")
def make_client_module(provider: Provider) -> ClientFactory:
    from logto_rs import LogtoClient, LogtoConfig

    def factory(storage: Any = None, **fields: Any) -> LogtoClient:
        config = LogtoConfig(
            endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret", **fields
        )
        return LogtoClient(config, storage=storage or MemoryStorage())

    return factory


@pytest.fixture(scope="module")
def url(provider: Provider, tenant: LocalTenant) -> Iterator[str]:
    with serve(make_app(provider, tenant)) as served:
        yield served


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rejected(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer error="{error}"'), challenge
    detail = response.json()["detail"]
    assert detail["error"] == error and detail["error_description"]
    return challenge


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_valid_token_reaches_the_route(url: str, tokens: dict[str, str]) -> None:
    answer = httpx.get(url + "/products", headers=bearer(tokens["api"]))
    assert answer.json() == {"sub": "user-alice", "scopes": ["read:products", "write:products"]}
    assert (
        httpx.get(url + "/products", headers={"Authorization": f"bearer  {tokens['api']}"}).status_code == 200
    )


def test_no_bearer_token_is_401_with_a_bare_challenge(url: str) -> None:
    for headers in ({}, {"Authorization": "Basic d2ViLWFwcDpzZWNyZXQ="}, {"Authorization": ""}):
        answer = httpx.get(url + "/products", headers=headers)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.json() == {
            "detail": {"error": "invalid_token", "error_description": "the request has no bearer token"}
        }


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer garbage", "Bearer a.b.c", "Bearer \x7f"])
def test_malformed_is_401(url: str, authorization: str) -> None:
    try:
        answer = httpx.get(url + "/products", headers={"Authorization": authorization})
    except httpx.LocalProtocolError:
        return  # not even sendable
    if answer.status_code == 400 and "WWW-Authenticate" not in answer.headers:
        return  # refused by the server's HTTP parser (httptools) before the app
    assert "malformed" in rejected(answer, 401, "invalid_token")


def test_a_forged_token_is_401(url: str, tokens: dict[str, str]) -> None:
    head, _, signature = tokens["api"].split(".")
    _, claims = decode_jwt(tokens["api"])
    forged = f"{head}.{b64(json.dumps({**claims, 'sub': 'user-bob'}).encode())}.{signature}"
    answer = httpx.get(url + "/products", headers=bearer(forged))
    assert "signature" in rejected(answer, 401, "invalid_token")
    assert forged not in answer.text


def test_a_token_for_another_audience_is_401(url: str, tokens: dict[str, str]) -> None:
    assert "aud" in rejected(
        httpx.get(url + "/products", headers=bearer(tokens["org"])), 401, "invalid_token"
    )
    rejected(httpx.get(url + "/orgs/org-acme/members", headers=bearer(tokens["api"])), 401, "invalid_token")


def test_organization_routes_and_the_wrong_organization(url: str, tokens: dict[str, str]) -> None:
    answer = httpx.get(url + "/orgs/org-acme/members", headers=bearer(tokens["org"]))
    assert answer.json() == {"organization": "org-acme", "aud": "urn:logto:organization:org-acme"}
    rejected(httpx.get(url + "/orgs/org-globex/members", headers=bearer(tokens["org"])), 401, "invalid_token")


def test_a_missing_scope_is_403(url: str, tokens: dict[str, str]) -> None:
    answer = httpx.delete(url + "/products/42", headers=bearer(tokens["api"]))
    assert rejected(answer, 403, "insufficient_scope") == (
        'Bearer error="insufficient_scope", error_description="the token lacks the required '
        'scope(s): delete:products", scope="delete:products"'
    )


def test_an_expired_token_is_401(url: str, tokens: dict[str, str]) -> None:
    expires = decode_jwt(tokens["short"])[1]["exp"]
    time.sleep(max(0.0, expires + 1.05 - time.time()))
    answer = httpx.get(url + "/short", headers=bearer(tokens["short"]))
    assert 'error_description="the token has expired (exp)"' in rejected(answer, 401, "invalid_token")


def test_roles_from_a_custom_jwt_claim(url: str, tenant: LocalTenant) -> None:
    admin = tenant.sign(roles=["admin", "editor"])
    assert httpx.get(url + "/admin", headers=bearer(admin)).json() == {
        "sub": "user-alice",
        "roles": ["admin", "editor"],
    }
    for token in (tenant.sign(roles=["editor"]), tenant.sign(), tenant.sign(roles="admin")):
        answer = httpx.get(url + "/admin", headers=bearer(token))
        challenge = rejected(answer, 403, "insufficient_scope")
        assert challenge.endswith('error_description="the token lacks the required role(s): admin"')
    # Roles never stand in for a scope, nor for a valid signature or audience.
    rejected(
        httpx.get(url + "/admin", headers=bearer(tenant.sign(roles=["admin"], scope="x"))),
        403,
        "insufficient_scope",
    )
    rejected(
        httpx.get(url + "/admin", headers=bearer(tenant.sign(roles=["admin"], aud="https://x"))),
        401,
        "invalid_token",
    )
    rejected(
        httpx.get(url + "/admin", headers=bearer(tenant.sign(roles=["admin"], exp=1))), 401, "invalid_token"
    )


def test_the_openapi_document_names_the_bearer_scheme(url: str) -> None:
    document = httpx.get(url + "/openapi.json").json()
    assert document["components"]["securitySchemes"]["LogtoAccessToken"]["scheme"] == "bearer"
    for path, method in (("/products", "get"), ("/orgs/{org_id}/members", "get"), ("/admin", "get")):
        assert document["paths"][path][method]["security"] == [{"LogtoAccessToken": []}]
    parameters = document["paths"]["/products/{product_id}"]["delete"]["parameters"]
    assert [p["name"] for p in parameters] == ["product_id"]  # the guard adds no parameter
