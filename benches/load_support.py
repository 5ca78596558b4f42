"""The load benchmarks' harness: a server with several worker processes, ``wrk`` against each
endpoint in turn (alternating order, medians), with one token repeated or a fresh token on every
request (``fresh_tokens.lua`` walks a file of tokens signed beforehand)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "scripts"))
from local_tenant import LocalTenant  # noqa: E402

ENDPOINTS = ["/logto", "/pyjwt", "/noop", "/open"]
DURATION = "6s"
REPEATS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(command: list[str], tenant: LocalTenant, port: int, workers: int, log: Path) -> Iterator[str]:
    """Run ``command`` (a server on ``port``) until every worker answered ``/pid``."""
    env = {
        **os.environ,
        "BENCH_TENANT": tenant.endpoint,
        "BENCH_JWK": json.dumps(tenant.jwk),
        "PYTHONPATH": str(HERE),
    }
    with log.open("w") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=HERE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        pids: set[int] = set()
        while len(pids) < workers:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                pids.add(httpx.get(url + "/pid", timeout=2).json()["pid"])
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def wrk(
    url: str, token: Optional[str] = None, tokens_file: Optional[Path] = None, first: int = 0, limit: int = 0
) -> float:
    """Requests/s of one ``wrk`` run (one thread, 32 connections); every answer must be 200.
    With ``tokens_file``, request ``i`` carries the token on line ``first + i``, and the run must
    not need more than ``limit`` tokens (each sent once; 0: no limit, the tokens may repeat)."""
    command = ["wrk", "-t1", "-c32", f"-d{DURATION}", "--latency"]
    if token is not None:
        command += ["-H", f"Authorization: Bearer {token}"]
    if tokens_file is not None:
        command += ["-s", str(HERE / "fresh_tokens.lua"), url, "--", str(tokens_file), str(first)]
    else:
        command.append(url)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "Non-2xx" not in out, out
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    assert match and total, out
    if tokens_file is not None and limit:
        assert int(total.group(1)) + 64 <= limit, "the run needed more tokens than it was given"
    return float(match.group(1))


def write_tokens(tenant: LocalTenant, path: Path, count: int) -> Path:
    """``count`` distinct tokens, one per line."""
    path.write_text("\n".join(tenant.sign() for _ in range(count)) + "\n")
    return path


def compare(url: str, tenant: LocalTenant, scratch: Path, fresh_per_run: int) -> dict[str, Any]:
    """Both scenarios against every endpoint: medians of requests/s and the ratios. With fresh
    tokens, each run of ``/logto`` gets its own ``fresh_per_run`` tokens (none cached before);
    the others, which cache nothing, share the first ones."""
    token = tenant.sign()
    for path in ENDPOINTS:  # warm every worker: keys fetched, code paths hot
        for _ in range(200):
            assert httpx.get(url + path, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    result: dict[str, Any] = {"wrk": f"-t1 -c32 -d{DURATION}, {REPEATS} runs per endpoint, alternating order"}
    tokens = write_tokens(tenant, scratch / "tokens.txt", fresh_per_run * REPEATS)
    for scenario in ("same_token", "fresh_tokens"):
        runs: dict[str, list[float]] = {path: [] for path in ENDPOINTS}
        for repeat in range(REPEATS):
            for path in ENDPOINTS if repeat % 2 == 0 else ENDPOINTS[::-1]:
                if scenario == "same_token":
                    runs[path].append(wrk(url + path, token=token))
                else:
                    # Only /logto caches: its runs must each see tokens it never saw.
                    first, limit = (repeat * fresh_per_run, fresh_per_run) if path == "/logto" else (0, 0)
                    runs[path].append(wrk(url + path, tokens_file=tokens, first=first, limit=limit))
                print(f"{scenario} {path}: {runs[path][-1]:.0f} requests/s", flush=True)
        medians = {path: statistics.median(values) for path, values in runs.items()}
        result[scenario] = {
            "requests_per_second": runs,
            "median_requests_per_second": medians,
            "logto_vs_pyjwt": round(medians["/logto"] / medians["/pyjwt"], 2),
            "logto_vs_open": round(medians["/logto"] / medians["/open"], 2),
            "logto_vs_noop_guard": round(medians["/logto"] / medians["/noop"], 2),
        }
    return result
