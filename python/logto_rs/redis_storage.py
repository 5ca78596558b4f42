"""Sessions in Redis, shared by every worker and host: the storage, its lock and its id rotation.

The browser keeps only a random session id (where depends on the framework: Flask's cookie
session, a Starlette session, a Django session); the tokens are under
``<prefix>{<session id>}:<key>`` in Redis (:func:`session_key`) and expire ``ttl`` after their
last write. The braces are a Redis Cluster hash tag: every key of one session lives in one slot,
so the same storage serves one Redis, a Sentinel-managed one and a Redis Cluster (or Valkey).

- The session lock is ``SET <prefix>{<session id>}:lock:<name> <token> NX PX <ttl>``, released
  by a compare-and-delete script, so only its owner releases it and a crashed owner's lock
  expires.
- ``rotate()`` moves the session's keys to a new random id and hands the new id to the
  framework. The two ids hash to different slots, so the move is a copy and a delete, each a
  single-slot script, under the old id's refresh lock; the old id names nothing afterwards.
- A session that a back-channel logout ended has a tombstone, ``<prefix>{<session id>}:ended``
  (:func:`tombstone`). Every token write checks it in the same script, so a write in flight when
  the logout arrived (a refresh's) never re-creates the session. A new sign-in may start under
  the id: its callback moves the session to a new id before it stores any token.

The framework integrations bind these storages to their own session id holder
(:class:`SessionIdHolder`); this module knows no framework. Install ``redis`` (5 or later).
The logic is written once (:mod:`logto_rs._steps`): :class:`RedisStorage` runs it over a
synchronous client, :class:`AsyncRedisStorage` over an asyncio one.
"""

from __future__ import annotations

import secrets
import time
import weakref
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Union

from ._steps import Steps, drive_async, drive_blocking
from .errors import LogtoConfigError, LogtoStorageError
from .storage import SESSION_KEYS, LockingStorage

if TYPE_CHECKING:
    import asyncio

    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.cluster

