"""The app the deployment tests serve with gunicorn: LogtoFlask over RedisSessionStorage.

Importing it makes network calls, as real apps do at start-up (a machine token, the verifier's
keys, the provider's discovery): under ``gunicorn --preload`` they happen in the master, before
the workers are forked.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify
from redis_clients import sync_client

from logto_rs import (
    AccessTokenVerifier,
    LogtoClient,
    LogtoConfig,
    LogtoM2MClient,
    LogtoM2MConfig,
    MemoryStorage,
)
from logto_rs.flask import LogtoFlask, RedisSessionStorage, authenticated

ENDPOINT = os.environ["LOGTO_ENDPOINT"]
API = "https://api.example.com"

config = LogtoConfig(endpoint=ENDPOINT, appId="spa-app", scopes=["read:products"], resources=[API])

# Start-up network calls in the (pre-forking) master.
m2m = LogtoM2MClient(LogtoM2MConfig(endpoint=ENDPOINT, appId="m2m-app", appSecret="m2m-app-secret"))
verifier = AccessTokenVerifier(ENDPOINT, API)
verifier.blocking.verify(m2m.blocking.getAccessToken(API).accessToken)
LogtoClient(config, storage=MemoryStorage()).blocking.signIn("http://127.0.0.1/callback")

app = Flask(__name__)
app.secret_key = os.environ["APP_SECRET_KEY"]
logto = LogtoFlask(app, config, storage=RedisSessionStorage(sync_client()))


@app.get("/token")
@authenticated()
def token() -> object:
    access_token = logto.client.blocking.getAccessToken(API)
    claims = verifier.blocking.verify(access_token or "")
    return jsonify(token=access_token, sub=claims.sub, pid=os.getpid())


@app.post("/expire")
@authenticated()
def expire() -> object:
    """Drops the session's access tokens, as if they had expired."""
    logto.client.blocking.clearAccessToken()
    return jsonify(pid=os.getpid())


@app.get("/health")
def health() -> object:
    return jsonify(pid=os.getpid())
