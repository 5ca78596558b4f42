"""Back-channel logout at the FastAPI endpoint: a logout token ends the session it names (Redis
sessions deleted, cookie sessions revoked); a forged one is answered 400."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Depends
from fastapi_server import serve
from fastapi_server import sign_in as sign_in_fastapi
from test_backchannel_logout import logout_token
from test_fastapi import make_app as make_fastapi_app
from test_fastapi import web_config

from logto_rs import IdTokenClaims
from logto_rs.fastapi import LogtoFastAPI
from logto_rs.fastapi import RedisSessionStorage as FastAPIRedisStorage
from provider_harness import Provider


@pytest.fixture(autouse=True)
def session_required(provider: Provider) -> None:
    provider.set_backchannel_logout("web-app", "http://127.0.0.1:9/backchannel-logout")


@pytest.mark.parametrize("sessions", ["redis", "cookie"])
def test_the_fastapi_endpoint_ends_the_session(provider: Provider, redis_url: str, sessions: str) -> None:
    storage = FastAPIRedisStorage(redis_url, prefix="logto-bcl-fastapi:") if sessions == "redis" else None
    app, logto = make_fastapi_app(provider, LogtoFastAPI(web_config(provider), storage=storage))

    @app.get("/sid")
    async def sid(user: IdTokenClaims = Depends(logto.claims())) -> dict[str, Any]:  # noqa: B008
        return {"sid": user.sid}

    with serve(app) as url:
        laptop, phone = sign_in_fastapi(url), sign_in_fastapi(url)
        bad = laptop.post(
            "/backchannel-logout", data={"logout_token": logout_token(provider, sign="attacker")}
        )
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid_request")
        assert bad.headers["Cache-Control"] == "no-store"
        token = logout_token(provider, sub="user-alice", sid=laptop.get("/sid").json()["sid"])
        response = phone.post("/backchannel-logout", data={"logout_token": token})
        assert (response.status_code, response.json()) == (200, {})
        assert response.headers["Cache-Control"] == "no-store"
        assert laptop.get("/me").status_code == 401
        assert phone.get("/me").json() == {"sub": "user-alice"}