__all__ = [
    "SOCKET_TIMEOUTS",
    "AsyncRedisClient",
    "AsyncRedisStorage",
    "RedisStorage",
    "SessionIdHolder",
    "read_each",
    "session_key",
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

TAKE_SCRIPT = """
local values = {}
for i = 1, #KEYS do values[i] = redis.call('get', KEYS[i]) end
redis.call('del', unpack(KEYS))
return values
"""
"""Read a session's keys and delete them, in one step (the keys share the session's slot)."""

PUT_SCRIPT = """
for i = 1, #KEYS do redis.call('set', KEYS[i], ARGV[i + 1], 'EX', ARGV[1]) end
return #KEYS
"""
"""Write a session's keys, all or none (the keys share the session's slot)."""

ROTATION_WAIT = 60.0
"""How long (seconds) a rotation waits for the session lock a refresh holds (it outlasts the
refresh lock's ttl, so a crashed holder's lock has expired by then)."""

ROTATION_LOCK_TTL = 10.0
"""The ttl (seconds) of the session lock a rotation holds while it moves the keys."""

REFRESH_LOCK = "refresh"
"""The session lock logto-rs takes around each refresh (and a rotation around its move)."""


class SessionIdHolder(Protocol):
    """Where the framework keeps the session id (in its own cookie session, for instance)."""

    def get(self) -> Optional[str]:
        """The current request's session id, or ``None``."""

    def set(self, sid: str) -> None:
        """Make ``sid`` the session id the browser gets back."""

    def clear(self) -> None:
        """Forget the session id (after sign-out)."""


def session_key(prefix: str, session_id: str, key: str) -> str:
    """The Redis key of the session ``session_id``'s ``key``: ``<prefix>{<session id>}:<key>``.

    The braces are a Redis Cluster hash tag: every key of one session lives in one slot, so a
    script may touch them all on a cluster too.
    """
    return f"{prefix}{{{session_id}}}:{key}"


def tombstone(prefix: str, session_id: str) -> str:
    """The key marking the session ``session_id`` ended: writes of the session check it."""
    return session_key(prefix, session_id, "ended")


def new_session_id() -> str:
    """A random session id (256 bits)."""
    return secrets.token_urlsafe(32)


def read_each(client: Any, keys: list[str]) -> Any:
    """``GET`` of each of ``keys`` in one round trip, on one Redis or across a cluster's slots.

    A pipeline without a transaction (``MGET`` needs every key in one slot on a cluster); its
    result is the list of values, or an awaitable of it over an asyncio client.
    """
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    return pipe.execute()


def _check_prefix(prefix: str) -> str:
    if "{" in prefix or "}" in prefix:
        raise LogtoConfigError(
            "the Redis key prefix must not contain braces: the session id is the keys' Redis "
            "Cluster hash tag, and a brace in the prefix would put every session in one slot",
            "config.invalid",
        )
    return prefix


class _RedisLayout:
    """The sessions' key names and their logic, written once for synchronous and asyncio clients.

    Each operation is a generator of Redis calls (:mod:`logto_rs._steps`): :class:`RedisStorage`
    runs it blocking, :class:`AsyncRedisStorage` on the event loop.
    """

    redis: Any

    def __init__(self, ids: SessionIdHolder, *, prefix: str, ttl: timedelta) -> None:
        self.ids = ids
        self.prefix = _check_prefix(prefix)
        self.ttl = ttl

    def _session_id(self, *, create: bool = False) -> Optional[str]:
        sid = self.ids.get()
        if sid is None and create:
            sid = new_session_id()
            self.ids.set(sid)
        return sid

    def _name(self, key: str, *, create: bool = False) -> Optional[str]:
        sid = self._session_id(create=create)
        return None if sid is None else session_key(self.prefix, sid, key)

    def _seconds(self) -> int:
        return max(1, int(self.ttl.total_seconds()))

    def _get(self, key: str) -> Steps[Optional[str]]:
        name = self._name(key)
        if name is None:
            return None
        return self._text((yield self.redis.get(name)))

    def _set(self, key: str, value: Optional[str]) -> Steps[None]:
        """Write ``value`` (``None`` deletes the key).

        A token write checks the session's tombstone; a new sign-in's state does not (the
        callback moves it to a new id before it stores any token).
        """
        if value is None:
            yield from self._delete(key)
            return
        sid = self._session_id(create=True)
        assert sid is not None
        guard = tombstone(self.prefix, sid) if key in TOKEN_KEYS else session_key(self.prefix, sid, "never")
        yield self.redis.eval(
            SET_SCRIPT, 2, session_key(self.prefix, sid, key), guard, value, self._seconds()
        )

    def _delete(self, key: str) -> Steps[None]:
        name = self._name(key)
        if name is not None:
            yield self.redis.delete(name)

    def _lock(self, name: str, ttl: float, session_id: Optional[str] = None) -> Steps[Optional[str]]:
        """Take the lock ``name`` of the current session (or of ``session_id``) if it is free."""
        token = secrets.token_urlsafe(16)
        sid = session_id or self._session_id(create=True)
        assert sid is not None
        lock = session_key(self.prefix, sid, f"lock:{name}")
        taken = yield self.redis.set(lock, token, nx=True, px=max(1, int(ttl * 1000)))
        return token if taken else None

    def _unlock(self, name: str, token: str, session_id: Optional[str] = None) -> Steps[None]:
        sid = session_id or self._session_id(create=True)
        assert sid is not None
        yield self.redis.eval(UNLOCK_SCRIPT, 1, session_key(self.prefix, sid, f"lock:{name}"), token)

    def _rotate(self) -> Steps[None]:
        """Move the session's keys to a new id: copy, then delete, under the session lock.

        The old and the new id hash to different cluster slots, so the move is two single-slot
        scripts: one takes the old keys (reads and deletes them), one writes them under the new
        id. The old id's refresh lock is held meanwhile, so no refresh writes under the old id
        after its keys are taken; the old id names nothing afterwards.
        """
        old = self.ids.get()
        new = new_session_id()
        if old is not None:
            token = yield from self._lock(REFRESH_LOCK, ROTATION_LOCK_TTL, old)
            pause, deadline = 0.005, time.monotonic() + ROTATION_WAIT
            while token is None:
                if time.monotonic() >= deadline:
                    raise LogtoStorageError(
                        f"the session lock is still held after {ROTATION_WAIT:.0f} s", "storage.error"
                    )
                yield self._pause(pause)
                pause = min(pause * 2, 0.1)
                token = yield from self._lock(REFRESH_LOCK, ROTATION_LOCK_TTL, old)
            try:
                olds = [session_key(self.prefix, old, key) for key in SESSION_KEYS]
                values: Any = yield self.redis.eval(TAKE_SCRIPT, len(olds), *olds)
                kept = [(key, value) for key, value in zip(SESSION_KEYS, values) if value is not None]
                if kept:
                    news = [session_key(self.prefix, new, key) for key, _ in kept]
                    args = [value for _, value in kept]
                    yield self.redis.eval(PUT_SCRIPT, len(news), *news, self._seconds(), *args)
            finally:
                yield from self._unlock(REFRESH_LOCK, token, old)
        self.ids.set(new)

    def _pause(self, seconds: float) -> Any:
        """Sleep ``seconds``: blocking, or an awaitable (the asyncio storage)."""
        time.sleep(seconds)

    def forget_session(self) -> None:
        """Drop the session id (after sign-out, whose deletes removed the keys)."""
        self.ids.clear()

    @staticmethod
    def _text(value: Union[bytes, str, None]) -> Optional[str]:
        return value.decode("utf-8") if isinstance(value, bytes) else value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r}, ttl={self.ttl!r})"


