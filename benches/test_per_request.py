"""The per-request path of a web app: ``isAuthenticated`` and ``getIdTokenClaims``, and the
package's import time; logto-rs vs the official logto==0.2.1, same storage, one run.

``@authenticated`` calls both on every request. Each round makes 1,000 calls; the time per call
is the round time / 1,000 for both SDKs alike. Run with ``bash .ci/bench``.
"""

from __future__ import annotations

import base64
import json
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import logto
import pytest

import logto_rs
from bench_support import DictStorage

CALLS = 1000


def id_token() -> str:
    """An ID token of realistic size (decoded, never verified, on this path)."""

    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    header = {"alg": "ES384", "typ": "JWT", "kid": "k" * 43}
    claims = {
        "iss": "https://t.logto.app/oidc",
        "sub": "u" * 12,
        "aud": "app",
        "exp": 2**31,
        "iat": 1_700_000_000,
        "at_hash": "h" * 22,
        "name": "Alice Liddell",
        "username": "alice",
        "email": "alice@example.com",
        "email_verified": True,
        "organizations": ["org-acme", "org-globex"],
        "organization_roles": ["org-acme:member"],
    }
    return f"{part(header)}.{part(claims)}.{'s' * 128}"


def client(sdk: Any) -> Any:
    storage = DictStorage()
    storage.set("idToken", id_token())
    config = sdk.LogtoConfig(endpoint="https://t.logto.app", appId="app", appSecret="secret")
    return sdk.LogtoClient(config, storage=storage)


def batch(call: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        for _ in range(CALLS):
            assert call()

    return run


@pytest.mark.benchmark(group="isAuthenticated (x1000)")
def test_is_authenticated_official_logto_0_2_1(benchmark: Any) -> None:
    benchmark(batch(client(logto).isAuthenticated))


@pytest.mark.benchmark(group="isAuthenticated (x1000)")
def test_is_authenticated_logto_rs(benchmark: Any) -> None:
    benchmark(batch(client(logto_rs).isAuthenticated))


@pytest.mark.benchmark(group="getIdTokenClaims (x1000)")
def test_id_token_claims_official_logto_0_2_1(benchmark: Any) -> None:
    benchmark(batch(client(logto).getIdTokenClaims))


@pytest.mark.benchmark(group="getIdTokenClaims (x1000)")
def test_id_token_claims_logto_rs(benchmark: Any) -> None:
    benchmark(batch(client(logto_rs).getIdTokenClaims))


def import_seconds(module: str, runs: int = 21) -> float:
    """Median wall time of ``import module`` in a fresh interpreter, less an empty one's."""

    def median(code: str) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return median(f"import {module}") - median("pass")


def test_import_time() -> None:
    """Printed side by side (pytest -s), not asserted: a measurement, not a test."""
    official, ours = import_seconds("logto"), import_seconds("logto_rs")
    print(
        f"\nimport logto: {official * 1000:.1f} ms; import logto_rs: {ours * 1000:.1f} ms; "
        f"ratio {ours / official:.2f}"
    )
