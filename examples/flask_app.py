"""The logto-rs Flask demo: sign in, see your claims and userinfo, get organization tokens, sign out.

``bash .ci/demo`` runs it against the project's Logto-compatible development provider (started
here on 127.0.0.1) and prints the URL and the demo user. To use a real Logto tenant instead, set
``LOGTO_ENDPOINT``, ``LOGTO_APP_ID`` and ``LOGTO_APP_SECRET``, and register
``http://127.0.0.1:5000/callback`` (redirect URI) and ``http://127.0.0.1:5000/`` (post sign-out
redirect URI) for the app. Set ``LOGTO_REDIS_URL`` to keep sessions in Redis instead of the cookie.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Optional

from flask import Flask, g
from markupsafe import escape

from logto_rs import LogtoConfig, LogtoOAuthError, Storage, UserInfoScope
from logto_rs.flask import FlaskSessionStorage, LogtoFlask, RedisSessionStorage, authenticated

HOST, PORT = "127.0.0.1", 5000
DEMO_USER = ("alice", "alice-password")

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>logto-rs demo</title></head>
<body><h1>logto-rs demo</h1>{body}</body></html>"""


class RedactCallbackQuery(logging.Filter):
    """Replaces the values of ``code`` and ``state`` in the access log's request lines.

    The development server logs every request line, and the callback's carries the authorization
    code and the state.
    """

    SECRET_PARAMETER = re.compile(r"([?&;](?:code|state)=)[^&;\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.SECRET_PARAMETER.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_access_log() -> None:
    """Keep authorization codes and states out of the werkzeug access log (idempotent)."""
    access_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactCallbackQuery) for f in access_log.filters):
        access_log.addFilter(RedactCallbackQuery())


def create_app(config: LogtoConfig, storage: Optional[Storage] = None) -> Flask:
    """Build the demo app for ``config`` (``storage`` defaults to the cookie session)."""
    redact_access_log()
    app = Flask(__name__)
    app.secret_key = os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32)
    logto = LogtoFlask(app, config, storage=storage or FlaskSessionStorage())

    @app.route("/")
    def home() -> str:
        client = logto.client.blocking
        if not client.isAuthenticated():
            return PAGE.format(
                body='<p id="status">You are signed out.</p><a id="sign-in" href="/sign-in">Sign in</a>'
            )
        claims = client.getIdTokenClaims()
        name = escape(claims.name or claims.username or claims.sub)
        return PAGE.format(
            body=f'<p id="status">Signed in as <b id="name">{name}</b>.</p>'
            '<ul><li><a id="userinfo" href="/protected/userinfo">Userinfo</a></li>'
            '<li><a id="organizations" href="/protected/organizations">Organization tokens</a></li>'
            '<li><form method="post" action="/sign-out">'
            '<button id="sign-out" type="submit">Sign out</button></form></li></ul>'
        )

    @app.route("/protected/userinfo")
    @authenticated(shouldRedirect=True, fetchUserInfo=True)
    def userinfo() -> str:
        user_json = g.user.model_dump_json(indent=2, exclude_unset=True)
        return PAGE.format(body=f'<pre id="userinfo-json">{escape(user_json)}</pre><a href="/">Home</a>')

    @app.route("/protected/organizations")
    @authenticated(shouldRedirect=True)
    def organizations() -> str:
        rows = []
        for organization_id in g.user.organizations or []:
            try:
                claims = logto.client.blocking.getOrganizationTokenClaims(organization_id, verify=True)
                rows.append(
                    f"<li>{escape(organization_id)}: scopes <code>{escape(claims.scope or '')}</code></li>"
                )
            except LogtoOAuthError as error:
                rows.append(f"<li>{escape(organization_id)}: {escape(error.code)}</li>")
        return PAGE.format(body=f'<ul id="org-tokens">{"".join(rows)}</ul><a href="/">Home</a>')

    return app


def _storage() -> Optional[Storage]:
    url = os.environ.get("LOGTO_REDIS_URL")
    if not url:
        return None
    import redis

    return RedisSessionStorage(redis.Redis.from_url(url))


def _config(endpoint: str, app_id: str, app_secret: Optional[str]) -> LogtoConfig:
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
        ],
    )


def main() -> None:
    """Serve the demo on http://127.0.0.1:5000 against LOGTO_ENDPOINT or the dev provider."""
    endpoint = os.environ.get("LOGTO_ENDPOINT")
    if endpoint:
        app = create_app(
            _config(endpoint, os.environ["LOGTO_APP_ID"], os.environ.get("LOGTO_APP_SECRET")), _storage()
        )
        print(f"logto-rs demo on http://{HOST}:{PORT}/ (Logto: {endpoint})", flush=True)
        app.run(host=HOST, port=PORT)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from provider_harness import Provider

    with Provider().start() as provider:
        app = create_app(_config(provider.endpoint, "web-app", "web-app-secret"), _storage())
        # As in the Logto Console: Backchannel logout URI, "Is session required?" on.
        provider.set_backchannel_logout("web-app", f"http://{HOST}:{PORT}/backchannel-logout")
        print(f"Logto-compatible development provider on {provider.endpoint}", flush=True)
        print(
            f"logto-rs demo on http://{HOST}:{PORT}/  sign in as {DEMO_USER[0]} / {DEMO_USER[1]}", flush=True
        )
        app.run(host=HOST, port=PORT)


if __name__ == "__main__":
    main()
