"""The back-channel logout endpoint reads at most 64 KiB: a larger body is answered 413, whether
its Content-Length says so or it streams without one, and the worker's memory does not grow with
it (the route is on by default, so anyone can post to it)."""

from __future__ import annotations

import io
import secrets
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import pytest
from fastapi_server import uvicorn_process
from werkzeug.test import EnvironBuilder, run_wsgi_app

from logto_rs.backchannel import MAX_BODY
from provider_harness import Provider
from serving import app_env, gunicorn

HUGE = 300 * 1024 * 1024
MIB = 1024 * 1024


class CountingStream(io.RawIOBase):
    """A request body of ``size`` bytes that counts how much of it the app read."""

    def __init__(self, size: int) -> None:
        self.size, self.read_bytes = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = b"a" * n
        self.read_bytes += n
        return n


def flask_app(provider: Provider) -> Any:
    from test_flask import make_app

    from logto_rs.flask import FlaskSessionStorage

    return make_app(provider, FlaskSessionStorage())


def django_app(provider: Provider) -> Any:
    import django_site

    django_site.setup()
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()


@pytest.mark.parametrize("framework", [flask_app, django_app], ids=["flask", "django"])
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_a_wsgi_endpoint_reads_no_more_than_the_limit(
    provider: Provider, framework: Callable[[Provider], Any], declared: bool
) -> None:
    app = framework(provider)
    path = "/backchannel-logout" if framework is flask_app else "/auth/backchannel-logout/"
    stream = CountingStream(HUGE)
    builder = EnvironBuilder(
        path=path,
        method="POST",
        base_url="http://127.0.0.1",
        content_type="application/x-www-form-urlencoded",
    )
    environ = builder.get_environ()
    environ["wsgi.input"] = stream
    if declared:
        environ["CONTENT_LENGTH"] = str(HUGE)
    else:
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input_terminated"] = True  # a server that decoded a chunked body (gunicorn)
    _, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert stream.read_bytes <= (0 if declared else MAX_BODY + 1)
    # Django reads no body that has no Content-Length: nothing to refuse, the token is missing.
    expected = "400" if framework is django_app and not declared else "413"
    assert status.startswith(expected), status


def post_huge(url: str, path: str, *, chunked: bool) -> int:
    """POST a 300 MB body over a raw socket, stopping once the server answered; its status."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE}"
        head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{framing}\r\nConnection: close\r\n"
        sock.sendall(f"{head}Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode())
        chunk = b"a" * MIB
        piece = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk
        sent = 0
        while sent < HUGE:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the body ended
            try:
                sock.sendall(piece)
            except OSError:
                break
            sent += len(chunk)
        answer = b""
        try:
            while b"\r\n" not in answer:
                data = sock.recv(4096)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    status_line = answer.split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) > 1 else 0


def peak_rss(pids: list[int]) -> int:
    """The largest peak resident set (VmHWM, bytes) of ``pids`` and their children."""
    peaks = []
    for pid in pids + [c for p in pids for c in children(p)]:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) * 1024)
    return max(peaks)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


@pytest.fixture
def fastapi_server(provider: Provider, tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    env = {"LOGTO_ENDPOINT": provider.endpoint, "REDIS_URL": "redis://127.0.0.1:9/0", "APP_SECRET_KEY": "x"}
    with uvicorn_process("fastapi_deploy_app:app", env, tmp_path / "uvicorn.log", ready="/health") as server:
        yield server.url, [server.process.pid]


@pytest.fixture
def flask_server(provider: Provider, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    env = app_env(
        {"LOGTO_ENDPOINT": provider.endpoint, "REDIS_URL": redis_url, "SECRET_KEY": secrets.token_hex(8)}
    )
    with gunicorn("backchannel_app:app", env, "/health", tmp_path / "gunicorn.log") as server:
        yield server.url, [server.process.pid]


@pytest.mark.parametrize("served", ["fastapi_server", "flask_server"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_served_endpoint_stays_small_under_a_300_mb_post(
    request: pytest.FixtureRequest, served: str, chunked: bool
) -> None:
    url, pids = request.getfixturevalue(served)
    before = peak_rss(pids)
    assert post_huge(url, "/backchannel-logout", chunked=chunked) == 413
    assert peak_rss(pids) - before < 32 * MIB
