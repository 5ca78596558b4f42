"""Sessions in Redis, shared by every worker and host: the storage, its lock and its id rotation.

The browser keeps only a random session id (where depends on the framework: Flask's cookie
session, a Starlette session, a Django session); the tokens are under
``<prefix><session id>:<key>`` in Redis and expire ``ttl`` after their last write.

- The session lock is ``SET <prefix><session id>:lock:<name> <token> NX PX <ttl>``, released by
  a compare-and-delete script, so only its owner releases it and a crashed owner's lock expires.
- ``rotate()`` moves the session's keys to a new random id in one script (``RENAME``) and hands
  the new id to the framework; the old id no longer names anything.
- A session that a back-channel logout ended has a tombstone, ``<prefix><session id>:ended``
  (:func:`tombstone`). Every token write checks it in the same script, so a write in flight when
  the logout arrived (a refresh's) never re-creates the session. A new sign-in may start under
  the id: its callback moves the session to a new id before it stores any token.

The framework integrations bind these storages to their own session id holder
(:class:`SessionIdHolder`); this module knows no framework. Install ``redis`` (5 or later).
"""

from __future__ import annotations

import secrets
import weakref
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Optional, Protocol, Union, cast

from .errors import LogtoConfigError
from .storage import SESSION_KEYS, LockingStorage

if TYPE_CHECKING:
    import asyncio

    import redis
    import redis.asyncio

__all__ = [
    "SOCKET_TIMEOUTS",
    "AsyncRedisClient",
    "AsyncRedisStorage",
    "RedisStorage",
    "SessionIdHolder",
    "tombstone",
]

SOCKET_TIMEOUTS = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0}
"""The default timeouts (seconds) of the asyncio clients :class:`AsyncRedisClient` opens: a
stalled Redis fails the requests that need it (503) instead of holding them forever."""

TOKEN_KEYS = frozenset(SESSION_KEYS) - {"signInSession"}
"""The keys whose writes an ended session's tombstone refuses (a sign-in may start again)."""

SET_SCRIPT = """
if redis.call('exists', KEYS[2]) == 1 then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
"""Write a session's key unless the session was ended (its tombstone exists)."""

UNLOCK_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

ROTATE_SCRIPT = """
local n = #KEYS / 2
for i = 1, n do
  if redis.call('exists', KEYS[i]) == 1 then redis.call('rename', KEYS[i], KEYS[i + n]) end
end
return n
"""


class SessionIdHolder(Protocol):
    """Where the framework keeps the session id (in its own cookie session, for instance)."""

    def get(self) -> Optional[str]:
        """The current request's session id, or ``None``."""

    def set(self, sid: str) -> None:
        """Make ``sid`` the session id the browser gets back."""

    def clear(self) -> None:
        """Forget the session id (after sign-out)."""


def tombstone(prefix: str, session_id: str) -> str:
    """The key marking the session ``session_id`` ended: writes of the session check it."""
    return f"{prefix}{session_id}:ended"


def new_session_id() -> str:
    """A random session id (256 bits)."""
    return secrets.token_urlsafe(32)


class _RedisLayout:
    """Key names and the id bookkeeping that both storages share."""

    def __init__(self, ids: SessionIdHolder, *, prefix: str, ttl: timedelta) -> None:
        self.ids = ids
        self.prefix = prefix
        self.ttl = ttl

    def _session_id(self, *, create: bool = False) -> Optional[str]:
        sid = self.ids.get()
        if sid is None and create:
            sid = new_session_id()
            self.ids.set(sid)
        return sid

    def _name(self, key: str, *, create: bool = False) -> Optional[str]:
        sid = self._session_id(create=create)
        return None if sid is None else f"{self.prefix}{sid}:{key}"

    def _write(self, key: str, value: str) -> tuple[str, int, str, str, str, int]:
        """The arguments of ``eval(SET_SCRIPT, ...)`` writing ``value`` under ``key``.

        A token write checks the session's tombstone; a new sign-in's state does not (the
        callback moves it to a new id before it stores any token).
        """
        sid = self._session_id(create=True)
        assert sid is not None
        ttl = max(1, int(self.ttl.total_seconds()))
        guard = tombstone(self.prefix, sid) if key in TOKEN_KEYS else f"{self.prefix}{sid}:never"
        return SET_SCRIPT, 2, f"{self.prefix}{sid}:{key}", guard, value, ttl

    def _lock_name(self, name: str) -> str:
        lock = self._name(f"lock:{name}", create=True)
        assert lock is not None
        return lock

    def _rotation(self) -> tuple[Optional[list[str]], str]:
        """The ``RENAME`` script's keys (old names, then new), or ``None`` without a session."""
        old = self.ids.get()
        new = new_session_id()
        if old is None:
            return None, new
        keys = [f"{self.prefix}{old}:{k}" for k in SESSION_KEYS]
        keys += [f"{self.prefix}{new}:{k}" for k in SESSION_KEYS]
        return keys, new

    def forget_session(self) -> None:
        """Drop the session id (after sign-out, whose deletes removed the keys)."""
        self.ids.clear()

    @staticmethod
    def _text(value: Union[bytes, str, None]) -> Optional[str]:
        return value.decode("utf-8") if isinstance(value, bytes) else value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r}, ttl={self.ttl!r})"


