"""Django's cookie session backend, encrypted: ``SESSION_ENGINE = "logto_rs.sessions.django"``.

Django's ``signed_cookies`` backend with the signing replaced by AES-256-GCM sealing. The keys
come from the setting ``LOGTO_SESSION_KEYS`` (a list, the sealing key first; see
:func:`logto_rs.sessions.generate_key`)::

    SESSION_ENGINE = "logto_rs.sessions.django"
    LOGTO_SESSION_KEYS = [os.environ["SESSION_KEY"]]

The cookie is bound to ``SESSION_COOKIE_NAME`` and expires with the session
(``request.session.set_expiry`` or ``SESSION_COOKIE_AGE``). A cookie that does not open (expired,
altered, sealed for another cookie name or with a key no longer listed) is an empty session, with
a line on the ``logto_rs.sessions`` logger. Everything else is ``signed_cookies``: the cookie's
attributes, ``cycle_key``, ``flush``, and what ``logto_rs.django`` knows of cookie sessions (no
cross-process refresh lock, the 4 KB check, ``manage.py check``'s warning).
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends import signed_cookies
from django.core.exceptions import ImproperlyConfigured

from ..errors import LogtoConfigError
from . import SessionSealer

__all__ = ["SessionStore", "sealer"]

_lock = threading.Lock()
_sealers: dict[tuple[Any, ...], SessionSealer] = {}


def sealer() -> SessionSealer:
    """The sealer of ``settings.LOGTO_SESSION_KEYS`` (built once per list of keys)."""
    keys = getattr(settings, "LOGTO_SESSION_KEYS", None)
    if isinstance(keys, (str, bytes)):
        keys = [keys]
    if not isinstance(keys, (list, tuple)) or not keys:
        raise ImproperlyConfigured(
            "SESSION_ENGINE logto_rs.sessions.django needs settings.LOGTO_SESSION_KEYS, a list of "
            "session keys (generate one with logto_rs.sessions.generate_key())"
        )
    index = tuple(keys)
    with _lock:
        found = _sealers.get(index)
        if found is None:
            try:
                found = SessionSealer(list(keys))
            except LogtoConfigError as error:
                raise ImproperlyConfigured(f"settings.LOGTO_SESSION_KEYS: {error}") from error
            _sealers.clear()  # settings changed (tests): drop the sealers of the old keys
            _sealers[index] = found
        return found


class SessionStore(signed_cookies.SessionStore):
    """A session kept in the browser's cookie, sealed with AES-256-GCM."""

    def load(self) -> dict[str, Any]:
        """The session sealed in the cookie, or a new empty session when it does not open."""
        data = sealer().open(self.session_key or "", settings.SESSION_COOKIE_NAME)
        if data is not None:
            try:
                session = self.serializer().loads(data)
            except (ValueError, KeyError, TypeError):  # sealed by another application sharing the keys
                session = None
            if isinstance(session, dict):
                return session
        self.create()
        return {}

    def _get_session_key(self) -> str:
        """The cookie's value: the session, serialized and sealed until its expiry."""
        data = self.serializer().dumps(self._session)
        return sealer().seal(data, settings.SESSION_COOKIE_NAME, max(1, self.get_expiry_age()))
