"""Shared pieces of the Python benchmarks: one storage for every SDK, realistic tokens."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union


class DictStorage:
    """The same plain dict storage for every SDK measured (no logging, no I/O)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> Optional[str]:
        return self.values.get(key)

    def set(self, key: str, value: Optional[str]) -> None:
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def fake_jwt(aud: str) -> str:
    """A JWT-shaped access token of realistic size (never verified by the cache-hit path)."""

    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    header = {"alg": "ES384", "typ": "at+jwt", "kid": "k" * 43}
    claims = {
        "iss": "https://t.logto.app/oidc",
        "aud": aud,
        "sub": "u" * 12,
        "scope": "read write",
        "exp": 2**31,
    }
    return f"{part(header)}.{part(claims)}.{'s' * 128}"


RESOURCES = ["", "https://api.example.com", "https://other.example.com"]
API = RESOURCES[1]
EXPIRES_AT = int(time.time()) + 3600
SCOPE = "read:products"


@dataclass
class Rejection:
    """An RFC 6750 answer: status, JSON body, ``WWW-Authenticate``."""

    status: int
    body: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


def pyjwt_checker() -> Callable[[Optional[str]], Union[dict[str, Any], Rejection]]:
    """PyJWT making the checks logto-rs makes, for the tenant in ``BENCH_TENANT`` / ``BENCH_JWK``:
    the one algorithm, the signature, ``typ: at+jwt``, ``iss``, ``aud``, ``sub``,
    ``exp``/``iat``/``nbf`` with 60 s leeway, the ``read:products`` scope. Its key is parsed once
    per process (PyJWT's fastest configuration; ``PyJWKClient`` would add a lookup per request)."""
    import jwt

    issuer = os.environ["BENCH_TENANT"] + "/oidc"
    jwk = json.loads(os.environ["BENCH_JWK"])
    alg = jwk["alg"]
    key = jwt.PyJWK(jwk).key

    def reject(status: int, error: str, description: str) -> Rejection:
        challenge = f'Bearer error="{error}", error_description="{description}"'
        body = {"error": error, "error_description": description}
        return Rejection(status, body, {"WWW-Authenticate": challenge})

    def check(token: Optional[str]) -> Union[dict[str, Any], Rejection]:
        if token is None:
            return Rejection(401, {"error": "invalid_token"}, {"WWW-Authenticate": "Bearer"})
        try:
            decoded = jwt.decode_complete(
                token,
                key,
                algorithms=[alg],
                audience=API,
                issuer=issuer,
                leeway=60,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError:
            return reject(401, "invalid_token", "the token is invalid")
        if decoded["header"].get("typ") != "at+jwt":
            return reject(401, "invalid_token", "the token is not an access token")
        claims: dict[str, Any] = decoded["payload"]
        if SCOPE not in str(claims.get("scope", "")).split():
            return reject(403, "insufficient_scope", f"the token lacks the required scope(s): {SCOPE}")
        return claims

    return check
