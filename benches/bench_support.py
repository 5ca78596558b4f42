"""Shared pieces of the Python benchmarks: one storage for every SDK, realistic tokens."""

from __future__ import annotations

import base64
import json
import time
from typing import Optional


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
