"""Serving a test app the way it is deployed: gunicorn with --preload and 4 threaded workers,
and what every deployment test checks afterwards (one refresh per burst, no worker crashed)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from provider_harness import Provider, free_port

WORKERS = 4
BURST = 16
SCRIPTS = Path(__file__).resolve().parent / "scripts"


def app_env(values: Mapping[str, str], *paths: Path) -> dict[str, str]:
    """The environment a served test app starts with: this process's, ``values``, and
    ``tests/scripts`` (then ``paths``) importable."""
    path = [str(SCRIPTS), *map(str, paths), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, **values, "PYTHONPATH": os.pathsep.join(path)}


class Server:
    """A running server: its process, base URL and log file."""

    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def assert_no_worker_crashed(self) -> None:
        """The master is alive, booted each worker once, and no worker died or raised."""
        assert self.process.poll() is None
        log = self.log_text()
        assert log.count("Booting worker") == WORKERS, log
        for sign in ("SIGSEGV", "Worker (pid", "exited with code", "Traceback"):
            assert sign not in log, log


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str], health_path: str, log: Path) -> Iterator[Server]:
    """Serve ``app`` (a WSGI path) with gunicorn --preload, 4 gthread workers of 4 threads each,
    until every worker has answered ``health_path`` with its pid."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                sys.executable,  # this interpreter's gunicorn and packages
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
                app,
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    with running(process, url, log, health_path, pids=WORKERS):
        yield Server(process, url, log)


@contextlib.contextmanager
def running(process: subprocess.Popen[Any], url: str, log: Path, ready: str, pids: int = 1) -> Iterator[None]:
    """A started server, ready once ``pids`` distinct worker pids answered ``ready`` (a JSON
    ``{"pid": …}``) or, for ``pids=1``, once it answers at all; stopped on exit (SIGTERM, then
    kill)."""
    try:
        deadline = time.monotonic() + 60
        seen: set[int] = set()
        while len(seen) < pids:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the server did not start: {log.read_text()}"
            try:
                answer = httpx.get(url + ready, timeout=2)
                seen.add(answer.json()["pid"] if pids > 1 else 0)
            except (httpx.HTTPError, ValueError, KeyError):
                time.sleep(0.1)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def burst(url: str, cookies: httpx.Cookies, path: str) -> list[httpx.Response]:
    """``BURST`` parallel requests of one session, each from a browser tab of its own."""

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, cookies=cookies, timeout=60) as tab:
            return tab.get(path)

    with concurrent.futures.ThreadPoolExecutor(max_workers=BURST) as pool:
        return list(pool.map(one, range(BURST)))


def refreshes(provider: Provider) -> list[dict[str, Any]]:
    return provider.requests(path="/oidc/token", grant_type="refresh_token")


def assert_one_refresh_per_burst(
    provider: Provider, browser: httpx.Client, url: str, expire: str, token: str
) -> set[int]:
    """Twice (the grant must still work at the next expiry): expire the session's access
    tokens, fire a burst: one refresh, every answer 200 with the same token. Returns the pids."""
    pids: set[int] = set()
    for round_ in range(2):
        assert browser.post(expire).status_code == 200
        provider.reset()
        responses = burst(url, browser.cookies, token)
        assert [r.status_code for r in responses] == [200] * BURST, [r.text[:300] for r in responses]
        bodies = [r.json() for r in responses]
        assert {b["sub"] for b in bodies} == {"user-alice"}
        assert len({b["token"] for b in bodies}) == 1, "the session was refreshed more than once"
        assert len(refreshes(provider)) == 1, round_
        pids |= {b["pid"] for b in bodies}
    assert len(pids) > 1, "the burst did not reach several workers"
    return pids