class RedisStorage(_RedisLayout, LockingStorage):
    """A session in Redis over a synchronous client, with the session lock and rotation.

    The client may be a ``redis.Redis``, a Redis Cluster's ``redis.cluster.RedisCluster`` or a
    Sentinel's ``Sentinel(...).master_for(name)``.

    Args:
        client: The Redis client (its pool serves every request).
        ids: Where the framework keeps the session id.
        prefix: Prefix of every key (no braces: the session id is the keys' hash tag).
        ttl: How long a session lives after its last write.

    Raises:
        LogtoConfigError: ``prefix`` contains a brace.

    """

    def __init__(
        self,
        client: Union[redis.Redis, redis.cluster.RedisCluster],
        ids: SessionIdHolder,
        *,
        prefix: str = "logto:",
        ttl: timedelta = timedelta(days=14),
    ) -> None:
        super().__init__(ids, prefix=prefix, ttl=ttl)
        self.redis = client

    def get(self, key: str) -> Optional[str]:
        """Return the value under ``key`` for the current session, or ``None``."""
        return drive_blocking(self._get(key))

    def set(self, key: str, value: Optional[str]) -> None:
        """Store ``value`` under ``key`` for the current session (``None`` deletes it)."""
        drive_blocking(self._set(key, value))

    def delete(self, key: str) -> None:
        """Remove ``key`` for the current session."""
        drive_blocking(self._delete(key))

    def lock(self, name: str, ttl: float) -> Optional[str]:
        """Take the session lock ``name`` for ``ttl`` seconds if it is free (``SET NX PX``)."""
        return drive_blocking(self._lock(name, ttl))

    def unlock(self, name: str, token: str) -> None:
        """Release the lock ``name`` if ``token`` still owns it."""
        drive_blocking(self._unlock(name, token))

    def rotate(self) -> None:
        """Move the session's keys to a new id; the old id names nothing afterwards."""
        drive_blocking(self._rotate())


