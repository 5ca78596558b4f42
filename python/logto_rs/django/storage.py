"""``DjangoSessionStorage``: a Logto session inside ``request.session``, with a refresh lock.

It works with every session backend (database, cache, cached_db, file, signed cookies): the
tokens are ordinary session values under ``LOGTO["SESSION_PREFIX"]`` + key.

**The refresh lock.** Logto rotates refresh tokens and revokes the grant when a consumed one
comes back, so one session must be refreshed by one worker at a time. logto-rs takes the
session's ``"refresh"`` lock around each refresh. Here the lock is a key in Django's cache
(``LOGTO["LOCK_CACHE"]``, default ``"default"``), taken with ``cache.add``, which is atomic on
Redis (``django.core.cache.backends.redis.RedisCache``; on a Redis Cluster,
:class:`~logto_rs.django.redis_cluster.RedisClusterCache`), Memcached and the database cache. It
is released by its owner only (a compare-and-delete script on Redis; elsewhere a read and a
delete). Once it holds the lock, the storage reloads the session's tokens from the session
store (another worker may have refreshed meanwhile), and before it releases the lock it saves
the session, so the next holder reads the new refresh token.

Fallbacks, each reported by ``manage.py check``: the local-memory and file caches lock within
one process (or host) only; the dummy cache, ``LOCK_CACHE = None`` and the signed-cookie
session backend (whose session lives in the browser, so workers cannot share a fresher copy)
have no cross-process lock, and refreshes are then coordinated within each process only. Run
one process per session there, or use a server-side session backend and a Redis or Memcached
cache.

``rotate()`` is ``request.session.cycle_key()``: the session key changes after the callback,
so a session id planted in a victim's browser is worthless.
"""

from __future__ import annotations

import logging
import math
import secrets
from typing import Any, Optional

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends import signed_cookies
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.core.cache import BaseCache, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest

from .._sessions import CookieSessionValues, LogtoSessionTooLargeWarning
from ..redis_storage import UNLOCK_SCRIPT
from ..storage import SESSION_KEYS, LockingStorage
from . import conf

__all__ = [
    "AsyncDjangoSessionStorage",
    "DjangoSessionStorage",
    "LogtoSessionTooLargeWarning",
    "lock_support",
]

logger = logging.getLogger("logto_rs.django")

SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"
COOKIE_ENGINES = (SIGNED_COOKIES, "logto_rs.sessions.django")
"""The session backends that keep the session in the browser's cookie (signed, or sealed)."""
LOCK_PREFIX = "logto_rs:lock:"


def _is_signed_cookie_session(session: SessionBase) -> bool:
    """Whether the session lives in the browser's cookie (signed, or sealed: ``logto_rs.sessions``)."""
    return isinstance(session, signed_cookies.SessionStore)


def lock_support(alias: Optional[str]) -> tuple[str, str]:
    """How far the refresh lock reaches with the cache ``alias``: ``(scope, backend path)``.

    ``scope`` is ``"global"`` (atomic ``add`` shared by every host: Redis, Memcached, the
    database), ``"host"`` (the file cache: one machine, and its ``add`` is not atomic),
    ``"process"`` (local memory) or ``"none"`` (dummy cache, or no alias).
    """
    if alias is None:
        return "none", ""
    backend = caches[alias]
    path = f"{type(backend).__module__}.{type(backend).__qualname__}"
    module = type(backend).__module__
    if module.endswith(".dummy"):
        return "none", path
    if module.endswith(".locmem"):
        return "process", path
    if module.endswith(".filebased"):
        return "host", path
    return "global", path


def _redis_compare_and_delete(cache: BaseCache, key: str, token: str) -> bool:
    """Release a lock held in a Django ``RedisCache`` atomically; ``False`` for other caches.

    Subclasses count (:class:`~logto_rs.django.redis_cluster.RedisClusterCache`).
    """
    if not isinstance(cache, RedisCache):
        return False
    try:
        backend: Any = cache
        name = backend.make_and_validate_key(key)
        client = backend._cache.get_client(name, write=True)
        value = backend._cache._serializer.dumps(token)
    except AttributeError:  # pragma: no cover - Django changed its private API: read and delete
        return False
    client.eval(UNLOCK_SCRIPT, 1, name, value)
    return True


