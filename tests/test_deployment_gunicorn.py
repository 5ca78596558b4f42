"""The Flask app deployed as Python apps are: gunicorn with --preload and 4 workers (threaded),
sessions in a real redis-server, start-up network calls in the master, a browser firing
parallel requests.

One session's access token expires; 16 parallel requests land on the 4 workers: the provider
sees exactly one refresh, every response is 200, and the grant still works at the next expiry.
The master stays up and no worker crashes.
"""

from __future__ import annotations

import concurrent.futures
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provider_harness import Provider, complete_sign_in, free_port

SCRIPTS = Path(__file__).resolve().parent / "scripts"
WORKERS = 4
BURST = 16


class Server:
    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def server(provider: Provider, redis_url: str, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    provider.add_redirect_uris("spa-app", [f"{url}/callback"], [f"{url}/"])
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "LOGTO_ENDPOINT": provider.endpoint,
        "REDIS_URL": redis_url,
        "APP_SECRET_KEY": secrets.token_hex(16),
        "PYTHONPATH": os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")]),
    }
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                gunicorn,
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
                "deploy_app:app",
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
                pids.add(httpx.get(url + "/health", timeout=2).json()["pid"])
            except httpx.HTTPError:
                time.sleep(0.1)
        yield Server(process, url, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def sign_in(server: Server) -> httpx.Client:
    browser = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    to_provider = browser.get("/sign-in")
    assert to_provider.status_code == 302
    callback = complete_sign_in(to_provider.headers["Location"], server.url + "/callback")
    assert browser.get(callback).status_code == 302
    return browser


def burst(server: Server, cookies: httpx.Cookies) -> list[httpx.Response]:
    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as tab:
            return tab.get("/token")

    with concurrent.futures.ThreadPoolExecutor(max_workers=BURST) as pool:
        return list(pool.map(one, range(BURST)))


def refreshes(provider: Provider) -> list[dict[str, Any]]:
    return provider.requests(path="/oidc/token", grant_type="refresh_token")


def test_parallel_requests_of_one_session_across_workers_refresh_once(
    provider: Provider, server: Server
) -> None:
    browser = sign_in(server)
    pids: set[int] = set()
    for round_ in range(2):  # the second round: the grant still works at the next expiry
        assert browser.post("/expire").status_code == 200
        provider.reset()
        responses = burst(server, browser.cookies)
        assert [r.status_code for r in responses] == [200] * BURST, [r.text[:200] for r in responses]
        bodies = [r.json() for r in responses]
        assert {b["sub"] for b in bodies} == {"user-alice"}
        assert len({b["token"] for b in bodies}) == 1, "the session was refreshed more than once"
        assert len(refreshes(provider)) == 1, round_
        pids |= {b["pid"] for b in bodies}
    assert len(pids) > 1, "the burst did not reach several workers"
    # Every refresh token was presented once: the provider revoked nothing.
    assert browser.get("/token").status_code == 200
    # The master is alive and no worker crashed or was restarted.
    assert server.process.poll() is None
    log = server.log_text()
    assert log.count("Booting worker") == WORKERS, log
    for sign in ("SIGSEGV", "Worker (pid", "exited with code", "Traceback"):
        assert sign not in log, log


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
