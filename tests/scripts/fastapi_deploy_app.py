"""The app the FastAPI deployment test serves with uvicorn and 4 workers: LogtoFastAPI over the
async Redis storage, the public ``spa-app`` (its refresh token rotates at every refresh)."""

import os
from typing import Annotated

from fastapi import Depends, FastAPI
from redis_clients import async_factory
from starlette.middleware.sessions import SessionMiddleware

from logto_rs import AccessTokenVerifier, LogtoClient, LogtoConfig
from logto_rs.fastapi import LogtoFastAPI, RedisSessionStorage

API = "https://api.example.com"


def app() -> FastAPI:
    endpoint = os.environ["LOGTO_ENDPOINT"]
    config = LogtoConfig(endpoint=endpoint, appId="spa-app", scopes=["read:products"], resources=[API])
    application = FastAPI()
    application.add_middleware(SessionMiddleware, secret_key=os.environ["APP_SECRET_KEY"])
    logto = LogtoFastAPI(config, storage=RedisSessionStorage(client_factory=async_factory()))
    logto.init_app(application)
    verifier = AccessTokenVerifier(endpoint, API)

    @application.get("/token")
    async def token(access_token: Annotated[str, Depends(logto.access_token(API))]) -> dict[str, object]:
        claims = await verifier.verify(access_token)
        return {"token": access_token, "sub": claims.sub, "pid": os.getpid()}

    @application.post("/expire")
    async def expire(client: Annotated[LogtoClient, Depends(logto.client_for)]) -> dict[str, object]:
        """Drops the session's access tokens, as if they had expired."""
        await client.clearAccessToken()
        return {"pid": os.getpid()}

    @application.get("/health")
    async def health() -> dict[str, object]:
        return {"pid": os.getpid()}

    return application