class RedisStorage(_RedisLayout, LockingStorage):
    """A session in Redis over a synchronous ``redis.Redis``, with the session lock and rotation.

    Args:
        client: The Redis client (its pool serves every request).
        ids: Where the framework keeps the session id.
        prefix: Prefix of every key.
        ttl: How long a session lives after its last write.

    """

    def __init__(
        self,
        client: redis.Redis,
        ids: SessionIdHolder,
        *,
        prefix: str = "logto:",
        ttl: timedelta = timedelta(days=14),
    ) -> None:
        super().__init__(ids, prefix=prefix, ttl=ttl)
        self.redis = client

    def get(self, key: str) -> Optional[str]:
        """Return the value under ``key`` for the current session, or ``None``."""
        name = self._name(key)
        return None if name is None else self._text(cast(Any, self.redis.get(name)))

    def set(self, key: str, value: Optional[str]) -> None:
        """Store ``value`` under ``key`` for the current session (``None`` deletes it)."""
        if value is None:
            self.delete(key)
            return
        self.redis.eval(*self._write(key, value))

    def delete(self, key: str) -> None:
        """Remove ``key`` for the current session."""
        name = self._name(key)
        if name is not None:
            self.redis.delete(name)

    def lock(self, name: str, ttl: float) -> Optional[str]:
        """Take the session lock ``name`` for ``ttl`` seconds if it is free (``SET NX PX``)."""
        token = secrets.token_urlsafe(16)
        taken = self.redis.set(self._lock_name(name), token, nx=True, px=max(1, int(ttl * 1000)))
        return token if taken else None

    def unlock(self, name: str, token: str) -> None:
        """Release the lock ``name`` if ``token`` still owns it."""
        self.redis.eval(UNLOCK_SCRIPT, 1, self._lock_name(name), token)

    def rotate(self) -> None:
        """Move the session's keys to a new id; the old id names nothing afterwards."""
        keys, new = self._rotation()
        if keys is not None:
            self.redis.eval(ROTATE_SCRIPT, len(keys), *keys)
        self.ids.set(new)


class AsyncRedisClient:
    """A ``redis.asyncio.Redis`` per running event loop, with socket timeouts by default.

    An asyncio connection belongs to the event loop that opened it, so this opens one client
    (one pool) per running loop, from ``url`` or the ``redis.asyncio.Redis`` keyword arguments,
    and drops it with its loop. Every other attribute is the running loop's client's: pass it
    wherever a ``redis.asyncio.Redis`` is expected (the back-channel stores of
    :mod:`logto_rs.backchannel`, for one). Call :meth:`aclose` at shutdown.

    Args:
        url: ``redis://`` URL (``redis.asyncio.Redis.from_url``); ``None`` to use ``redis_kwargs``.
        redis_kwargs: More arguments of ``redis.asyncio.Redis`` (or of ``from_url``); the socket
            timeouts default to :data:`SOCKET_TIMEOUTS`.

    """

    def __init__(self, url: Optional[str] = None, **redis_kwargs: Any) -> None:
        self.url = url
        self.redis_kwargs = {**SOCKET_TIMEOUTS, **redis_kwargs}
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def client(self) -> redis.asyncio.Redis:
        """The Redis client of the running event loop (opened on first use in that loop)."""
        import asyncio

        import redis.asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise LogtoConfigError(
                "AsyncRedisClient serves asyncio code (FastAPI) and was called outside an event "
                "loop: give Flask and Django a synchronous redis.Redis",
                "config.invalid",
            ) from None
        client = self._clients.get(loop)
        if client is None:
            if self.url is not None:
                client = redis.asyncio.Redis.from_url(self.url, **self.redis_kwargs)
            else:
                client = redis.asyncio.Redis(**self.redis_kwargs)
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the running event loop's client (call it at shutdown)."""
        import asyncio

        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.client(), name)

    def __repr__(self) -> str:
        return "AsyncRedisClient()"


class AsyncRedisStorage(_RedisLayout, LockingStorage):
    """:class:`RedisStorage` over ``redis.asyncio.Redis``: every method is a coroutine.

    An asyncio Redis connection belongs to the event loop that opened it: use it where every
    request runs in one loop (an ASGI server's).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        ids: SessionIdHolder,
        *,
        prefix: str = "logto:",
        ttl: timedelta = timedelta(days=14),
    ) -> None:
        super().__init__(ids, prefix=prefix, ttl=ttl)
        self.redis = client

    async def get(self, key: str) -> Optional[str]:
        """Return the value under ``key`` for the current session, or ``None``."""
        name = self._name(key)
        return None if name is None else self._text(await self.redis.get(name))

    async def set(self, key: str, value: Optional[str]) -> None:
        """Store ``value`` under ``key`` for the current session (``None`` deletes it)."""
        if value is None:
            await self.delete(key)
            return
        await cast(Any, self.redis.eval(*self._write(key, value)))

    async def delete(self, key: str) -> None:
        """Remove ``key`` for the current session."""
        name = self._name(key)
        if name is not None:
            await self.redis.delete(name)

    async def lock(self, name: str, ttl: float) -> Optional[str]:
        """Take the session lock ``name`` for ``ttl`` seconds if it is free (``SET NX PX``)."""
        token = secrets.token_urlsafe(16)
        taken = await self.redis.set(self._lock_name(name), token, nx=True, px=max(1, int(ttl * 1000)))
        return token if taken else None

    async def unlock(self, name: str, token: str) -> None:
        """Release the lock ``name`` if ``token`` still owns it."""
        await cast(Any, self.redis.eval(UNLOCK_SCRIPT, 1, self._lock_name(name), token))

    async def rotate(self) -> None:
        """Move the session's keys to a new id; the old id names nothing afterwards."""
        keys, new = self._rotation()
        if keys is not None:
            await cast(Any, self.redis.eval(ROTATE_SCRIPT, len(keys), *keys))
        self.ids.set(new)
