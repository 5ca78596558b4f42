"""A guarded FastAPI endpoint under load: logto-rs's guard vs a PyJWT dependency making the same
checks, served by uvicorn with 4 workers, ES384 tokens (Logto's default) with the scope check.

1. Throughput: ``wrk`` (one thread, 32 connections) against each endpoint in turn, the order
   alternating, ``REPEATS`` times; the medians of requests/s are compared. ``/open`` (no guard)
   is the floor of the server and the framework. Two scenarios: the same token on every request
   (an API's usual load: logto-rs answers it from its verified-token cache) and a fresh token on
   every request (every one needs a signature check).
2. Latency at a fixed rate: an open-loop Python generator sends ``RATE`` requests/s to each
   endpoint for ``SECONDS``, twice in reversed orders; each latency counts from the request's
   scheduled start (no coordinated omission). Percentiles per endpoint over both runs.

The server, wrk and the generator share the machine's cores. Run with
``bash .ci/bench test_fastapi_load.py -s``; results go to stdout and ``fastapi_load.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from load_support import ENDPOINTS, HERE, LocalTenant, compare, free_port, serve

WORKERS = 4
RATE = int(os.environ.get("BENCH_RATE", "300"))
SECONDS = 10


@pytest.fixture(scope="module")
def tenant() -> Iterator[LocalTenant]:
    served = LocalTenant("ES384")
    yield served
    served.close()


@pytest.fixture(scope="module")
def server(tenant: LocalTenant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "fastapi_bench_app:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(WORKERS), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    log = tmp_path_factory.mktemp("uvicorn") / "uvicorn.log"
    with serve(command, tenant, port, WORKERS, log) as url:
        yield url


async def fixed_rate(url: str, token: str, rate: int, seconds: int) -> list[float]:
    """Latencies (ms) of ``rate * seconds`` requests scheduled every ``1 / rate`` s."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.2
        latencies: list[float] = []

        async def one(at: float) -> None:
            await asyncio.sleep(max(0.0, at - loop.time()))
            answer = await http.get(url, headers=headers)
            assert answer.status_code == 200, answer.text
            latencies.append((loop.time() - at) * 1000)

        await asyncio.gather(*(one(start + i / rate) for i in range(rate * seconds)))
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@pytest.mark.timeout(1800)
def test_guarded_endpoint_throughput_and_latency(
    tenant: LocalTenant, server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "server": f"uvicorn, {WORKERS} workers"}
    result.update(compare(server, tenant, tmp_path_factory.mktemp("tokens"), fresh_per_run=80_000))
    token = tenant.sign()
    latency: dict[str, dict[str, float]] = {}
    samples: dict[str, list[float]] = {path: [] for path in ENDPOINTS}
    for repeat in range(2):  # twice, the order reversed: neither goes first only
        for path in ENDPOINTS if repeat == 0 else ENDPOINTS[::-1]:
            samples[path] += asyncio.run(fixed_rate(server + path, token, RATE, SECONDS))
    for path, values in samples.items():
        latency[path] = {f"p{p}": round(percentile(values, p), 2) for p in (50, 90, 99, 99.9)}
        latency[path]["max"] = round(max(values), 2)
    result["fixed_rate_same_token"] = {"rate": RATE, "seconds": 2 * SECONDS, "latency_ms": latency}
    (HERE / "fastapi_load.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def test_in_process_cost_of_one_guarded_check(tenant: LocalTenant) -> None:
    """The guards' own cost, without server or framework: each dependency awaited 2,000 times."""
    import fastapi_bench_app
    from starlette.requests import Request

    from logto_rs import AccessTokenVerifier
    from logto_rs.fastapi import require_access_token

    token = tenant.sign()
    os.environ.update(BENCH_TENANT=tenant.endpoint, BENCH_JWK=json.dumps(tenant.jwk))
    verifier = AccessTokenVerifier(tenant.endpoint, fastapi_bench_app.API)
    guards = {
        "logto_rs guard": require_access_token(verifier, [fastapi_bench_app.SCOPE]),
        "pyjwt dependency": fastapi_bench_app.pyjwt_dependency(),
    }
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
    }

    async def per_call(guard: Any) -> float:
        request = Request(scope)
        await guard(request)
        began = time.perf_counter()
        for _ in range(2000):
            await guard(request)
        return (time.perf_counter() - began) / 2000 * 1e6

    costs = {name: round(asyncio.run(per_call(guard)), 1) for name, guard in guards.items()}
    print(json.dumps({"microseconds_per_check": costs}), flush=True)