class AsyncRedisClient:
    """An asyncio Redis client per running event loop, with socket timeouts by default.

    An asyncio connection belongs to the event loop that opened it, so this opens one client
    (one pool) per running loop, from ``url`` or the ``redis.asyncio.Redis`` keyword arguments,
    or with ``client_factory`` (a Redis Cluster's or a Sentinel's client), and drops it with its
    loop. Every other attribute is the running loop's client's: pass it wherever an asyncio
    Redis client is expected (the back-channel stores of :mod:`logto_rs.backchannel`, for
    one). Call :meth:`aclose` at shutdown.

    Args:
        url: ``redis://`` URL (``redis.asyncio.Redis.from_url``); ``None`` to use ``redis_kwargs``.
        client_factory: Opens a client for the running loop, instead of ``url`` and
            ``redis_kwargs``: e.g. ``lambda: redis.asyncio.cluster.RedisCluster.from_url(url)``
            or ``lambda: redis.asyncio.sentinel.Sentinel(hosts).master_for("mymaster")``. Give
            its clients socket timeouts yourself.
        redis_kwargs: More arguments of ``redis.asyncio.Redis`` (or of ``from_url``); the socket
            timeouts default to :data:`SOCKET_TIMEOUTS`.

    Raises:
        LogtoConfigError: ``client_factory`` was given with ``url`` or ``redis_kwargs``.

    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        client_factory: Optional[Callable[[], Any]] = None,
        **redis_kwargs: Any,
    ) -> None:
        if client_factory is not None and (url is not None or redis_kwargs):
            raise LogtoConfigError(
                "AsyncRedisClient takes a client_factory or a url and redis.asyncio.Redis "
                "arguments, not both",
                "config.invalid",
            )
        self.url = url
        self.client_factory = client_factory
        self.redis_kwargs = {**SOCKET_TIMEOUTS, **redis_kwargs}
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

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
            if self.client_factory is not None:
                client = self.client_factory()
            elif self.url is not None:
                client = redis.asyncio.Redis.from_url(self.url, **self.redis_kwargs)
            else:
                client = redis.asyncio.Redis(**self.redis_kwargs)
            self._clients[loop] = client
        result: redis.asyncio.Redis = client
        return result

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
    """:class:`RedisStorage` over an asyncio client: every method is a coroutine.

    The client may be a ``redis.asyncio.Redis``, a ``redis.asyncio.cluster.RedisCluster``, a
    Sentinel's ``redis.asyncio.sentinel.Sentinel(...).master_for(name)`` or an
    :class:`AsyncRedisClient`. An asyncio Redis connection belongs to the event loop that opened
    it: use it where every request runs in one loop (an ASGI server's).
    """

    def __init__(
        self,
        client: Union[redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster, AsyncRedisClient],
        ids: SessionIdHolder,
        *,
        prefix: str = "logto:",
        ttl: timedelta = timedelta(days=14),
    ) -> None:
        super().__init__(ids, prefix=prefix, ttl=ttl)
        self.redis = client

    async def get(self, key: str) -> Optional[str]:
        """Return the value under ``key`` for the current session, or ``None``."""
        return await drive_async(self._get(key))

    async def set(self, key: str, value: Optional[str]) -> None:
        """Store ``value`` under ``key`` for the current session (``None`` deletes it)."""
        await drive_async(self._set(key, value))

    async def delete(self, key: str) -> None:
        """Remove ``key`` for the current session."""
        await drive_async(self._delete(key))

    async def lock(self, name: str, ttl: float) -> Optional[str]:
        """Take the session lock ``name`` for ``ttl`` seconds if it is free (``SET NX PX``)."""
        return await drive_async(self._lock(name, ttl))

    async def unlock(self, name: str, token: str) -> None:
        """Release the lock ``name`` if ``token`` still owns it."""
        await drive_async(self._unlock(name, token))

    async def rotate(self) -> None:
        """Move the session's keys to a new id; the old id names nothing afterwards."""
        await drive_async(self._rotate())

    def _pause(self, seconds: float) -> Any:
        import asyncio

        return asyncio.sleep(seconds)
