"""A Logto-shaped issuer of access tokens on 127.0.0.1: discovery, JWKS and an ES384 (or RS256)
key that signs whatever claims a test needs, such as the ``roles`` claim a Logto custom JWT
claims script adds. Used by the FastAPI guard tests and the benchmarks."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

import jwt

API = "https://api.example.com"


class LocalTenant:
    """The issuer: ``sign`` makes tokens with the current key; ``rotate`` adds a key and makes it
    current, ``withdraw`` takes a key out of the JWKS, ``cache_control`` sets the JWKS answer's
    ``Cache-Control`` header."""

    def __init__(self, alg: str = "ES384") -> None:
        self.alg = alg
        self.keys: dict[str, tuple[Any, dict[str, Any]]] = {}
        self.published: list[str] = []
        self.cache_control: str | None = None
        self.rotate()
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
                    "/oidc/jwks": {"keys": [tenant.keys[kid][1] for kid in tenant.published]},
                }
                body = json.dumps(documents.get(self.path, {})).encode()
                self.send_response(200 if self.path in documents else 404)
                self.send_header("Content-Type", "application/json")
                if self.path == "/oidc/jwks" and tenant.cache_control:
                    self.send_header("Cache-Control", tenant.cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = self.endpoint + "/oidc"

    def rotate(self) -> str:
        """Add a key, publish it and sign with it from now on; returns its kid."""
        key = (
            ec.generate_private_key(ec.SECP384R1())
            if self.alg == "ES384"
            else rsa.generate_private_key(65537, 2048)
        )
        jwk: dict[str, Any] = {
            **json.loads(jwt.algorithms.get_default_algorithms()[self.alg].to_jwk(key.public_key())),
            "kid": uuid.uuid4().hex[:16],
            "alg": self.alg,
            "use": "sig",
        }
        self.keys[jwk["kid"]] = (key, jwk)
        self.published.append(jwk["kid"])
        self.key, self.jwk = key, jwk
        return str(jwk["kid"])

    def withdraw(self, kid: str) -> None:
        """Take the key ``kid`` out of the JWKS (tokens it signed stop verifying)."""
        self.published = [published for published in self.published if published != kid]

    def sign_with(self, kid: str, **claims: Any) -> str:
        """``sign`` with the key ``kid`` (published or not)."""
        current = self.key, self.jwk
        self.key, self.jwk = self.keys[kid]
        try:
            return self.sign(**claims)
        finally:
            self.key, self.jwk = current

    def sign(self, **claims: Any) -> str:
        """A Logto-shaped access token for ``API`` (claims override the defaults; None removes)."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "jti": uuid.uuid4().hex[:21],
            "sub": "user-alice",
            "iat": now,
            "exp": now + 3600,
            "scope": "read:products write:products",
            "client_id": "m7rvwb4rk0gsm3e1kp9mq",
            "iss": self.issuer,
            "aud": API,
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, self.key, self.alg, headers={"typ": "at+jwt", "kid": self.jwk["kid"]})

    def close(self) -> None:
        self.server.shutdown()
