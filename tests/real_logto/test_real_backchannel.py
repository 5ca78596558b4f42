"""Back-channel logout with the real Logto: an app of our own (created through the
Management API with a backchannelLogoutUri and "Is session required?") served over HTTP; the
user signs in through the Experience API, then ends the session at Logto's end-session page,
and Logto's logout token ends the app's session."""

from __future__ import annotations

import http.cookiejar
import secrets
import threading
from collections.abc import Iterator
from typing import Any, Callable

import httpx
import pytest
import redis
from flask import Flask, g
from werkzeug.serving import BaseWSGIServer, make_server

from conftest import RealLogto, experience_sign_in
from logto_rs import LogtoConfig, Storage
from logto_rs.flask import FlaskSessionStorage, LogtoFlask, RedisSessionStorage, authenticated
from provider_harness import complete_sign_out


@pytest.fixture
def served() -> Iterator[tuple[Flask, str]]:
    """An empty Flask app served on 127.0.0.1 (a free port), reachable by Logto."""
    app = Flask(__name__)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def application(logto: RealLogto, m2m_token: Callable[[], str], served: tuple[Flask, str]) -> Iterator[Any]:
    """A Traditional app of this test, deleted afterwards: (id, secret)."""
    _, url = served
    api = httpx.Client(
        base_url=logto.endpoint + "/api", headers={"Authorization": f"Bearer {m2m_token()}"}, timeout=10
    )
    metadata = {
        "redirectUris": [url + "/callback"],
        "postLogoutRedirectUris": [url + "/"],
        "backchannelLogoutUri": url + "/backchannel-logout",
        "backchannelLogoutSessionRequired": True,
    }
    name = f"backchannel-{secrets.token_hex(4)}"
    created = api.post(
        "/applications", json={"name": name, "type": "Traditional", "oidcClientMetadata": metadata}
    )
    assert created.status_code == 200, created.text
    app_id = created.json()["id"]
    assert created.json()["oidcClientMetadata"]["backchannelLogoutUri"] == metadata["backchannelLogoutUri"]
    try:
        secret = api.get(f"/applications/{app_id}/secrets").json()[0]["value"]
        yield app_id, secret
    finally:
        api.delete(f"/applications/{app_id}")
        api.close()


def sign_in_keeping_logto_cookies(sign_in_url: str, logto: RealLogto, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Sign in through the Experience API (signin.py), keeping Logto's session cookies, which
    the end-session page needs: signin.py's cookie jar is this one."""
    jar = http.cookiejar.CookieJar()
    with monkeypatch.context() as patch:
        patch.setattr(http.cookiejar, "CookieJar", lambda *args, **kwargs: jar)
        callback = experience_sign_in(sign_in_url, logto)
    return callback, jar


@pytest.mark.parametrize("sessions", ["cookie", "redis"])
def test_signing_out_at_logto_ends_the_app_session(
    logto: RealLogto,
    application: tuple[str, str],
    served: tuple[Flask, str],
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sessions: str,
) -> None:
    app, url = served
    app.secret_key = secrets.token_hex(16)
    storage: Storage = (
        RedisSessionStorage(redis.Redis.from_url(redis_url), prefix="logto-real-bcl:")
        if sessions == "redis"
        else FlaskSessionStorage()
    )
    config = LogtoConfig(endpoint=logto.endpoint, appId=application[0], appSecret=application[1])
    LogtoFlask(app, config, storage=storage)

    @app.route("/protected")
    @authenticated()
    def protected() -> dict[str, Any]:
        return {"sub": g.user.sub, "sid": g.user.sid}

    store = redis.Redis.from_url(redis_url)
    earlier = set(store.keys("logto-real-bcl:*"))
    browser = httpx.Client(base_url=url, timeout=30)
    to_logto = browser.get("/sign-in")
    assert to_logto.status_code == 302
    callback, logto_cookies = sign_in_keeping_logto_cookies(to_logto.headers["Location"], logto, monkeypatch)
    assert browser.get(callback).status_code == 302
    signed_in = browser.get("/protected").json()
    assert signed_in["sub"] == logto.user_id("alice")
    assert signed_in["sid"], "Logto puts sid in the ID token when the session is required"

    # The user signs out at Logto (its end-session page), not through the app.
    with httpx.Client(cookies=logto_cookies, timeout=30, follow_redirects=False) as at_logto:
        complete_sign_out(f"{logto.issuer}/session/end?client_id={application[0]}", at_logto)
    response = browser.get("/protected")
    assert response.status_code == 401, response.text
    # A Redis session was deleted; only its tombstone (which refuses late writes) is left.
    assert {k for k in store.keys("logto-real-bcl:*") if not k.endswith(b":ended")} <= earlier
