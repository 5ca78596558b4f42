"""The apps the soak (tests/soak.py) serves on one Redis Cluster: ``flask_app`` under gunicorn,
``fastapi_app`` (a factory) under uvicorn. Both sign users in with the public ``spa-app`` (its
refresh token rotates), keep sessions in Redis (with the back-channel index and replay store
LogtoFlask and LogtoFastAPI build over it), and serve the same routes:

- ``/token``: an access token for ``https://short.example.com`` (a 2-second lifetime, so the
  session refreshes every few requests);
- ``/org-token``: an organization token of ``org-acme``;
- ``/api``: a bearer-guarded API view (``https://api.example.com``);
- ``/health``: the worker's pid and its resident memory and open descriptors.
"""

import os
from typing import Annotated, Any

from redis_clients import async_factory, sync_client

from logto_rs import AccessTokenVerifier, LogtoConfig, UserInfoScope

ENDPOINT = os.environ["LOGTO_ENDPOINT"]
API = "https://api.example.com"
SHORT = "https://short.example.com"


def config() -> LogtoConfig:
    return LogtoConfig(
        endpoint=ENDPOINT,
        appId="spa-app",
        scopes=["read:products", "read:short", UserInfoScope.organizations],
        resources=[API, SHORT],
    )


def health() -> dict[str, Any]:
    """The worker's pid, resident memory (kB) and open file descriptors."""
    rss = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"pid": os.getpid(), "rss_kb": rss, "fds": len(os.listdir("/proc/self/fd"))}


def _flask() -> Any:
    from flask import Flask, jsonify

    from logto_rs.flask import LogtoFlask, RedisSessionStorage, authenticated, require_access_token

    app = Flask(__name__)
    app.secret_key = os.environ["APP_SECRET_KEY"]
    logto = LogtoFlask(app, config(), storage=RedisSessionStorage(sync_client()))
    verifier = AccessTokenVerifier(ENDPOINT, API)

    @app.get("/token")
    @authenticated()
    def token() -> Any:
        access_token = logto.client.blocking.getAccessToken(SHORT)
        claims = logto.client.blocking.getIdTokenClaims()
        return jsonify(token=access_token, sub=claims.sub, sid=claims.sid, pid=os.getpid())

    @app.get("/org-token")
    @authenticated()
    def org_token() -> Any:
        return jsonify(token=logto.client.blocking.getOrganizationToken("org-acme"))

    @app.get("/api")
    @require_access_token(verifier=verifier)
    def api() -> Any:
        return jsonify(ok=True)

    @app.get("/health")
    def healthy() -> Any:
        return jsonify(health())

    return app


def fastapi_app() -> Any:
    from fastapi import Depends, FastAPI
    from starlette.middleware.sessions import SessionMiddleware

    from logto_rs import AccessTokenClaims, LogtoClient
    from logto_rs.fastapi import LogtoFastAPI, RedisSessionStorage, require_access_token

    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=os.environ["APP_SECRET_KEY"])
    logto = LogtoFastAPI(config(), storage=RedisSessionStorage(client_factory=async_factory()))
    logto.init_app(app)
    verifier = AccessTokenVerifier(ENDPOINT, API)

    @app.get("/token")
    async def token(
        access_token: Annotated[str, Depends(logto.access_token(SHORT))],
        client: Annotated[LogtoClient, Depends(logto.client_for)],
    ) -> dict[str, Any]:
        claims = await client.getIdTokenClaimsAsync()
        return {"token": access_token, "sub": claims.sub, "sid": claims.sid, "pid": os.getpid()}

    @app.get("/org-token")
    async def org_token(
        token: Annotated[str, Depends(logto.organization_token("org-acme"))],
    ) -> dict[str, Any]:
        return {"token": token}

    @app.get("/api")
    async def api(
        claims: Annotated[AccessTokenClaims, Depends(require_access_token(verifier))],
    ) -> Any:
        return {"ok": True}

    @app.get("/health")
    async def healthy() -> dict[str, Any]:
        return health()

    return app


flask_app = _flask() if os.environ.get("SOAK_SERVER") == "gunicorn" else None
