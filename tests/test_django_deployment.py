"""The Django test site deployed as Django apps are: gunicorn with --preload and 4 threaded
workers, sessions in Django's RedisCache or in the database, the refresh lock in Django's
RedisCache, and a public app (``spa-app``) whose refresh token rotates at every refresh.

One session's access token expires; 16 parallel requests land on the 4 workers: the provider
sees exactly one refresh, every response is 200, and the grant still works at the next expiry.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provider_harness import Provider, complete_sign_in
from serving import Server, app_env, assert_one_refresh_per_burst, gunicorn

TESTS = Path(__file__).resolve().parent


@pytest.fixture(params=["cache", "db"])
def server(
    request: pytest.FixtureRequest, provider: Provider, redis_url: str, tmp_path: Path
) -> Iterator[Server]:
    env = app_env(
        {
            "DJANGO_SETTINGS_MODULE": "django_site.settings",
            "DJANGO_SECRET_KEY": secrets.token_hex(16),
            "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
            "LOGTO_ENDPOINT": provider.endpoint,
            "LOGTO_APP_ID": "spa-app",
            "LOGTO_APP_SECRET": "",
            "REDIS_URL": redis_url,
            "SESSION_ENGINE": f"django.contrib.sessions.backends.{request.param}",
        },
        TESTS,
    )
    subprocess.run(
        [sys.executable, "-c", "import django_site; django_site.setup()"], env=env, check=True, timeout=120
    )
    with gunicorn("django_site.wsgi", env, "/health/", tmp_path / "gunicorn.log") as served:
        provider.add_redirect_uris("spa-app", [f"{served.url}/auth/callback/"], [f"{served.url}/"])
        yield served


def test_parallel_requests_of_one_session_across_workers_refresh_once(
    provider: Provider, server: Server
) -> None:
    browser = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    to_provider = browser.get("/auth/sign-in/")
    assert to_provider.status_code == 302
    callback = complete_sign_in(to_provider.headers["Location"], server.url + "/auth/callback/")
    assert browser.get(callback).status_code == 302
    assert_one_refresh_per_burst(provider, browser, server.url, "/expire/", "/token/")
    # Every refresh token was presented once: the provider revoked nothing.
    assert browser.get("/token/").status_code == 200
    server.assert_no_worker_crashed()
