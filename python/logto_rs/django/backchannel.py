"""Back-channel logout for Django: the session index and replay store in Django's cache.

- Server-side session backends (database, cache, cached_db, file): each callback records the
  Django session key under the ID token's ``sid`` and ``sub`` in the cache
  ``LOGTO["LOCK_CACHE"]`` (else ``"default"``), for ``SESSION_COOKIE_AGE``; a logout deletes
  those sessions from the session store, so the Django login ends with them on every worker.
  It also records the logout as the signed-cookie backend does, so a session that a request
  in flight saved again after the deletion is ended at its next request.
  An index entry is read and written under a short lock taken with ``cache.add``, so sign-ins
  of one user at the same instant on several workers all land in its ``sub`` entry (with a
  cache whose ``add`` is atomic: Redis, Memcached, the database; the local-memory cache only
  within one process).
- The signed-cookie backend: the session cannot be deleted, so a logout records ``sid``/``sub``
  with its time in the cache, and :class:`~logto_rs.django.middleware.LogtoMiddleware` ends a
  session whose ID token dates from before it.
- Logout token ids are claimed with ``cache.add`` (atomic on Redis, Memcached and the database
  cache; within one process on the local-memory cache).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from importlib import import_module
from typing import Any, Optional

from django.conf import settings
from django.core.cache import BaseCache, caches

from ..backchannel import BackchannelLogout, LogoutToken, Revocations, SessionIndex, session_time
from . import conf
from .storage import COOKIE_ENGINES

__all__ = [
    "CacheReplayStore",
    "CacheRevocations",
    "DjangoSessionIndex",
    "backchannel",
    "is_signed_cookie_backend",
]

KEY_PREFIX = "logto_rs:backchannel:"
"""Prefix of the cache keys: the index, the revocations and the claimed logout token ids."""


def _cache() -> BaseCache:
    return caches[conf.option("LOCK_CACHE") or "default"]


def is_signed_cookie_backend() -> bool:
    """Whether sessions live in cookies, signed or sealed (which the server cannot delete)."""
    return settings.SESSION_ENGINE in COOKIE_ENGINES


class CacheReplayStore:
    """A replay store of logout token ids in Django's cache (``cache.add``)."""

    def claim(self, jti: str, ttl: float) -> bool:
        """Record ``jti`` for ``ttl`` seconds; ``True`` when it was not recorded yet."""
        return bool(_cache().add(f"{KEY_PREFIX}jti:{jti}", 1, timeout=max(1, int(ttl) + 1)))


ENTRY_LOCK_SECONDS = 5
"""How long an index entry's lock lives if its holder dies."""

ENTRY_LOCK_WAIT = 2.0
"""How long a writer waits for an index entry's lock before writing without it."""


@contextmanager
def _entry_lock(cache: BaseCache, key: str) -> Iterator[None]:
    """Hold ``key``'s lock (``cache.add``) while an index entry is read and written.

    A holder that died leaves the lock to expire; a writer that waited ``ENTRY_LOCK_WAIT`` goes
    on without it rather than failing the sign-in or the logout.
    """
    lock, token = f"{key}:lock", secrets.token_urlsafe(8)
    deadline = time.monotonic() + ENTRY_LOCK_WAIT
    held = cache.add(lock, token, timeout=ENTRY_LOCK_SECONDS)
    while not held and time.monotonic() < deadline:
        time.sleep(0.005)
        held = cache.add(lock, token, timeout=ENTRY_LOCK_SECONDS)
    try:
        yield
    finally:
        if held and cache.get(lock) == token:
            cache.delete(lock)


class CacheRevocations(Revocations):
    """Revocations of sessions in Django's cache (for as long as a session cookie lives)."""

    def __init__(self, app_id: str) -> None:
        super().__init__(app_id, timedelta(seconds=settings.SESSION_COOKIE_AGE))

    def _put(self, key: str, at: int, ttl: int) -> None:
        cache, name = _cache(), KEY_PREFIX + "revoked:" + key
        with _entry_lock(cache, name):
            current = cache.get(name)
            if not isinstance(current, int) or current < at:
                cache.set(name, at, timeout=max(1, ttl))

    def _get(self, keys: list[str]) -> list[Optional[int]]:
        found = _cache().get_many([KEY_PREFIX + "revoked:" + key for key in keys])
        return [found.get(KEY_PREFIX + "revoked:" + key) for key in keys]


class DjangoSessionIndex(CacheRevocations):
    """Sessions of a server-side backend, found by ``sid`` and ``sub`` through the cache.

    A logout deletes them from the session store and records itself as
    :class:`CacheRevocations` does.
    """

    def __init__(self, app_id: str) -> None:
        super().__init__(app_id)
        self.index = f"{KEY_PREFIX}{app_id}:"

    def record(self, claims: Mapping[str, Any], session_id: Optional[str]) -> None:
        """Add ``session_id`` (the Django session key) to the entries of ``sid`` and ``sub``."""
        if session_id is None:
            return
        cache = _cache()
        for name in ("sid", "sub"):
            value = claims.get(name)
            if isinstance(value, str):
                key = f"{self.index}{name}:{value}"
                with _entry_lock(cache, key):
                    entry = _entry(cache.get(key))
                    entry[session_id] = session_time(claims)
                    cache.set(key, entry, timeout=settings.SESSION_COOKIE_AGE)

    def end(self, logout: LogoutToken) -> int:
        """Delete the sessions of ``sid``, or with only ``sub``, all the user's sessions.

        Only the sessions that signed in up to the token's ``iat``: one that signed in after the
        logout is another session (a late or repeated delivery leaves it alone).
        """
        super().end(logout)
        cache = _cache()
        key = f"{self.index}sid:{logout.sid}" if logout.sid else f"{self.index}sub:{logout.sub}"
        store = import_module(settings.SESSION_ENGINE).SessionStore
        with _entry_lock(cache, key):
            entry = _entry(cache.get(key))
            ended = [k for k, at in entry.items() if at is None or at <= logout.iat]
            for session_key in ended:
                store(session_key).delete(session_key)
                del entry[session_key]
            if entry:
                cache.set(key, entry, timeout=settings.SESSION_COOKIE_AGE)
            else:
                cache.delete(key)
        return len(ended)


def _entry(value: Any) -> dict[str, Optional[int]]:
    """An index entry: session key -> sign-in time (``None`` for an entry of a list of keys)."""
    if isinstance(value, dict):
        return {str(k): v if isinstance(v, int) else None for k, v in value.items()}
    return dict.fromkeys(map(str, value or ()))


_handlers: dict[int, BackchannelLogout] = {}


def backchannel() -> BackchannelLogout:
    """The process's handler, over :func:`~logto_rs.django.conf.get_client` (rebuilt with it)."""
    client = conf.get_client()
    handler = _handlers.get(id(client))
    if handler is None or handler.client is not client:
        app_id = client.config.appId
        sessions: SessionIndex = (
            CacheRevocations(app_id) if is_signed_cookie_backend() else DjangoSessionIndex(app_id)
        )
        handler = BackchannelLogout(client, sessions, replay_store=CacheReplayStore())
        _handlers.clear()
        _handlers[id(client)] = handler
    return handler
