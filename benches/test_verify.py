"""Access-token verification: logto-rs vs PyJWT, joserfc and authlib, and the bare Rust check.

Every contender verifies the same Logto-shaped access token (header ``alg``/``typ: at+jwt``/
``kid``; claims ``jti sub iat exp scope client_id iss aud``) with its key already parsed and
cached, and makes the same checks: the algorithm allow-list (the one algorithm), the signature,
``typ``, ``iss``, ``aud``, ``sub``, ``exp``/``iat``/``nbf`` with 60 s leeway, and the
``read:products`` scope. The floor is the bare aws-lc-rs signature check of the same signing
input with a pre-parsed key, called from Python (``_core._BenchBareVerifier``).

One round verifies ``TOKENS`` tokens, so the time per token is the round time / ``TOKENS``
(``BATCH`` in the batch groups).
logto-rs serves its keys from a local discovery/JWKS server, fetched before timing starts. Its
verified-token cache is off here (``cacheSize=0``): the same token is verified again and again,
and a cache hit would skip the signature check these groups compare
(``test_verify_cache.py`` measures the hit).
Run with ``bash .ci/bench``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest
from authlib.jose import JsonWebKey, JsonWebToken
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, RSAKey

import jwt as pyjwt
import logto_rs
from logto_rs._core import _BenchBareVerifier

TOKENS = 50
ROUNDS = 40
API = "https://api.example.com"
SCOPE = "read:products"


class Tenant:
    """A signing key, its JWKS, a Logto-shaped token, and a local discovery/JWKS server."""

    def __init__(self, alg: str) -> None:
        self.alg = alg
        key = (
            ec.generate_private_key(ec.SECP384R1())
            if alg == "ES384"
            else rsa.generate_private_key(65537, 2048)
        )
        self.jwk: dict[str, Any] = {
            **json.loads(pyjwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key())),
            "kid": uuid.uuid4().hex[:16],
            "alg": alg,
            "use": "sig",
        }
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = self.endpoint + "/oidc"
        now = int(time.time())
        claims = {
            "jti": uuid.uuid4().hex[:21],
            "sub": "user-alice",
            "iat": now,
            "exp": now + 3600,
            "scope": "read:products write:products",
            "client_id": "m7rvwb4rk0gsm3e1kp9mq",
            "iss": self.issuer,
            "aud": API,
        }
        self.token = pyjwt.encode(claims, key, alg, headers={"typ": "at+jwt", "kid": self.jwk["kid"]})
        signing_input, _, signature = self.token.rpartition(".")
        self.signing_input = signing_input.encode()
        self.signature = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tenant = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                documents = {
                    "/oidc/.well-known/openid-configuration": {
                        "issuer": tenant.issuer,
                        "authorization_endpoint": tenant.issuer + "/auth",
                        "token_endpoint": tenant.issuer + "/token",
                        "jwks_uri": tenant.issuer + "/jwks",
                    },
                    "/oidc/jwks": {"keys": [tenant.jwk]},
                }
                body = json.dumps(documents.get(self.path, {})).encode()
                self.send_response(200 if self.path in documents else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(scope="module", params=["ES384", "RS256"])
def tenant(request: pytest.FixtureRequest) -> Iterator[Tenant]:
    served = Tenant(request.param)
    # Settle: two seconds of the same work before the first timed round (right after a build,
    # the first test measured would otherwise pay for the machine catching up).
    settle = _BenchBareVerifier(json.dumps(served.jwk))
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        settle.verify(served.signing_input, served.signature)
    yield served
    served.server.shutdown()


def contenders(t: Tenant) -> dict[str, Callable[[str], Any]]:
    """One verification function per library, each with its key parsed once."""
    verifier = logto_rs.AccessTokenVerifier(t.endpoint, API, scopes=[SCOPE], cacheSize=0).blocking

    pyjwt_key = pyjwt.PyJWK(t.jwk).key

    def with_pyjwt(token: str) -> Any:
        decoded = pyjwt.decode_complete(
            token,
            pyjwt_key,
            algorithms=[t.alg],
            audience=API,
            issuer=t.issuer,
            leeway=60,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
        claims = decoded["payload"]
        if decoded["header"].get("typ") != "at+jwt" or SCOPE not in claims.get("scope", "").split():
            raise ValueError("rejected")
        return claims

    jose_key = (ECKey if t.alg == "ES384" else RSAKey).import_key(t.jwk)
    registry = jose_jwt.JWTClaimsRegistry(
        leeway=60,
        iss={"essential": True, "value": t.issuer},
        aud={"essential": True, "value": API},
        sub={"essential": True},
        exp={"essential": True},
    )

    def with_joserfc(token: str) -> Any:
        decoded = jose_jwt.decode(token, jose_key, algorithms=[t.alg])
        registry.validate(decoded.claims)
        if decoded.header.get("typ") != "at+jwt" or SCOPE not in decoded.claims.get("scope", "").split():
            raise ValueError("rejected")
        return decoded.claims

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # authlib.jose is deprecated in favour of joserfc
        authlib_jwt = JsonWebToken([t.alg])
        authlib_key = JsonWebKey.import_key(t.jwk)
    options = {
        "iss": {"essential": True, "value": t.issuer},
        "aud": {"essential": True, "value": API},
        "sub": {"essential": True},
        "exp": {"essential": True},
    }

    def with_authlib(token: str) -> Any:
        claims = authlib_jwt.decode(token, authlib_key, claims_options=options)
        claims.validate(leeway=60)
        if claims.header.get("typ") != "at+jwt" or SCOPE not in claims.get("scope", "").split():
            raise ValueError("rejected")
        return claims

    bare = _BenchBareVerifier(json.dumps(t.jwk))
    message, signature = t.signing_input, t.signature

    def bare_signature(token: str) -> Any:
        assert bare.verify(message, signature)

    return {
        "logto_rs": verifier.verify,
        "pyjwt": with_pyjwt,
        "joserfc": with_joserfc,
        "authlib": with_authlib,
        "bare_aws_lc_rs_floor": bare_signature,
    }


CONTENDERS = ["logto_rs", "pyjwt", "joserfc", "authlib", "bare_aws_lc_rs_floor"]


@pytest.mark.parametrize("name", CONTENDERS)
def test_verify_one_token(benchmark: Any, tenant: Tenant, name: str) -> None:
    verify = contenders(tenant)[name]
    verify(tenant.token)  # keys fetched and parsed before timing
    token = tenant.token
    benchmark.group = f"{tenant.alg}: verify one token (x{TOKENS} per round)"

    def round_() -> None:
        for _ in range(TOKENS):
            verify(token)

    benchmark.pedantic(round_, rounds=ROUNDS, warmup_rounds=2)


def test_verify_awaited(benchmark: Any, tenant: Tenant) -> None:
    verifier = logto_rs.AccessTokenVerifier(tenant.endpoint, API, scopes=[SCOPE], cacheSize=0)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(verifier.verify(tenant.token))
    token = tenant.token
    benchmark.group = f"{tenant.alg}: verify one token (x{TOKENS} per round)"

    async def round_() -> None:
        for _ in range(TOKENS):
            await verifier.verify(token)

    benchmark.pedantic(lambda: loop.run_until_complete(round_()), rounds=ROUNDS, warmup_rounds=2)
    loop.close()


def test_verify_from_two_threads(benchmark: Any, tenant: Tenant) -> None:
    """Two Python threads share one verifier: the signature checks run without the GIL."""
    verifier = logto_rs.AccessTokenVerifier(tenant.endpoint, API, scopes=[SCOPE], cacheSize=0).blocking
    verifier.verify(tenant.token)
    token = tenant.token
    benchmark.group = f"{tenant.alg}: verify one token (x{TOKENS} per round)"

    def half() -> None:
        for _ in range(TOKENS // 2):
            verifier.verify(token)

    def round_() -> None:
        threads = [threading.Thread(target=half) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    benchmark.pedantic(round_, rounds=ROUNDS, warmup_rounds=2)


BATCH = 400


@pytest.mark.parametrize("how", ["loop_of_verify", "verifyMany"])
def test_batch(benchmark: Any, tenant: Tenant, how: str) -> None:
    """A batch (a gateway's or a log processor's) on one thread, or spread over the cores."""
    verifier = logto_rs.AccessTokenVerifier(tenant.endpoint, API, scopes=[SCOPE], cacheSize=0).blocking
    tokens = [tenant.token] * BATCH
    assert all(isinstance(r, logto_rs.AccessTokenClaims) for r in verifier.verifyMany(tokens))
    benchmark.group = f"{tenant.alg}: a batch of {BATCH} tokens"
    if how == "verifyMany":
        benchmark.pedantic(lambda: verifier.verifyMany(tokens), rounds=ROUNDS // 2, warmup_rounds=1)
    else:
        benchmark.pedantic(lambda: [verifier.verify(t) for t in tokens], rounds=ROUNDS // 2, warmup_rounds=1)


@pytest.mark.parametrize("alg", ["ES384", "RS256"])
def test_interleaved_summary(alg: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The single-token contenders measured round-robin, so that a slow patch of the shared
    machine hits all of them alike; prints the per-token medians and ratios (BENCHMARKS.md)."""
    tenant = Tenant(alg)
    try:
        functions = contenders(tenant)
        for verify in functions.values():
            verify(tenant.token)
        times: dict[str, list[float]] = {name: [] for name in functions}
        names = list(functions)
        for round_number in range(ROUNDS):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                verify, token = functions[name], tenant.token
                start = time.perf_counter()
                for _ in range(TOKENS):
                    verify(token)
                times[name].append((time.perf_counter() - start) / TOKENS * 1e6)
    finally:
        tenant.server.shutdown()
    medians = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
    ours, floor = medians["logto_rs"], medians["bare_aws_lc_rs_floor"]
    lines = [
        f"\n{alg}, {ROUNDS} interleaved rounds of {TOKENS} tokens (µs per token)",
        "| contender | min | median | logto-rs speed-up (medians) | vs the floor (medians) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in names:
        lines.append(
            f"| {name} | {min(times[name]):.1f} | {medians[name]:.1f} | "
            f"{medians[name] / ours:.2f}× | {medians[name] / floor:.2f}× |"
        )
    with capsys.disabled():
        print("\n".join(lines))
