"""The Flask app deployed as Python apps are: gunicorn with --preload and 4 workers (threaded),
sessions in a real redis-server, start-up network calls in the master, a browser firing
parallel requests.

One session's access token expires; 16 parallel requests land on the 4 workers: the provider
sees exactly one refresh, every response is 200, and the grant still works at the next expiry.
The master stays up and no worker crashes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provider_harness import Provider, complete_sign_in
from serving import Server, app_env, assert_one_refresh_per_burst, gunicorn


@pytest.fixture
def server(provider: Provider, redis_url: str, tmp_path: Path) -> Iterator[Server]:
    env = app_env(
        {"LOGTO_ENDPOINT": provider.endpoint, "REDIS_URL": redis_url, "APP_SECRET_KEY": secrets.token_hex(16)}
    )
    with gunicorn("deploy_app:app", env, "/health", tmp_path / "gunicorn.log") as served:
        provider.add_redirect_uris("spa-app", [f"{served.url}/callback"], [f"{served.url}/"])
        yield served


def sign_in(server: Server) -> httpx.Client:
    browser = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    to_provider = browser.get("/sign-in")
    assert to_provider.status_code == 302
    callback = complete_sign_in(to_provider.headers["Location"], server.url + "/callback")
    assert browser.get(callback).status_code == 302
    return browser


def test_parallel_requests_of_one_session_across_workers_refresh_once(
    provider: Provider, server: Server
) -> None:
    browser = sign_in(server)
    assert_one_refresh_per_burst(provider, browser, server.url, "/expire", "/token")
    # Every refresh token was presented once: the provider revoked nothing.
    assert browser.get("/token").status_code == 200
    server.assert_no_worker_crashed()


def test_a_planted_session_id_is_worthless_after_sign_in(
    provider: Provider, server: Server, redis_url: str
) -> None:
    import redis

    store = redis.Redis.from_url(redis_url)

    def session_ids() -> set[str]:
        return {k.decode().split(":")[1] for k in store.keys("logto:*")}

    # The attacker gets a session id of their own and plants its cookie in the victim's browser.
    before = session_ids()
    attacker = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    assert attacker.get("/sign-in").status_code == 302
    planted = attacker.cookies.get("session")
    attacker_ids = session_ids() - before
    assert planted and len(attacker_ids) == 1
    victim = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    victim.cookies.set("session", planted, domain="127.0.0.1")
    to_provider = victim.get("/sign-in")
    callback = complete_sign_in(to_provider.headers["Location"], server.url + "/callback")
    assert victim.get(callback).status_code == 302
    assert victim.get("/token").status_code == 200
    # The attacker's copy of the cookie names nothing: not signed in, no key of it left in Redis.
    assert attacker.get("/token").status_code == 401
    assert victim.cookies.get("session") != planted
    assert not session_ids() & attacker_ids