class DjangoSessionStorage(CookieSessionValues, LockingStorage):
    """The Logto session of one Django request, in ``request.session``.

    Args:
        request: The request whose session holds the tokens.
        prefix: Prefix of the session keys (``LOGTO["SESSION_PREFIX"]``).
        lock_cache: Cache alias of the refresh lock (``LOGTO["LOCK_CACHE"]``), or ``None``.
        max_cookie_bytes: With the signed-cookie backend, warn when the cookie would be larger.

    """

    def __init__(
        self,
        request: HttpRequest,
        *,
        prefix: Optional[str] = None,
        lock_cache: Optional[str] = "",
        max_cookie_bytes: Optional[int] = None,
    ) -> None:
        limit = conf.option("MAX_COOKIE_BYTES") if max_cookie_bytes is None else max_cookie_bytes
        super().__init__(conf.option("SESSION_PREFIX") if prefix is None else prefix, max_cookie_bytes=limit)
        self.request = request
        self.lock_cache = conf.option("LOCK_CACHE") if lock_cache == "" else lock_cache

    advice = (
        'Use a server-side session backend (SESSION_ENGINE = "django.contrib.sessions.backends.db" '
        'or "cache").'
    )
    logger = logger

    @property
    def session(self) -> SessionBase:
        """The request's session."""
        return self.request.session

    def _session(self) -> SessionBase:
        return self.request.session

    def _first_warning(self) -> bool:
        first = not getattr(self.request, "_logto_cookie_warned", False)
        self.request._logto_cookie_warned = True
        return first

    # The session lock.

    def _lock_key(self, name: str) -> Optional[str]:
        session = self.session
        if _is_signed_cookie_session(session) or self.lock_cache is None:
            return None
        if session.session_key is None:
            session.save()  # a key to lock on (the session is about to hold tokens anyway)
        return f"{LOCK_PREFIX}{session.session_key}:{name}"

    def lock(self, name: str, ttl: float) -> Optional[str]:
        """Take the session lock ``name`` for ``ttl`` seconds if it is free (``cache.add``).

        Once taken, the session's tokens are reloaded from the session store: another worker
        may have refreshed them while this request ran.
        """
        token = secrets.token_urlsafe(16)
        key = self._lock_key(name)
        if key is not None:
            assert self.lock_cache is not None
            if not caches[self.lock_cache].add(key, token, timeout=max(1, math.ceil(ttl))):
                return None
        self._reload()
        return token

    def unlock(self, name: str, token: str) -> None:
        """Save the session, then release the lock ``name`` if ``token`` still owns it."""
        session = self.session
        if not _is_signed_cookie_session(session) and session.session_key is not None:
            try:
                session.save()  # the next holder must read the new refresh token
            except UpdateError:
                pass  # deleted meanwhile (a back-channel logout): it stays deleted
        key = self._lock_key(name)
        if key is None:
            return
        assert self.lock_cache is not None
        cache = caches[self.lock_cache]
        if _redis_compare_and_delete(cache, key, token):
            return
        # Elsewhere: read, then delete. A lock that expired between the two may lose its new
        # owner's key; the lock's ttl outlasts a refresh, so that takes a holder slower than ttl.
        if cache.get(key) == token:
            cache.delete(key)

    def rotate(self) -> None:
        """Give the session a new key, keeping its values (``request.session.cycle_key()``)."""
        self.session.cycle_key()

    def _reload(self) -> None:
        """Replace this session's Logto values with the session store's current ones."""
        session = self.session
        if _is_signed_cookie_session(session) or session.session_key is None:
            return
        stored = type(session)(session.session_key).load()
        for key in SESSION_KEYS:
            name = self.prefix + key
            if name in stored:
                if session.get(name) != stored[name]:
                    session[name] = stored[name]
            elif name in session:
                del session[name]

    # The signed-cookie backend's size.

    def cookie_size(self) -> Optional[int]:
        """The size in bytes the session cookie would have now (``None``: a server-side backend)."""
        from django.conf import settings

        session = self.session
        if not _is_signed_cookie_session(session):
            return None
        value = session._get_session_key()  # what the backend writes into the cookie
        # name=value plus the attributes Django sets (Domain, expires, Max-Age, Path, SameSite…).
        return len(settings.SESSION_COOKIE_NAME) + 1 + len(value) + 150


def session_storage(request: HttpRequest) -> DjangoSessionStorage:
    """The storage of ``request`` (one per request, built on first use)."""
    storage = getattr(request, "_logto_storage", None)
    if storage is None:
        storage = DjangoSessionStorage(request)
        request._logto_storage = storage
    return storage


class AsyncDjangoSessionStorage(LockingStorage):
    """:class:`DjangoSessionStorage` for ``async def`` views: every method is a coroutine.

    Each call runs the synchronous storage through ``asgiref``'s ``sync_to_async`` (in the
    thread Django keeps for sync code), because loading or saving a session may query the
    database, which Django refuses in async code.
    """

    def __init__(self, storage: DjangoSessionStorage) -> None:
        self.storage = storage

    async def get(self, key: str) -> Optional[str]:
        """Return the value under ``key`` in the request's session, or ``None``."""
        return await sync_to_async(self.storage.get)(key)

    async def set(self, key: str, value: Optional[str]) -> None:
        """Store ``value`` under ``key`` in the request's session (``None`` deletes it)."""
        await sync_to_async(self.storage.set)(key, value)

    async def delete(self, key: str) -> None:
        """Remove ``key`` from the request's session."""
        await sync_to_async(self.storage.delete)(key)

    async def lock(self, name: str, ttl: float) -> Optional[str]:
        """:meth:`DjangoSessionStorage.lock`."""
        return await sync_to_async(self.storage.lock)(name, ttl)

    async def unlock(self, name: str, token: str) -> None:
        """:meth:`DjangoSessionStorage.unlock`."""
        await sync_to_async(self.storage.unlock)(name, token)

    async def rotate(self) -> None:
        """:meth:`DjangoSessionStorage.rotate`."""
        await sync_to_async(self.storage.rotate)()
