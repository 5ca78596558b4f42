"""A guarded Flask view under load: logto-rs's ``require_access_token`` vs a PyJWT decorator
making the same checks, served by gunicorn with 4 sync workers, ES384 tokens (Logto's default)
with the scope check.

``wrk`` (one thread, 32 connections) against each view in turn, the order alternating, with the
same token on every request and with a fresh token on every request; the medians of requests/s
are compared, ``/open`` (no guard) being the floor of the server and the framework. Run with
``bash .ci/bench test_flask_load.py``; results go to stdout and ``flask_load.json``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from load_support import HERE, LocalTenant, compare, free_port, serve

WORKERS = 4


@pytest.fixture(scope="module")
def tenant() -> Iterator[LocalTenant]:
    served = LocalTenant("ES384")
    yield served
    served.close()


@pytest.fixture(scope="module")
def server(tenant: LocalTenant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "flask_bench_app:app()", "--bind", f"127.0.0.1:{port}",
        "--workers", str(WORKERS), "--log-level", "warning",
    ]  # fmt: skip
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with serve(command, tenant, port, WORKERS, log) as url:
        yield url


@pytest.mark.timeout(1800)
def test_guarded_view_throughput(
    tenant: LocalTenant, server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "server": f"gunicorn, {WORKERS} sync workers",
    }
    result.update(compare(server, tenant, tmp_path_factory.mktemp("tokens"), fresh_per_run=30_000))
    (HERE / "flask_load.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
