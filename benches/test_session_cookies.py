"""A Flask session cookie written and read: Flask's signed cookie vs logto-rs's sealed one.

The session is what ``LogtoFlask`` keeps after a sign-in with one API resource: an ID token, a
refresh token and an access token map (about 1.7 KB of JSON, random as real tokens are, so zlib
shrinks it as it would a real one). Writing is what Flask does when a view changes the session
(``dumps``), reading what it does on every request that has the cookie (``loads``). Each round
makes 1,000 calls; the time per call is the round time / 1,000. The Rust core's ``seal`` and
``open`` of the same bytes are measured alone too. Run with
``bash .ci/bench test_session_cookies.py``.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Callable

import pytest
from flask import Flask

from bench_support import API
from logto_rs.sessions import SessionSealer, generate_key
from logto_rs.sessions.flask import EncryptedSessionInterface

CALLS = 1000


def token(*lengths: int) -> str:
    """A token of base64url parts of these lengths, random as a real one's (zlib cannot shrink it)."""
    return ".".join(secrets.token_urlsafe(length)[:length] for length in lengths)


def logto_session() -> dict[str, Any]:
    return {
        "logto_idToken": token(100, 620, 128),
        "logto_refreshToken": token(43),
        "logto_accessTokenMap": json.dumps(
            {API: {"token": token(100, 360, 128), "scope": "read:products", "expiresAt": 2**31}}
        ),
        "logto_next": "/",
    }


def serializers() -> dict[str, Any]:
    signed = Flask(__name__)
    signed.secret_key = generate_key()
    sealed = Flask(__name__)
    sealed.session_interface = EncryptedSessionInterface([generate_key()])
    return {
        "signed": signed.session_interface.get_signing_serializer(signed),  # type: ignore[attr-defined]
        "sealed": sealed.session_interface.get_signing_serializer(sealed),
    }


SERIALIZERS = serializers()
SESSION = logto_session()


def batch(call: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        for _ in range(CALLS):
            call()

    return run


@pytest.mark.parametrize("kind", ["signed", "sealed"])
@pytest.mark.benchmark(group="Flask session cookie: write (x1000)")
def test_write(benchmark: Any, kind: str) -> None:
    serializer = SERIALIZERS[kind]
    benchmark(batch(lambda: serializer.dumps(SESSION)))


@pytest.mark.parametrize("kind", ["signed", "sealed"])
@pytest.mark.benchmark(group="Flask session cookie: read (x1000)")
def test_read(benchmark: Any, kind: str) -> None:
    serializer = SERIALIZERS[kind]
    cookie = serializer.dumps(SESSION)
    assert serializer.loads(cookie) == SESSION
    benchmark(batch(lambda: serializer.loads(cookie)))


@pytest.mark.benchmark(group="AES-256-GCM alone (x1000)")
def test_seal_alone(benchmark: Any) -> None:
    sealer = SessionSealer(generate_key())
    data = json.dumps(SESSION).encode()
    benchmark(batch(lambda: sealer.seal(data, "session", 3600)))


@pytest.mark.benchmark(group="AES-256-GCM alone (x1000)")
def test_open_alone(benchmark: Any) -> None:
    sealer = SessionSealer(generate_key())
    sealed = sealer.seal(json.dumps(SESSION).encode(), "session", 3600)
    benchmark(batch(lambda: sealer.open(sealed, "session")))


def test_cookie_sizes() -> None:
    """The cookie's value, signed (zlib when shorter) and sealed, printed for BENCHMARKS.md."""
    sizes = {kind: len(serializer.dumps(SESSION)) for kind, serializer in SERIALIZERS.items()}
    print(f"\nsession JSON {len(json.dumps(SESSION))} bytes; cookie value: {sizes}")
    assert sizes["sealed"] < 4000
