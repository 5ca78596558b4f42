"""Serving ASGI apps for the FastAPI tests: uvicorn in a thread of the test process, or uvicorn
processes with several workers, both on 127.0.0.1 and a free port."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import httpx
import uvicorn

from provider_harness import complete_sign_in, free_port
from serving import app_env, running

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@contextmanager
def serve(app: Any, **options: Any) -> Iterator[str]:
    """``app`` served by uvicorn in a background thread (its own event loop); yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


class Process:
    """A uvicorn command line running in a child process, its URL and its log."""

    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def uvicorn_process(
    target: str,
    env: dict[str, str],
    log: Path,
    *,
    workers: int = 1,
    ready: str = "/openapi.json",
    pids: int = 1,
    extra: Optional[list[str]] = None,
) -> Iterator[Process]:
    """``uvicorn --factory <target>`` with ``workers`` worker processes; ready once ``pids``
    distinct worker pids answered ``ready`` (a JSON ``{"pid": …}``) or, for ``pids=1``, once it
    answers at all."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--app-dir",
        str(EXAMPLES),
        *(extra or []),
    ]
    full_env = app_env(env, EXAMPLES)
    with log.open("w") as sink:
        process = subprocess.Popen(command, env=full_env, stdout=sink, stderr=subprocess.STDOUT, text=True)
    with running(process, url, log, ready, pids=pids):
        yield Process(process, url, log)


def sign_in(base: str, *, next_path: Optional[str] = None, username: str = "alice") -> httpx.Client:
    """A browser (httpx, cookies kept) signed in at ``base``; the callback's answer is checked."""
    browser = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    to_provider = browser.get("/sign-in", params={"next": next_path} if next_path else None)
    assert to_provider.status_code == 302, to_provider.text
    callback = complete_sign_in(to_provider.headers["Location"], base + "/callback", username=username)
    back = browser.get(callback)
    assert back.status_code == 302, back.text
    return browser
