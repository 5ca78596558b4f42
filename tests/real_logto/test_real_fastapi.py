"""LogtoFastAPI against the real Logto over HTTP (httpx's ASGI transport), with the signed
cookie session and with RedisSessionStorage on a real redis-server, and the bearer guard on the
tenant's own access tokens."""

import asyncio
from typing import Annotated, Any, Optional
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
from fastapi import Depends, FastAPI
from starlette.middleware.sessions import SessionMiddleware

from conftest import ORGANIZATIONS_SCOPE, RealLogto, experience_sign_in, jwt_parts
from logto_rs import AccessTokenClaims, AccessTokenVerifier, IdTokenClaims, LogtoConfig
from logto_rs.fastapi import LogtoFastAPI, RedisSessionStorage, require_access_token

ORIGIN = "http://127.0.0.1:5000"  # a redirect URI registered for the `web` app


def make_app(logto: RealLogto, storage: Optional[RedisSessionStorage]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key="real-logto-test-secret")
    config = LogtoConfig(
        endpoint=logto.endpoint,
        appId=logto.web[0],
        appSecret=logto.web[1],
        scopes=["email", ORGANIZATIONS_SCOPE, "read:products"],
        resources=[logto.resource],
    )
    integration = LogtoFastAPI(config, storage=storage)
    integration.init_app(app)
    verifier = AccessTokenVerifier(logto.endpoint, logto.resource)
    organizations = AccessTokenVerifier(logto.endpoint)

    @app.get("/me")
    async def me(user: Annotated[IdTokenClaims, Depends(integration.claims())]) -> dict[str, Any]:
        return {"sub": user.sub}

    @app.get("/userinfo")
    async def userinfo(user: Annotated[Any, Depends(integration.userinfo())]) -> dict[str, Any]:
        return {"sub": user.sub, "username": user.username, "email": user.email}

    @app.get("/token")
    async def token(
        value: Annotated[str, Depends(integration.access_token(logto.resource))],
    ) -> dict[str, Any]:
        return {"token": value}

    @app.get("/orgs/{organization_id}/token")
    async def org_token(value: Annotated[str, Depends(integration.organization_token())]) -> dict[str, Any]:
        return {"token": value}

    @app.get("/api/products")
    async def products(
        claims: Annotated[AccessTokenClaims, Depends(require_access_token(verifier, ["read:products"]))],
    ) -> dict[str, Any]:
        return {"sub": claims.sub}

    @app.get("/api/orgs/{org_id}")
    async def organization(
        claims: Annotated[
            AccessTokenClaims,
            Depends(require_access_token(organizations, organization_id=lambda r: r.path_params["org_id"])),
        ],
    ) -> dict[str, Any]:
        return {"aud": claims.aud}

    return app


@pytest.fixture(params=["cookie", "redis"])
def storage(request: pytest.FixtureRequest) -> Optional[RedisSessionStorage]:
    if request.param == "cookie":
        return None
    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    return RedisSessionStorage(url, prefix="logto-real-fastapi:")


def test_fastapi_journey(logto: RealLogto, storage: Optional[RedisSessionStorage]) -> None:
    app = make_app(logto, storage)

    async def journey() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as browser:
            assert (await browser.get("/me")).status_code == 401
            to_logto = await browser.get("/sign-in", params={"next": "/me"})
            assert to_logto.status_code == 302
            callback = await asyncio.to_thread(experience_sign_in, to_logto.headers["Location"], logto)
            assert callback.startswith(ORIGIN + "/callback?")
            back = await browser.get(callback)
            assert (back.status_code, back.headers["Location"]) == (302, "/me"), back.text
            assert (await browser.get("/me")).json() == {"sub": logto.user_id("alice")}
            info = (await browser.get("/userinfo")).json()
            assert info == {"sub": logto.user_id("alice"), "username": "alice", "email": "alice@example.com"}

            token = (await browser.get("/token")).json()["token"]
            assert jwt_parts(token)[1]["aud"] == logto.resource
            org = (await browser.get(f"/orgs/{logto.organization_id}/token")).json()["token"]
            assert jwt_parts(org)[1]["aud"] == f"urn:logto:organization:{logto.organization_id}"

            # The guard on the tenant's own tokens.
            bearer = {"Authorization": f"Bearer {token}"}
            assert (await browser.get("/api/products", headers=bearer)).json() == {
                "sub": logto.user_id("alice")
            }
            refused = await browser.get("/api/products", headers={"Authorization": f"Bearer {org}"})
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith(
                "Bearer error="
            )
            org_bearer = {"Authorization": f"Bearer {org}"}
            accepted = await browser.get(f"/api/orgs/{logto.organization_id}", headers=org_bearer)
            assert accepted.json() == {"aud": f"urn:logto:organization:{logto.organization_id}"}
            assert (await browser.get("/api/orgs/another-org", headers=org_bearer)).status_code == 401

            out = await browser.post("/sign-out", headers={"Origin": ORIGIN})
            assert out.status_code == 303
            end_session = out.headers["Location"]
            assert end_session.startswith(logto.issuer + "/session/end?")
            assert parse_qs(urlsplit(end_session).query)["post_logout_redirect_uri"] == [ORIGIN + "/"]
            assert (await browser.get("/me")).status_code == 401
        if storage is not None:
            await storage.aclose()

    asyncio.run(journey())
    if storage is not None:
        assert redis.Redis.from_url(storage.url or "").keys(storage.prefix + "*") == []
