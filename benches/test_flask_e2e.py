"""Requests per second of an authenticated Flask view that reads an access token: logto-rs vs
the official logto==0.2.1, each under gunicorn with 4 workers and sessions in Redis, loaded by
wrk in one run (same machine, same provider, same Redis).

Needs wrk (Debian's package) and redis-server. The numbers are printed (pytest -s) and recorded
in BENCHMARKS.md; nothing is asserted about them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from provider_harness import Provider, complete_sign_in, free_port  # noqa: E402

BENCHES = Path(__file__).resolve().parent
API = "https://api.example.com"
DURATION = os.environ.get("BENCH_DURATION", "10s")


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    server = Provider().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()


def serve(app: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    process = subprocess.Popen(
        [gunicorn, "--workers", "4", "--bind", f"127.0.0.1:{port}", f"bench_flask_apps:{app}()"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/guarded", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return process, url


def wrk(url: str, cookie: str) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{DURATION}", "--latency", "-H", f"Cookie: session={cookie}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)  # type: ignore[union-attr]
    return {"rps": rps, "errors": float(non_2xx.group(1)) if non_2xx else 0.0, "p50": p50, "p99": p99}  # type: ignore[dict-item]


def test_authenticated_view_requests_per_second(provider: Provider, redis_url: str) -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed (apt-get install wrk)")
    provider.add_redirect_uris("spa-app", ["http://127.0.0.1/callback"])
    env = {
        **os.environ,
        "LOGTO_ENDPOINT": provider.endpoint,
        "REDIS_URL": redis_url,
        "APP_SECRET_KEY": secrets.token_hex(16),
        "PYTHONPATH": str(BENCHES),
    }
    ours, ours_url = serve("logto_rs_app", env)
    official, official_url = serve("official_app", env)
    try:
        provider.add_redirect_uris("spa-app", [ours_url + "/callback"])
        browser = httpx.Client(base_url=ours_url, follow_redirects=False, timeout=30)
        to_provider = browser.get("/sign-in")
        browser.get(complete_sign_in(to_provider.headers["Location"], ours_url + "/callback"))
        assert browser.get("/guarded").status_code == 200
        ours_cookie = browser.cookies["session"]

        # The official app gets the same user's tokens, in its own storage format.
        import redis

        store = redis.Redis.from_url(redis_url)
        sid = next(k.decode().split(":")[1] for k in store.keys("logto:*:idToken"))
        id_token = store.get(f"logto:{sid}:idToken")
        access_map = json.loads(store.get(f"logto:{sid}:accessTokenMap") or b"{}")
        official_map = {
            "x": {r: {"token": t["token"], "expiresAt": t["expiresAt"]} for r, t in access_map.items()}
        }
        store.set(f"official:{sid}:idToken", id_token or b"")
        store.set(f"official:{sid}:accessTokenMap", json.dumps(official_map))
        official_browser = httpx.Client(base_url=official_url, timeout=30)
        official_browser.get(f"/bench-session/{sid}")
        assert official_browser.get("/guarded").status_code == 200
        official_cookie = official_browser.cookies["session"]

        wrk(official_url + "/guarded", official_cookie)  # warm both, then measure alternately
        wrk(ours_url + "/guarded", ours_cookie)
        results = {"logto==0.2.1": wrk(official_url + "/guarded", official_cookie)}
        results["logto-rs"] = wrk(ours_url + "/guarded", ours_cookie)
        print()
        for name, result in results.items():
            print(f"{name}: {result}")
        ratio = results["logto-rs"]["rps"] / results["logto==0.2.1"]["rps"]
        print(f"requests/s ratio logto-rs / logto==0.2.1: {ratio:.2f}")
        assert results["logto-rs"]["errors"] == 0 and results["logto==0.2.1"]["errors"] == 0
    finally:
        for process in (ours, official):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
