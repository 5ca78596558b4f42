"""The logto-rs FastAPI demo: sign in, see your claims and userinfo, organization tokens, a protected
API called with your access token, sign out.

``.venv/bin/python examples/fastapi_app.py`` (after ``bash .ci/setup --demo``) runs it against the
project's Logto-compatible development provider, started here on 127.0.0.1, on
http://127.0.0.1:8001. To use a real Logto tenant instead, set ``LOGTO_ENDPOINT``,
``LOGTO_APP_ID`` and ``LOGTO_APP_SECRET``, register ``http://127.0.0.1:8001/callback``
(redirect URI) and ``http://127.0.0.1:8001/`` (post sign-out redirect URI) for the app, and
create the API resource ``LOGTO_RESOURCE`` (default ``https://api.example.com``) with a
``read:products`` permission given to your user's role. Set ``LOGTO_REDIS_URL`` to keep sessions
in Redis instead of the cookie.

``GET /api/products`` is the protected API: it accepts a Logto access token for the resource with
the ``read:products`` scope (``Authorization: Bearer …``). The signed-in page's "Call the API" link
calls it from the server with the user's own access token, so the token never reaches the browser.
The OpenAPI document is at ``/docs``.

With uvicorn directly (several workers need Redis sessions and a fixed ``APP_SECRET_KEY``)::

    LOGTO_ENDPOINT=… LOGTO_APP_ID=… LOGTO_APP_SECRET=… APP_SECRET_KEY=… \\
        uvicorn --factory fastapi_app:app_from_env --app-dir examples --proxy-headers
"""

import logging
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from pathlib import Path
from typing import Annotated, Optional

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.middleware.sessions import SessionMiddleware

from logto_rs import (
    AccessTokenClaims,
    AccessTokenVerifier,
    IdTokenClaims,
    LogtoClient,
    LogtoConfig,
    LogtoOAuthError,
    UserInfoResponse,
    UserInfoScope,
)
from logto_rs.fastapi import CookieSessionStorage, LogtoFastAPI, RedisSessionStorage, require_access_token

HOST, PORT = "127.0.0.1", 8001
DEMO_USER = ("alice", "alice-password")
API = "https://api.example.com"

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>logto-rs FastAPI demo</title></head>
<body><h1>logto-rs FastAPI demo</h1>{body}</body></html>"""


class RedactCallbackQuery(logging.Filter):
    """Replaces the values of ``code`` and ``state`` in uvicorn's access log lines.

    The callback's request line carries the authorization code and the state.
    """

    SECRET_PARAMETER = re.compile(r"([?&;](?:code|state)=)[^&;\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.SECRET_PARAMETER.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_access_log() -> None:
    """Keep authorization codes and states out of uvicorn's access log (idempotent)."""
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactCallbackQuery) for f in access_log.filters):
        access_log.addFilter(RedactCallbackQuery())


