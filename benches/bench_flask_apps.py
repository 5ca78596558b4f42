"""Two Flask apps serving the same guarded view, one per SDK, for the end-to-end benchmark.

Each keeps its sessions in Redis under a random id in Flask's cookie, and its view does what
the official SDK's Flask sample does on every request: is the user signed in, the ID-token
claims, and an access token for the API (a cache hit). The official SDK is async-only, so its
view is an ``async def`` view (Flask runs it in an event loop of its own), as in its sample.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import logto
import redis
from flask import Flask, g, jsonify, session

import logto_rs
from logto_rs.flask import LogtoFlask, RedisSessionStorage, authenticated

API = "https://api.example.com"
ENDPOINT = os.environ.get("LOGTO_ENDPOINT", "http://127.0.0.1:1")
REDIS = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


def logto_rs_app() -> Flask:
    app = Flask("logto_rs_bench")
    app.secret_key = os.environ.get("APP_SECRET_KEY", "bench")
    config = logto_rs.LogtoConfig(endpoint=ENDPOINT, appId="spa-app", resources=[API])
    extension = LogtoFlask(app, config, storage=RedisSessionStorage(REDIS))

    @app.get("/guarded")
    @authenticated()
    def guarded() -> Any:
        token = extension.client.blocking.getAccessToken(API)
        return jsonify(sub=g.user.sub, token=len(token or ""))

    return app


class OfficialRedisStorage(logto.Storage):
    """The official SDK's Storage over Redis with the same key layout as logto-rs's."""

    def get(self, key: str) -> Optional[str]:
        sid = session.get("logto_sid")
        value = REDIS.get(f"official:{sid}:{key}") if sid else None
        return value.decode() if isinstance(value, bytes) else None

    def set(self, key: str, value: Optional[str]) -> None:
        REDIS.set(f"official:{session['logto_sid']}:{key}", value or "")

    def delete(self, key: str) -> None:
        REDIS.delete(f"official:{session['logto_sid']}:{key}")


def official_app() -> Flask:
    app = Flask("official_bench")
    app.secret_key = os.environ.get("APP_SECRET_KEY", "bench")
    client = logto.LogtoClient(
        logto.LogtoConfig(endpoint=ENDPOINT, appId="spa-app", resources=[API]),
        storage=OfficialRedisStorage(),
    )

    @app.get("/guarded")
    async def guarded() -> Any:
        if not client.isAuthenticated():
            return jsonify(error="Not authenticated"), 401
        claims = client.getIdTokenClaims()
        token = await client.getAccessToken(API)
        return jsonify(sub=claims.sub, token=len(token or ""))

    @app.get("/bench-session/<sid>")
    def bench_session(sid: str) -> Any:
        session["logto_sid"] = sid
        return ""

    return app


def overhead_app() -> Flask:
    """An ``@authenticated`` view and a view reading the session without the SDK, one app.

    The cookie session (``FlaskSessionStorage``, the default), as in
    ``test_flask_view_overhead.py``: the guarded view costs what the SDK adds to a request.
    """
    app = Flask("overhead_bench")
    app.secret_key = os.environ.get("APP_SECRET_KEY", "bench")
    config = logto_rs.LogtoConfig(endpoint=ENDPOINT, appId="web-app", appSecret="web-app-secret")
    LogtoFlask(app, config)

    @app.get("/guarded")
    @authenticated()
    def guarded() -> Any:
        return {"sub": g.user.sub}

    @app.get("/plain")
    def plain() -> Any:
        return {"signed_in": session.get("logto_idToken") is not None}

    return app
