"""The Flask demo app over RedisSessionStorage, for gunicorn: the back-channel logout journey."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import redis
from flask import jsonify

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from flask_app import _config, create_app  # noqa: E402

from logto_rs.flask import RedisSessionStorage  # noqa: E402

app = create_app(
    _config(os.environ["LOGTO_ENDPOINT"], "web-app", "web-app-secret"),
    RedisSessionStorage(redis.Redis.from_url(os.environ["REDIS_URL"])),
)


@app.get("/health")
def health() -> object:
    return jsonify(pid=os.getpid())
