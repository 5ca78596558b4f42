"""The verified-token cache in process: one token verified again and again, with and without the
cache, next to PyJWT, and the Python-side cost of the claims model on a hit (building it from the
JSON text, or copying a kept one). Each figure is the median of 15 rounds of 2,000 calls.

Run with ``bash .ci/bench test_verify_cache.py``; results go to stdout.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from load_support import LocalTenant

from bench_support import API, pyjwt_checker
from logto_rs import AccessTokenClaims, BlockingAccessTokenVerifier

CALLS = 2000
ROUNDS = 15


@pytest.fixture(scope="module")
def tenant() -> Iterator[LocalTenant]:
    served = LocalTenant("ES384")
    yield served
    served.close()


def per_call(call: Callable[[], Any]) -> float:
    """Median µs per call over ``ROUNDS`` rounds of ``CALLS`` calls."""
    call()
    rounds = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        for _ in range(CALLS):
            call()
        rounds.append((time.perf_counter() - began) / CALLS * 1e6)
    return round(statistics.median(rounds), 2)


def test_a_repeated_token(tenant: LocalTenant) -> None:
    token = tenant.sign()
    os.environ.update(BENCH_TENANT=tenant.endpoint, BENCH_JWK=json.dumps(tenant.jwk))
    cached = BlockingAccessTokenVerifier(tenant.endpoint, API)
    uncached = BlockingAccessTokenVerifier(tenant.endpoint, API, cacheSize=0)
    pyjwt = pyjwt_checker()
    payload = uncached.verify(token).model_dump_json(exclude_unset=True)
    kept = AccessTokenClaims.model_validate_json(payload)
    costs = {
        "logto-rs verify, cached (a hit)": per_call(lambda: cached.verify(token, scopes=["read:products"])),
        "logto-rs verify, cacheSize=0": per_call(lambda: uncached.verify(token, scopes=["read:products"])),
        "PyJWT (bench_support.pyjwt_checker)": per_call(lambda: pyjwt(token)),
        "AccessTokenClaims.model_validate_json": per_call(
            lambda: AccessTokenClaims.model_validate_json(payload)
        ),
        "a kept AccessTokenClaims' model_copy()": per_call(kept.model_copy),
    }
    print(json.dumps({"microseconds_per_call": costs}, indent=2), flush=True)