def create_app(
    config: LogtoConfig,
    storage: Optional[RedisSessionStorage] = None,
    *,
    resource: str = API,
    secret_key: Optional[str] = None,
) -> FastAPI:
    """Build the demo app for ``config`` (sessions in the cookie unless ``storage`` is given)."""
    redact_access_log()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if storage is not None:
            await storage.aclose()

    app = FastAPI(title="logto-rs FastAPI demo", lifespan=lifespan)
    https_only = os.environ.get("APP_HTTPS_ONLY") == "1"
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key or os.environ.get("APP_SECRET_KEY") or secrets.token_hex(32),
        https_only=https_only,
    )
    logto = LogtoFastAPI(config, storage=storage or CookieSessionStorage())
    logto.init_app(app)
    verifier = AccessTokenVerifier(config.endpoint, resource)  # one per process, shared by routes

    Client = Annotated[LogtoClient, Depends(logto.client_for)]
    User = Annotated[IdTokenClaims, Depends(logto.claims(should_redirect=True))]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home(client: Client) -> str:
        if not await client.isAuthenticatedAsync():
            return PAGE.format(
                body='<p id="status">You are signed out.</p><a id="sign-in" href="/sign-in">Sign in</a>'
            )
        claims = await client.getIdTokenClaimsAsync()
        name = escape(claims.name or claims.username or claims.sub)
        return PAGE.format(
            body=f'<p id="status">Signed in as <b id="name">{name}</b>.</p>'
            '<ul><li><a id="userinfo" href="/protected/userinfo">Userinfo</a></li>'
            '<li><a id="organizations" href="/protected/organizations">Organization tokens</a></li>'
            '<li><a id="call-api" href="/protected/api">Call the API</a></li>'
            '<li><form method="post" action="/sign-out">'
            '<button id="sign-out" type="submit">Sign out</button></form></li></ul>'
        )

    @app.get("/protected/userinfo", response_class=HTMLResponse, include_in_schema=False)
    async def userinfo(
        user: Annotated[UserInfoResponse, Depends(logto.userinfo(should_redirect=True))],
    ) -> str:
        user_json = user.model_dump_json(indent=2, exclude_unset=True)
        return PAGE.format(body=f'<pre id="userinfo-json">{escape(user_json)}</pre><a href="/">Home</a>')

    @app.get("/protected/organizations", response_class=HTMLResponse, include_in_schema=False)
    async def organizations(user: User, client: Client) -> str:
        rows = []
        for organization_id in user.organizations or []:
            try:
                claims = await client.getOrganizationTokenClaims(organization_id, verify=True)
                rows.append(
                    f"<li>{escape(organization_id)}: scopes <code>{escape(claims.scope or '')}</code></li>"
                )
            except LogtoOAuthError as error:
                rows.append(f"<li>{escape(organization_id)}: {escape(error.code)}</li>")
            if storage is None:
                # A cookie keeps 4 KB, and Starlette's session cookie (base64 of JSON) passes it
                # with an ID token and three access tokens: drop each organization token once
                # shown (the API token is refreshed when next needed). Redis sessions keep them.
                await client.clearAccessToken()
        return PAGE.format(body=f'<ul id="org-tokens">{"".join(rows)}</ul><a href="/">Home</a>')

    @app.get("/protected/api", response_class=HTMLResponse, include_in_schema=False)
    async def call_api(
        request: Request,
        access_token: Annotated[str, Depends(logto.access_token(resource, should_redirect=True))],
    ) -> str:
        """The signed-in page calls the API with the user's access token, from the server."""
        async with httpx.AsyncClient(base_url=str(request.base_url), timeout=10) as http:
            answer = await http.get("/api/products", headers={"Authorization": f"Bearer {access_token}"})
        return PAGE.format(
            body=f'<p>GET /api/products: <span id="api-status">{answer.status_code}</span></p>'
            f'<pre id="api-json">{escape(answer.text)}</pre><a href="/">Home</a>'
        )

    @app.get("/api/products", tags=["products"])
    async def products(
        claims: Annotated[AccessTokenClaims, Depends(require_access_token(verifier, ["read:products"]))],
    ) -> dict[str, object]:
        """The products the caller may read (needs a Logto access token with ``read:products``)."""
        return {"user": claims.sub, "scopes": claims.scopes, "products": ["espresso", "flat white"]}

    return app


def demo_config(endpoint: str, app_id: str, app_secret: Optional[str], resource: str = API) -> LogtoConfig:
    """The demo's configuration: userinfo, organizations and ``read:products`` on ``resource``."""
    return LogtoConfig(
        endpoint=endpoint,
        appId=app_id,
        appSecret=app_secret,
        scopes=[
            UserInfoScope.email,
            UserInfoScope.custom_data,
            UserInfoScope.identities,
            UserInfoScope.roles,
            UserInfoScope.organizations,
            UserInfoScope.organization_roles,
            "read:members",
            "read:products",
        ],
        resources=[resource],
    )


def _storage() -> Optional[RedisSessionStorage]:
    url = os.environ.get("LOGTO_REDIS_URL")
    return RedisSessionStorage(url) if url else None


def app_from_env() -> FastAPI:
    """The demo app for ``LOGTO_ENDPOINT``, ``LOGTO_APP_ID``, ``LOGTO_APP_SECRET`` (uvicorn --factory)."""
    resource = os.environ.get("LOGTO_RESOURCE") or API
    config = demo_config(
        os.environ["LOGTO_ENDPOINT"], os.environ["LOGTO_APP_ID"], os.environ.get("LOGTO_APP_SECRET"), resource
    )
    return create_app(config, _storage(), resource=resource)


def main() -> None:
    """Serve the demo on http://127.0.0.1:8001 against LOGTO_ENDPOINT or the dev provider."""
    import uvicorn

    if os.environ.get("LOGTO_ENDPOINT"):
        print(f"logto-rs FastAPI demo on http://{HOST}:{PORT}/", flush=True)
        uvicorn.run(app_from_env(), host=HOST, port=PORT, proxy_headers=True)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from provider_harness import Provider

    with Provider().start() as provider:
        app = create_app(demo_config(provider.endpoint, "web-app", "web-app-secret"), _storage())
        print(f"Logto-compatible development provider on {provider.endpoint}", flush=True)
        print(
            f"logto-rs FastAPI demo on http://{HOST}:{PORT}/  sign in as {DEMO_USER[0]} / {DEMO_USER[1]}",
            flush=True,
        )
        uvicorn.run(app, host=HOST, port=PORT, proxy_headers=True)


if __name__ == "__main__":
    main()
