"""Flask's cookie session, encrypted: ``app.session_interface = EncryptedSessionInterface(keys=[...])``.

It is Flask's own :class:`~flask.sessions.SecureCookieSessionInterface` with the signing
serializer replaced by a sealing one. Everything else is Flask's: the cookie settings
(``SESSION_COOKIE_NAME``, ``_DOMAIN``, ``_PATH``, ``_SECURE``, ``_HTTPONLY``, ``_SAMESITE``,
``_PARTITIONED``, ``PERMANENT_SESSION_LIFETIME``), the session's ``modified``/``accessed``
semantics, ``SESSION_REFRESH_EACH_REQUEST``, and the payload's types (Flask's tagged JSON:
tuples, bytes, datetimes…). ``app.secret_key`` is not used for the session.

A cookie sealed more than ``PERMANENT_SESSION_LIFETIME`` ago, altered, sealed for another cookie
name or with a key no longer listed opens as an empty session, with a line on the
``logto_rs.sessions`` logger. :class:`logto_rs.flask.FlaskSessionStorage` measures the sealed
cookie when it checks the 4 KB a browser keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

from . import Key, SessionSealer

__all__ = ["EncryptedSessionInterface", "SealingSerializer"]


class SealingSerializer:
    """Turns a session into a sealed cookie value and back: what Flask's signing serializer does.

    Args:
        sealer: The keys.
        name: The cookie's name, bound into every value.
        ttl: Seconds a sealed value stays valid.
        serializer: The payload's serializer (Flask's tagged JSON).

    """

    def __init__(self, sealer: SessionSealer, name: str, ttl: int, serializer: Any) -> None:
        self.sealer = sealer
        self.name = name
        self.ttl = ttl
        self.serializer = serializer

    def dumps(self, session: dict[str, Any]) -> str:
        """The sealed cookie value of ``session``."""
        return self.sealer.seal(self.serializer.dumps(session).encode("utf-8"), self.name, self.ttl)

    def loads(self, value: str, max_age: Optional[int] = None) -> Any:
        """The session sealed in ``value``; ``BadSignature`` when it does not open.

        ``max_age`` is accepted for Flask's call and not needed: the expiry is sealed inside.
        """
        data = self.sealer.open(value, self.name)
        if data is None:
            raise BadSignature("the session cookie did not open")
        try:
            session = self.serializer.loads(data.decode("utf-8"))
        except (ValueError, KeyError, TypeError):  # sealed by another application sharing the keys
            session = None
        if not isinstance(session, dict):
            raise BadSignature("the session cookie's payload is not a session")
        return session


class EncryptedSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie session, sealed with AES-256-GCM instead of signed.

    Args:
        keys: The session keys, the sealing one first (see :func:`logto_rs.sessions.generate_key`).

    Raises:
        LogtoConfigError: A key is missing, malformed, short or weak.

    """

    def __init__(self, keys: Union[Key, Sequence[Key]]) -> None:
        self.sealer = SessionSealer(keys)

    def get_signing_serializer(self, app: Flask) -> SealingSerializer:  # type: ignore[override]
        """The sealing serializer of ``app``'s session cookie (its name and lifetime)."""
        return SealingSerializer(
            self.sealer,
            self.get_cookie_name(app),
            max(1, int(app.permanent_session_lifetime.total_seconds())),
            self.serializer,
        )

    def __repr__(self) -> str:
        return f"EncryptedSessionInterface(key_ids={self.sealer.key_ids!r})"
