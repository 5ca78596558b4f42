"""Encrypted cookie sessions: what the browser keeps, only the server can read.

Flask's and Starlette's cookie sessions, and Django's ``signed_cookies`` backend, sign the cookie:
nobody can change it, but anyone who holds it (a browser extension, a proxy's log, a shared
computer) can read the tokens in it. The session machinery here seals the cookie with
AES-256-GCM instead, in the Rust core:

- :class:`logto_rs.sessions.flask.EncryptedSessionInterface` for Flask
  (``app.session_interface = EncryptedSessionInterface(keys=[...])``);
- :class:`logto_rs.sessions.starlette.EncryptedSessionMiddleware` for Starlette and FastAPI, in
  place of ``SessionMiddleware`` (``keys`` in place of ``secret_key``);
- ``SESSION_ENGINE = "logto_rs.sessions.django"`` for Django, with the keys in the setting
  ``LOGTO_SESSION_KEYS``.

Keys are 32 random bytes, written as 43 base64url characters (:func:`generate_key`) or 64 hex
digits. The first key seals; every key opens, so a key is rotated by putting a new one first and
dropping the old one once the cookies it sealed have expired. A cookie that does not open
(altered, expired, sealed for another cookie name, or with a dropped key) is an empty session
and a log line on the ``logto_rs.sessions`` logger that names why, never the value.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Optional, Union, cast

from .._core import CoreSealer, generate_seal_key
from ..errors import LogtoConfigError, LogtoSealError

__all__ = ["SessionSealer", "generate_key"]

logger = logging.getLogger("logto_rs.sessions")

Key = Union[str, bytes]
"""A key: 64 hex digits, 43 base64url characters (or base64), or the 32 bytes themselves."""

# Failures a stale cookie causes in normal use; the others mean the cookie was altered or forged.
_ROUTINE = frozenset({"seal.expired", "seal.unknown_key"})


def generate_key() -> str:
    """A new random session key: 32 bytes from the OS's generator, as 43 base64url characters."""
    return generate_seal_key()


class SessionSealer:
    """Seals session cookies with the first of ``keys`` and opens them with any (AES-256-GCM).

    Each sealed value carries its cookie's name as associated data (it opens under that name
    only) and its expiry inside the ciphertext. The repr shows the keys' ids, never a key.

    Args:
        keys: The keys, the sealing one first. A single key may be given alone.

    Raises:
        LogtoConfigError: No key, a key that is not 32 bytes in a known encoding, a key with too
            little variety to be random, or the same key twice (the message never shows a key).

    """

    def __init__(self, keys: Union[Key, Sequence[Key]]) -> None:
        if isinstance(keys, (str, bytes)):
            key_list: list[Key] = [keys]
        elif isinstance(keys, Sequence):
            key_list = list(cast("Sequence[Key]", keys))
        else:
            raise LogtoConfigError(
                f"keys must be a list of session keys, not {type(keys).__name__}", "config.invalid"
            )
        self._core = CoreSealer(key_list)

    @property
    def key_ids(self) -> list[str]:
        """The keys' ids (derived from the keys by SHA-256, not secret), the sealing key's first."""
        return self._core.key_ids

    def seal(self, value: bytes, name: str, ttl: Optional[int]) -> str:
        """``value`` sealed for the cookie ``name``, expiring in ``ttl`` seconds (``None``: never)."""
        return self._core.seal(value, name, ttl)

    def open(self, sealed: str, name: str) -> Optional[bytes]:
        """The value sealed for the cookie ``name``, or ``None`` (logged) when it does not open."""
        try:
            return self._core.open(sealed, name)
        except LogtoSealError as error:
            level = logging.INFO if error.code in _ROUTINE else logging.WARNING
            logger.log(level, "the session cookie %r was refused: %s", name, error.code)
            return None

    def sealed_len(self, length: int) -> int:
        """The length of the sealed text of a value of ``length`` bytes."""
        return self._core.sealed_len(length)

    def __repr__(self) -> str:
        return f"SessionSealer(key_ids={self.key_ids!r})"
