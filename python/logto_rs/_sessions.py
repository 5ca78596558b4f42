"""The session layer of the web integrations, written once over each framework's session.

A framework's session is a mapping bound to the current request (Flask's ``session``,
Starlette's and Django's ``request.session``). Over it:

- :class:`CookieSessionValues` keeps the tokens in the session itself (a cookie session), and
  measures the cookie on every write: past the 4 KB a browser keeps, the browser would drop it
  and sign the user out, so it warns (:class:`LogtoSessionTooLargeWarning`) or, ``strict``,
  refuses (``storage.cookie_too_large``);
- :class:`SessionKeyId` keeps a server-side session's id in it (Redis storages);
- :func:`check_cookie_security` warns once when the session cookie is not ``Secure`` on a
  public host (:class:`LogtoInsecureCookieWarning`).

The one binding rule: a request's client is ``client.withStorage(storage_for(request))``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import MutableMapping
from typing import Any, Callable, Optional

from .errors import LogtoException
from .storage import Storage
from .web import COOKIE_LIMIT, insecure_cookie_message

__all__ = [
    "CookieSessionValues",
    "LogtoInsecureCookieWarning",
    "LogtoSessionTooLargeWarning",
    "SessionKeyId",
    "check_cookie_security",
]


class LogtoInsecureCookieWarning(UserWarning):
    """The session cookie is not ``Secure`` on a host other than loopback."""


class LogtoSessionTooLargeWarning(UserWarning):
    """The session cookie grew past what a browser keeps; the user would be signed out."""


def check_cookie_security(host: str, secure: Optional[bool], setting: str, logger: logging.Logger) -> None:
    """Warn when the session cookie is not ``Secure`` (``secure`` is ``False``) on a public ``host``.

    ``secure`` is ``None`` when it cannot be known (a session middleware of another kind):
    nothing is said. ``setting`` names the framework's switch.
    """
    message = insecure_cookie_message(host)
    if message is None or secure is not False:
        return
    message += f" ({setting})"
    logger.warning(message)
    warnings.warn(message, LogtoInsecureCookieWarning, stacklevel=3)


class SessionKeyId:
    """Keeps a server-side session's id in the framework's session, under ``session_key``.

    Args:
        session: Returns the current request's session.
        session_key: The key of the id in the session.

    """

    def __init__(
        self, session: Callable[[], MutableMapping[str, Any]], session_key: str = "logto_sid"
    ) -> None:
        self._session = session
        self.session_key = session_key

    def get(self) -> Optional[str]:
        """The current request's session id, or ``None``."""
        sid = self._session().get(self.session_key)
        return sid if isinstance(sid, str) else None

    def set(self, sid: str) -> None:
        """Make ``sid`` the session id of the cookie sent back."""
        self._session()[self.session_key] = sid

    def clear(self) -> None:
        """Forget the session id."""
        self._session().pop(self.session_key, None)


class CookieSessionValues(Storage):
    """Tokens in the framework's session, under ``prefix`` + key; every write measures the cookie.

    A framework's storage subclasses it and says how to reach the session (:meth:`_session`),
    how large its cookie would be (:meth:`cookie_size`) and whether this request warned already
    (:meth:`_first_warning`).

    Args:
        prefix: Prefix of the session keys.
        max_cookie_bytes: The size past which a write warns (or raises).
        strict: Raise ``LogtoException`` (``storage.cookie_too_large``) instead of warning.

    """

    advice = "Keep the tokens server-side (a Redis session storage)."
    """What the warning advises instead."""

    logger = logging.getLogger("logto_rs.web")
    """The logger the warning also goes to."""

    def __init__(self, prefix: str = "logto_", *, max_cookie_bytes: int = COOKIE_LIMIT, strict: bool = False):
        self.prefix = prefix
        self.max_cookie_bytes = max_cookie_bytes
        self.strict = strict

    def _session(self) -> MutableMapping[str, Any]:
        raise NotImplementedError

    def cookie_size(self) -> Optional[int]:
        """The size in bytes the session cookie would have now (``None``: it cannot be measured)."""
        return None

    def _first_warning(self) -> bool:
        """Whether this request has not warned yet (it will not warn twice)."""
        return True

    def get(self, key: str) -> Optional[str]:
        """Return the value under ``key`` in the current session, or ``None``."""
        value = self._session().get(self.prefix + key)
        return value if isinstance(value, str) else None

    def set(self, key: str, value: Optional[str]) -> None:
        """Store ``value`` under ``key`` in the current session (``None`` deletes it)."""
        if value is None:
            self.delete(key)
            return
        self._session()[self.prefix + key] = value
        self._check_size()

    def delete(self, key: str) -> None:
        """Remove ``key`` from the current session."""
        self._session().pop(self.prefix + key, None)

    def _check_size(self) -> None:
        size = self.cookie_size()
        if size is None or size <= self.max_cookie_bytes:
            return
        message = (
            f"the session cookie would be {size} bytes, more than the {self.max_cookie_bytes} "
            f"a browser keeps: the browser would drop it and sign the user out. {self.advice}"
        )
        if self.strict:
            raise LogtoException(message, "storage.cookie_too_large")
        if self._first_warning():
            self.logger.warning(message)
            warnings.warn(message, LogtoSessionTooLargeWarning, stacklevel=3)
