"""The FastAPI app deployed as ASGI apps are: uvicorn with 4 worker processes, sessions in a real
redis-server, the public ``spa-app`` whose refresh token rotates at every refresh, a browser firing
parallel requests of one session after its access token expired.

The provider sees exactly one refresh per expiry, every response is 200, every worker that
answered shares the new token, and the grant still works at the next expiry (no refresh token was
presented twice, or Logto would have revoked the grant)."""

from __future__ import annotations

import concurrent.futures
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi_server import Process, sign_in, uvicorn_process

from provider_harness import Provider

WORKERS = 4
BURST = 16


@pytest.fixture
def server(provider: Provider, redis_url: str, tmp_path: Path) -> Iterator[Process]:
    env = {
        "LOGTO_ENDPOINT": provider.endpoint,
        "REDIS_URL": redis_url,
        "APP_SECRET_KEY": secrets.token_hex(16),
    }
    with uvicorn_process(
        "fastapi_deploy_app:app",
        env,
        tmp_path / "uvicorn.log",
        workers=WORKERS,
        ready="/health",
        pids=WORKERS,
    ) as process:
        yield process


def burst(server: Process, cookies: httpx.Cookies) -> list[httpx.Response]:
    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as tab:
            return tab.get("/token")

    with concurrent.futures.ThreadPoolExecutor(max_workers=BURST) as pool:
        return list(pool.map(one, range(BURST)))


def test_parallel_requests_of_one_session_across_workers_refresh_once(
    provider: Provider, server: Process
) -> None:
    provider.add_redirect_uris("spa-app", [server.url + "/callback"], [server.url + "/"])
    browser = sign_in(server.url)
    pids: set[int] = set()
    for round_ in range(2):  # the second round: the grant still works at the next expiry
        assert browser.post("/expire").status_code == 200
        provider.reset()
        responses = burst(server, browser.cookies)
        assert [r.status_code for r in responses] == [200] * BURST, [r.text[:200] for r in responses]
        bodies = [r.json() for r in responses]
        assert {b["sub"] for b in bodies} == {"user-alice"}
        assert len({b["token"] for b in bodies}) == 1, "the session was refreshed more than once"
        assert len(provider.requests(path="/oidc/token", grant_type="refresh_token")) == 1, round_
        pids |= {b["pid"] for b in bodies}
    assert len(pids) > 1, "the burst did not reach several workers"
    assert browser.get("/token").status_code == 200
    assert server.process.poll() is None
    log = server.log_text()
    for sign in ("Traceback", "Child process", "died"):
        assert sign not in log, log
