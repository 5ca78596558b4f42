"""Starlette's (and FastAPI's) cookie session, encrypted: ``EncryptedSessionMiddleware``.

It replaces ``SessionMiddleware`` with the same options, ``keys`` in place of ``secret_key``::

    app.add_middleware(EncryptedSessionMiddleware, keys=[os.environ["SESSION_KEY"]], https_only=True)

It is Starlette's own middleware with the signer replaced by a sealing one, so ``request.session``
and the cookie's attributes (``session_cookie``, ``max_age``, ``path``, ``same_site``,
``https_only``, ``domain``, and ``partitioned`` where the installed Starlette has it) behave as
Starlette's do. A cookie older than ``max_age``, altered, sealed for another cookie name or with a
key no longer listed opens as an empty session, with a line on the ``logto_rs.sessions`` logger.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

from itsdangerous import BadSignature
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from . import Key, SessionSealer

__all__ = ["COOKIE_SIZE_SCOPE_KEY", "EncryptedSessionMiddleware", "SealingSigner"]

COOKIE_SIZE_SCOPE_KEY = "logto_rs.session_cookie_size"
"""ASGI scope key of the middleware's :meth:`EncryptedSessionMiddleware.cookie_size`: what a
session storage measures a session's cookie with."""


class SealingSigner:
    """Seals what ``SessionMiddleware`` would sign: its base64 JSON in, a sealed value out.

    Args:
        sealer: The keys.
        name: The cookie's name, bound into every value.
        ttl: Seconds a sealed value stays valid (``None``: no expiry, as ``max_age=None``).

    """

    def __init__(self, sealer: SessionSealer, name: str, ttl: Optional[int]) -> None:
        self.sealer = sealer
        self.name = name
        self.ttl = ttl

    def sign(self, value: bytes) -> bytes:
        """The sealed cookie value of the session ``value`` (base64 of its JSON)."""
        # The JSON is sealed as it is: base64 under the sealed value's own base64 would make the
        # cookie a third larger.
        return self.sealer.seal(base64.b64decode(value), self.name, self.ttl).encode("ascii")

    def unsign(self, value: Union[str, bytes], max_age: Optional[int] = None) -> bytes:
        """The session (base64 of its JSON) sealed in ``value``; ``BadSignature`` when it does not open.

        ``max_age`` is accepted for Starlette's call and not needed: the expiry is sealed inside.
        """
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        data = self.sealer.open(text, self.name)
        if data is None:
            raise BadSignature("the session cookie did not open")
        # Starlette answers only BadSignature with an empty session: a payload that is not a JSON
        # object (sealed by another application sharing the keys) must not reach it.
        try:
            is_session = isinstance(json.loads(data), dict)
        except ValueError:
            is_session = False
        if not is_session:
            raise BadSignature("the session cookie's payload is not a session")
        return base64.b64encode(data)


class EncryptedSessionMiddleware(SessionMiddleware):
    """``SessionMiddleware`` sealing the cookie with AES-256-GCM instead of signing it.

    Args:
        app: The ASGI app.
        keys: The session keys, the sealing one first (see :func:`logto_rs.sessions.generate_key`).
        **options: ``SessionMiddleware``'s options: ``session_cookie``, ``max_age``, ``path``,
            ``same_site``, ``https_only``, ``domain``…

    Raises:
        LogtoConfigError: A key is missing, malformed, short or weak.

    """

    def __init__(self, app: ASGIApp, keys: Union[Key, Sequence[Key]], **options: Any) -> None:
        if "secret_key" in options:
            raise TypeError("EncryptedSessionMiddleware takes keys=[...], not secret_key")
        sealer = SessionSealer(keys)
        # Starlette builds a signer from secret_key; it is replaced at once and never signs.
        super().__init__(app, secret_key="unused", **options)
        self.sealer = sealer
        self.signer = SealingSigner(sealer, self.session_cookie, self.max_age)  # type: ignore[assignment]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Open the session cookie into ``scope["session"]``, run the app, seal the session back."""
        scope[COOKIE_SIZE_SCOPE_KEY] = self.cookie_size
        await super().__call__(scope, receive, send)

    def cookie_size(self, session: Mapping[str, Any]) -> int:
        """The bytes of the ``Set-Cookie`` value this middleware would send for ``session``."""
        value = self.sealer.sealed_len(len(json.dumps(dict(session)).encode("utf-8")))
        max_age = f"Max-Age={self.max_age}; " if self.max_age is not None else ""
        return len(f"{self.session_cookie}=; path={self.path}; {max_age}{self.security_flags}") + value

    def __repr__(self) -> str:
        return f"EncryptedSessionMiddleware(key_ids={self.sealer.key_ids!r})"
