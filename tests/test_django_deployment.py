"""The Django test site deployed as Django apps are: gunicorn with --preload and 4 threaded
workers, sessions in Django's RedisCache or in the database, the refresh lock in Django's
RedisCache, and a public app (``spa-app``) whose refresh token rotates at every refresh.

One session's access token expires; 16 parallel requests land on the 4 workers: the provider
sees exactly one refresh, every response is 200, and the grant still works at the next expiry.
"""

from __future__ import annotations

import concurrent.futures
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provider_harness import Provider, complete_sign_in, free_port
from test_deployment_gunicorn import BURST, WORKERS, Server, refreshes

TESTS = Path(__file__).resolve().parent


@pytest.fixture(params=["cache", "db"])
def server(
    request: pytest.FixtureRequest, provider: Provider, redis_url: str, tmp_path: Path
) -> Iterator[Server]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    provider.add_redirect_uris("spa-app", [f"{url}/auth/callback/"], [f"{url}/"])
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "django_site.settings",
        "DJANGO_SECRET_KEY": secrets.token_hex(16),
        "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
        "LOGTO_ENDPOINT": provider.endpoint,
        "LOGTO_APP_ID": "spa-app",
        "LOGTO_APP_SECRET": "",
        "REDIS_URL": redis_url,
        "SESSION_ENGINE": f"django.contrib.sessions.backends.{request.param}",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(
        [sys.executable, "-c", "import django_site; django_site.setup()"], env=env, check=True, timeout=120
    )
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                sys.executable,  # this interpreter's Django (.ci/django-lowest runs another)
                "-m",
                "gunicorn",
                "--preload",
                "--workers",
                str(WORKERS),
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "60",
                "django_site.wsgi",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 60
        pids: set[int] = set()
        while len(pids) < WORKERS:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not start its workers"
            try:
                pids.add(httpx.get(url + "/health/", timeout=2).json()["pid"])
            except httpx.HTTPError:
                time.sleep(0.1)
        yield Server(process, url, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_parallel_requests_of_one_session_across_workers_refresh_once(
    provider: Provider, server: Server
) -> None:
    browser = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    to_provider = browser.get("/auth/sign-in/")
    assert to_provider.status_code == 302
    callback = complete_sign_in(to_provider.headers["Location"], server.url + "/auth/callback/")
    assert browser.get(callback).status_code == 302
    pids: set[int] = set()
    for round_ in range(2):  # the second round: the grant still works at the next expiry
        assert browser.post("/expire/").status_code == 200
        provider.reset()
        responses = burst_django(server, browser.cookies)
        assert [r.status_code for r in responses] == [200] * BURST, [r.text[:300] for r in responses]
        bodies = [r.json() for r in responses]
        assert {b["sub"] for b in bodies} == {"user-alice"}
        assert len({b["token"] for b in bodies}) == 1, "the session was refreshed more than once"
        assert len(refreshes(provider)) == 1, round_
        pids |= {b["pid"] for b in bodies}
    assert len(pids) > 1, "the burst did not reach several workers"
    # Every refresh token was presented once: the provider revoked nothing.
    assert browser.get("/token/").status_code == 200
    assert server.process.poll() is None
    log = server.log_text()
    assert log.count("Booting worker") == WORKERS, log
    for sign in ("SIGSEGV", "Worker (pid", "exited with code", "Traceback"):
        assert sign not in log, log


def burst_django(server: Server, cookies: httpx.Cookies) -> list[httpx.Response]:
    """``BURST`` parallel requests of the session's token view, each from a tab of its own."""

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as tab:
            return tab.get("/token/")

    with concurrent.futures.ThreadPoolExecutor(max_workers=BURST) as pool:
        return list(pool.map(one, range(BURST)))
