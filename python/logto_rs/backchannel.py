"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0), for every framework.

When a user signs out at Logto, Logto POSTs a form field ``logout_token`` to the
``backchannelLogoutUri`` of each application the user signed in to. :class:`BackchannelLogout`
answers that request: the Rust core verifies the token (signature with the client's key set,
``typ: logout+jwt``, ``iss``, ``aud``, ``iat``, ``exp``, the logout event, ``sub`` or ``sid``,
no ``nonce``) and claims its ``jti`` in a :class:`ReplayStore`, then a :class:`SessionIndex`
ends the sessions it names: the one with its ``sid``, or, with only ``sub``, every session of
that user in this application.

- :class:`RedisSessionIndex` (server-side sessions in Redis): each callback records
  ``sid -> session ids`` and ``sub -> session ids`` (Redis sets that expire with the sessions);
  a logout marks each session ended (a tombstone that every later write of the session checks
  atomically, so a refresh in flight cannot bring it back) and deletes its keys, so every
  worker and host sees it gone.
- :class:`MemoryRevocations` / :class:`RedisRevocations` (sessions kept in a signed cookie,
  which the server cannot delete): a logout records ``sid``/``sub`` with the token's ``iat``,
  and each request checks the session against it: a session that signed in up to that time is
  signed out. The sign-in time is the one the callback recorded in the session (its ID token's
  ``auth_time``, else ``iat``), which no refresh renews.

Each signed-in session carries a mark in the framework's session (:data:`MARK_KEY`): when it
signed in and a random id of its own. A local sign-out revokes that id, so a copy of the
cookie taken before the sign-out is signed out too.

The framework integrations (Flask, FastAPI, Django) serve the endpoint with a few lines over
:meth:`BackchannelLogout.respond_to_body` (FastAPI: :meth:`~BackchannelLogout.respond_to_body_async`):
at most :data:`MAX_BODY` bytes are read, the token is verified, the sessions are ended, and
only then is the token's ``jti`` claimed, so a logout whose sessions could not be ended (503)
is accepted when Logto sends it again.

The Redis stores take a synchronous ``redis.Redis`` (Flask, Django) or an asyncio client
(``redis.asyncio.Redis``, :class:`~logto_rs.redis_storage.AsyncRedisClient`: FastAPI), of one
Redis, a Sentinel's master or a Redis Cluster (each step touches one slot). Their
logic is written once and returns plain results over the former, awaitables over the latter;
:class:`BackchannelLogout`'s blocking methods refuse an asyncio store (``LogtoConfigError``),
its ``_async`` twins await it on the event loop, in no worker thread.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Union
from urllib.parse import parse_qs

from . import _driver
from ._core import CoreClient, Operation
from ._steps import Steps, T, drive, drive_async, drive_blocking
from .errors import (
    LogtoConfigError,
    LogtoException,
    LogtoNetworkError,
    LogtoResponseError,
    LogtoStorageError,
    LogtoTokenValidationError,
)
from .redis_storage import read_each, session_key, tombstone
from .storage import SESSION_KEYS

if TYPE_CHECKING:
    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.cluster

    from .client import LogtoClient
    from .redis_storage import AsyncRedisClient

    RedisClient = Union[
        redis.Redis,
        redis.cluster.RedisCluster,
        redis.asyncio.Redis,
        redis.asyncio.cluster.RedisCluster,
        AsyncRedisClient,
    ]
    """A Redis client the stores accept: synchronous, or asyncio (their calls then awaitable)."""

__all__ = [
    "MARK_KEY",
    "MAX_BODY",
    "BackchannelLogout",
    "BackchannelResponse",
    "LogoutToken",
    "MemoryRevocations",
    "RedisReplayStore",
    "RedisRevocations",
    "RedisSessionIndex",
    "ReplayStore",
    "Revocations",
    "SessionIndex",
    "SessionMark",
    "declared_too_large",
    "parse_form",
    "read_limited",
    "read_limited_async",
]

RESPONSE_HEADERS = {"Cache-Control": "no-store", "Content-Type": "application/json"}
"""Headers of every answer of the endpoint."""

MEMORY_CAPACITY = 10_000
"""Most unexpired records a :class:`MemoryRevocations` keeps; past that it fails closed."""

MAX_BODY = 64 * 1024
"""Most bytes of a back-channel logout request that are read; a larger body is answered 413."""

MARK_KEY = "logto_signed_in"
"""Key of the :class:`SessionMark` in the framework's session (Flask, Starlette, Django)."""

logger = logging.getLogger("logto_rs.backchannel")


@dataclass(frozen=True)
class LogoutToken:
    """A verified logout token: whose sessions end.

    Attributes:
        sub: The user, when the token names one.
        sid: The provider's session, when the token names one.
        iat: When the provider issued the token (seconds since the epoch).
        exp: Until when the token is accepted, and its ``jti`` remembered.
        jti: The token's id, claimed in the replay store once its sessions have ended.

    """

    sub: Optional[str]
    sid: Optional[str]
    iat: int
    exp: int
    jti: str = ""


@dataclass(frozen=True)
class SessionMark:
    """When a session signed in, and a random id of its own; recorded at the callback.

    Attributes:
        at: The sign-in time (the callback's ID token's ``auth_time``, else ``iat``): refreshes
            renew the ID token, never this.
        id: 128 random bits naming this session (a local sign-out revokes it).

    """

    at: int
    id: str

    def dump(self) -> str:
        """The text kept in the framework's session."""
        return f"{self.at}:{self.id}"

    @classmethod
    def load(cls, value: Any) -> Optional[SessionMark]:
        """The mark :meth:`dump` wrote, or ``None`` for anything else."""
        if not isinstance(value, str):
            return None
        at, _, mark_id = value.partition(":")
        return cls(int(at), mark_id) if at.isdigit() and mark_id else None


class ReplayStore(Protocol):
    """Remembers the ``jti`` of accepted logout tokens, so each is accepted once."""

    def claim(self, jti: str, ttl: float) -> Union[bool, Awaitable[bool]]:
        """Record ``jti`` for ``ttl`` seconds; ``True`` when it was not recorded yet (atomic)."""


class RedisReplayStore:
    """A :class:`ReplayStore` in Redis (``SET NX EX``).

    A token is accepted once across every process and host sharing the Redis.

    Args:
        client: A synchronous ``redis.Redis`` (Flask, Django), or an asyncio one
            (``redis.asyncio.Redis``, :class:`~logto_rs.redis_storage.AsyncRedisClient`: FastAPI),
            whose calls are then awaitable.
        prefix: Prefix of the keys.

    """

    def __init__(self, client: RedisClient, *, prefix: str = "logto-logout-jti:") -> None:
        self.redis = client
        self.prefix = prefix

    def claim(self, jti: str, ttl: float) -> Union[bool, Awaitable[bool]]:
        """Record ``jti`` for ``ttl`` seconds; ``True`` when it was not recorded yet."""
        return drive(self._claim(jti, ttl))

    def _claim(self, jti: str, ttl: float) -> Steps[bool]:
        return bool((yield self.redis.set(self.prefix + jti, "1", nx=True, ex=max(1, math.ceil(ttl)))))

    def __repr__(self) -> str:
        return f"RedisReplayStore(prefix={self.prefix!r})"


def session_time(claims: Mapping[str, Any]) -> int:
    """When a session's ID token says it began: ``auth_time`` (kept by refreshes), else ``iat``."""
    for name in ("auth_time", "iat"):
        value = claims.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return 0


class SessionIndex(ABC):
    """Finds and ends an application's sessions by the provider's ``sid`` and ``sub``.

    Each method returns its result, or, for a store over an asyncio client, an awaitable of it:
    :class:`BackchannelLogout`'s blocking methods (Flask, Django) take the former, its ``_async``
    methods (FastAPI) await the latter on the event loop.
    """

    def record(self, claims: Mapping[str, Any], session_id: Optional[str]) -> Optional[Awaitable[None]]:  # noqa: B027
        """Remember a session that just signed in (its ID token's ``claims``); by default nothing."""

    def forget(self, claims: Mapping[str, Any], session_id: Optional[str]) -> Optional[Awaitable[None]]:  # noqa: B027
        """Drop a session that signed out locally from the index; by default nothing."""

    @abstractmethod
    def end(self, logout: LogoutToken) -> Union[int, Awaitable[int]]:
        """End the sessions ``logout`` names; returns how many were found (0 for cookie sessions)."""

    def is_ended(
        self, claims: Mapping[str, Any], mark: Optional[SessionMark] = None
    ) -> Union[bool, Awaitable[bool]]:
        """Whether the session (its ID token's ``claims``, its ``mark``) was ended; by default ``False``."""
        return False

    def revoke(self, mark: SessionMark) -> Optional[Awaitable[None]]:  # noqa: B027
        """Record that the session with ``mark`` signed out locally; by default nothing.

        Stores that cannot delete a session (a signed cookie) remember it, so a copy of the
        cookie taken before the sign-out stops working.
        """


class RedisSessionIndex(SessionIndex):
    """Server-side sessions in Redis (:class:`~logto_rs.redis_storage.RedisStorage`'s layout).

    At each callback, ``<index_prefix><app id>:sid:<sid>`` and ``...:sub:<sub>`` get the session
    id (Redis sets expiring with the session; ids whose session has expired are dropped then).
    A logout writes the tombstone ``<prefix>{<session id>}:ended``, which every later token write
    of the session checks atomically (a refresh in flight cannot re-create it), and deletes the
    sessions' keys (``<prefix>{<session id>}:<key>``): the next request, on any worker or host, is
    signed out. It ends only the sessions that signed in up to its ``iat``, and remembers that
    time under the entry (``...:ended``), so a callback committed just before the logout but
    indexed after it is ended when it is indexed.

    On a Redis Cluster every script and transaction-free pipeline touches one key, or one
    session's keys (one slot): no step needs a multi-slot transaction.

    Args:
        client: The sessions' Redis: a synchronous ``redis.Redis``, ``redis.cluster.RedisCluster``
            or Sentinel client (Flask, Django), or an asyncio one (``redis.asyncio.Redis``, its
            cluster or Sentinel client, :class:`~logto_rs.redis_storage.AsyncRedisClient`:
            FastAPI), whose calls are then awaitable.
        app_id: The application's id (one user's sessions of another app are never touched).
        prefix: The sessions' key prefix (the storage's).
        ttl: How long a session lives (the storage's).
        index_prefix: Prefix of the index's own keys.

    """

    def __init__(
        self,
        client: RedisClient,
        app_id: str,
        *,
        prefix: str = "logto:",
        ttl: timedelta = timedelta(days=14),
        index_prefix: str = "logto-sessions:",
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.ttl = ttl
        self.index = f"{index_prefix}{app_id}:"

    def _sets(self, sub: Optional[str], sid: Optional[str]) -> list[str]:
        names = []
        if sid:
            names.append(f"{self.index}sid:{sid}")
        if sub:
            names.append(f"{self.index}sub:{sub}")
        return names

    def record(self, claims: Mapping[str, Any], session_id: Optional[str]) -> Optional[Awaitable[None]]:
        """Index ``session_id`` under the ID token's ``sid`` and ``sub``, with its sign-in time."""
        return drive(self._record(claims, session_id))

    def _record(self, claims: Mapping[str, Any], session_id: Optional[str]) -> Steps[None]:
        sub, sid = claims.get("sub"), claims.get("sid")
        if session_id is None:
            return
        names = self._sets(sub if isinstance(sub, str) else None, sid if isinstance(sid, str) else None)
        ended: Any = (yield read_each(self.redis, [f"{name}:ended" for name in names])) if names else []
        if any(at is not None and session_time(claims) <= int(at) for at in ended):
            # A logout arrived between the callback's commit and this record: end it now.
            yield from self._end_sessions([session_id], [])
            return
        dead = []
        for name in names:
            dead.append((yield from self._expired(name)))
        pipe = self.redis.pipeline(transaction=False)
        for name, expired in zip(names, dead):
            if expired:
                pipe.srem(name, *expired)
                pipe.hdel(f"{name}:at", *expired)
            pipe.sadd(name, session_id)
            pipe.hset(f"{name}:at", session_id, str(session_time(claims)))
            pipe.expire(name, self.ttl)
            pipe.expire(f"{name}:at", self.ttl)
        yield pipe.execute()

    def _expired(self, name: str) -> Steps[list[str]]:
        """The ids in ``name`` whose session no longer exists."""
        ids = yield from self._members(name)
        if not ids:
            return []
        alive: Any = self.redis.pipeline(transaction=False)
        for session_id in ids:
            alive.exists(*(session_key(self.prefix, session_id, key) for key in SESSION_KEYS))
        counts = yield alive.execute()
        return [session_id for session_id, count in zip(ids, counts) if not count]

    def _members(self, name: str) -> Steps[list[str]]:
        members: Any = yield self.redis.smembers(name)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

    def forget(self, claims: Mapping[str, Any], session_id: Optional[str]) -> Optional[Awaitable[None]]:
        """Remove ``session_id`` from the entries of the ID token's ``sid`` and ``sub``."""
        return drive(self._forget(claims, session_id))

    def _forget(self, claims: Mapping[str, Any], session_id: Optional[str]) -> Steps[None]:
        if session_id is None:
            return
        sub, sid = claims.get("sub"), claims.get("sid")
        pipe = self.redis.pipeline(transaction=False)
        for name in self._sets(sub if isinstance(sub, str) else None, sid if isinstance(sid, str) else None):
            pipe.srem(name, session_id)
            pipe.hdel(f"{name}:at", session_id)
        yield pipe.execute()

    def end(self, logout: LogoutToken) -> Union[int, Awaitable[int]]:
        """Delete the sessions of ``sid``, or with only ``sub``, all the user's sessions.

        Only the sessions that signed in up to the token's ``iat``: a session that signed in
        after the logout is another one (a late or repeated delivery leaves it alone).
        """
        return drive(self._end(logout))

    def _end(self, logout: LogoutToken) -> Steps[int]:
        name = self._sets(None, logout.sid)[0] if logout.sid else self._sets(logout.sub, None)[0]
        # Remembered for a session whose callback is committed but not yet indexed (``record``).
        ttl = str(max(1, int(self.ttl.total_seconds())))
        yield self.redis.eval(LATER_SCRIPT, 1, f"{name}:ended", str(logout.iat), ttl)
        ids = yield from self._members(name)
        times: Any = (yield self.redis.hmget(f"{name}:at", ids)) if ids else []
        ids = [i for i, at in zip(ids, times) if at is None or int(at) <= logout.iat]
        if ids:
            yield from self._end_sessions(ids, self._sets(logout.sub, logout.sid))
        return len(ids)

    def _end_sessions(self, ids: list[str], entries: list[str]) -> Steps[None]:
        """Tombstone the sessions ``ids``, delete their keys and take them out of ``entries``.

        One pipeline without a transaction (the keys span a cluster's slots). Each session's
        tombstone is written before its keys are deleted, on the node of both (one slot): from
        then on, a write in flight is refused.
        """
        pipe = self.redis.pipeline(transaction=False)
        for session_id in ids:
            pipe.set(tombstone(self.prefix, session_id), "1", ex=self.ttl)
            for key in SESSION_KEYS:  # one by one: a cluster pipeline sends no multi-key DEL
                pipe.delete(session_key(self.prefix, session_id, key))
        for entry in entries:
            pipe.srem(entry, *ids)
            pipe.hdel(f"{entry}:at", *ids)
        yield pipe.execute()

    def __repr__(self) -> str:
        return f"RedisSessionIndex(prefix={self.prefix!r}, index={self.index!r})"


class Revocations(SessionIndex):
    """Cookie sessions: a logout records ``sid``/``sub`` with its ``iat``; requests consult it.

    A session that signed in (its :class:`SessionMark`'s time) up to a record's time is ended.
    A local sign-out records the session's own mark id. Subclasses store the records (``_put``,
    ``_get``) in memory, Redis or a framework's cache; ``_put`` keeps the later of two times, so
    a logout delivered late never shortens an earlier one's reach. Either may return an
    awaitable (an asyncio client's call); ``_get``'s values are times as ``int``, ``str`` or
    ``bytes``.
    """

    @abstractmethod
    def _put(self, key: str, at: int, ttl: int) -> Any: ...

    @abstractmethod
    def _get(self, keys: list[str]) -> Any: ...

    def __init__(self, app_id: str, ttl: timedelta) -> None:
        self.namespace = f"{app_id}:"
        self.ttl = ttl

    def end(self, logout: LogoutToken) -> Union[int, Awaitable[int]]:
        """Record the ended ``sid`` (or, with only ``sub``, the user) with the token's ``iat``."""
        key = f"sid:{logout.sid}" if logout.sid else f"sub:{logout.sub}"
        return drive(self._record_time(self.namespace + key, logout.iat, 0))

    def revoke(self, mark: SessionMark) -> Optional[Awaitable[None]]:
        """Record the local sign-out of the session with ``mark`` (its copies end too)."""
        return drive(self._record_time(f"{self.namespace}mark:{mark.id}", mark.at, None))

    def _record_time(self, key: str, at: int, result: T) -> Steps[T]:
        yield self._put(key, at, int(self.ttl.total_seconds()))
        return result

    def _floor(self) -> int:
        """Sessions that signed in up to this time are ended, whatever the records say."""
        return 0

    def is_ended(
        self, claims: Mapping[str, Any], mark: Optional[SessionMark] = None
    ) -> Union[bool, Awaitable[bool]]:
        """Whether a record names the session's ``sid``, ``sub`` or mark at or after its sign-in."""
        return drive(self._is_ended(claims, mark))

    def _is_ended(self, claims: Mapping[str, Any], mark: Optional[SessionMark]) -> Steps[bool]:
        keys = [f"{self.namespace}mark:{mark.id}"] if mark is not None else []
        for name in ("sid", "sub"):
            value = claims.get(name)
            if isinstance(value, str):
                keys.append(f"{self.namespace}{name}:{value}")
        began = mark.at if mark is not None else session_time(claims)
        if began <= self._floor():
            return True
        if not keys:
            return False
        found: Any = yield self._get(keys)
        return any(at is not None and began <= int(at) for at in found)


class MemoryRevocations(Revocations):
    """Revocations of cookie sessions in this process's memory (bounded by time, failing closed).

    Only right for a single process: another worker never learns of the logout. Use
    :class:`RedisRevocations` when several processes or hosts serve the app. The first logout a
    process records is logged as a warning saying so (logger ``logto_rs.backchannel``), since a
    pre-forking server would otherwise sign the user out of one worker only, silently.

    A record lives ``ttl`` (at least the session cookie's lifetime, so no copy of an ended
    cookie outlives it) and is never evicted before. When ``capacity`` unexpired records would
    be passed, the store fails closed: every session that signed in up to the newest record's
    time is ended (all users sign in again), the records it covers are dropped, and an error is
    logged.
    """

    def __init__(
        self, app_id: str, *, ttl: timedelta = timedelta(days=14), capacity: int = MEMORY_CAPACITY
    ) -> None:
        super().__init__(app_id, ttl)
        self.capacity = capacity
        self._records: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._warned_pid = 0
        self._ended_up_to = 0

    def _put(self, key: str, at: int, ttl: int) -> None:
        now = time.monotonic()
        if self._warned_pid != os.getpid():
            self._warned_pid = os.getpid()
            logger.warning(
                "a back-channel logout was recorded in this process only (MemoryRevocations): other "
                "worker processes still accept the session's cookie; pass RedisRevocations when "
                "several processes or hosts serve the app"
            )
        with self._lock:
            self._records = {k: v for k, v in self._records.items() if v[1] > now}
            previous = self._records.get(key)
            if previous is not None and previous[0] >= at:
                return
            if previous is None and len(self._records) >= self.capacity:
                newest = max([at, *(record[0] for record in self._records.values())])
                self._ended_up_to = max(self._ended_up_to, newest)
                self._records.clear()
                logger.error(
                    "MemoryRevocations is full (%d unexpired records): every session that signed "
                    "in up to %d is now signed out in this process; use RedisRevocations",
                    self.capacity,
                    newest,
                )
                return
            self._records[key] = (at, now + ttl)

    def _floor(self) -> int:
        return self._ended_up_to

    def _get(self, keys: list[str]) -> list[Optional[int]]:
        now = time.monotonic()
        with self._lock:
            found = [self._records.get(key) for key in keys]
        return [record[0] if record and record[1] > now else None for record in found]

    def __repr__(self) -> str:
        return f"MemoryRevocations(records={len(self._records)})"


class RedisRevocations(Revocations):
    """Revocations of cookie sessions in Redis: every worker and host consults them.

    Args:
        client: A synchronous ``redis.Redis`` (Flask, Django), or an asyncio one
            (``redis.asyncio.Redis``, :class:`~logto_rs.redis_storage.AsyncRedisClient`: FastAPI),
            whose calls are then awaitable.
        app_id: The application's id.
        ttl: How long a record is kept (at least the cookie sessions' lifetime).
        prefix: Prefix of the keys.

    """

    def __init__(
        self,
        client: RedisClient,
        app_id: str,
        *,
        ttl: timedelta = timedelta(days=14),
        prefix: str = "logto-revoked:",
    ) -> None:
        super().__init__(app_id, ttl)
        self.redis = client
        self.prefix = prefix

    def _put(self, key: str, at: int, ttl: int) -> Any:
        return self.redis.eval(LATER_SCRIPT, 1, self.prefix + key, str(at), str(max(1, ttl)))

    def _get(self, keys: list[str]) -> Any:
        return read_each(self.redis, [self.prefix + key for key in keys])

    def __repr__(self) -> str:
        return f"RedisRevocations(prefix={self.prefix!r})"


LATER_SCRIPT = """
local current = redis.call('get', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
"""Set a revocation record to a time unless it already holds a later one."""


@dataclass(frozen=True)
class BackchannelResponse:
    """What the endpoint answers: a status, a JSON body and :data:`RESPONSE_HEADERS`.

    Attributes:
        status: 200, 400 (a missing or bad token), 413 (a body over :data:`MAX_BODY`) or 503
            (the keys, the session store or the replay store out of reach).
        body: ``{}``, or ``{"error": ..., "error_description": ...}``.

    """

    status: int
    body: dict[str, str]

    @property
    def headers(self) -> dict[str, str]:
        """``Cache-Control: no-store`` and the JSON content type."""
        return dict(RESPONSE_HEADERS)

    def json(self) -> str:
        """The body as JSON text."""
        return json.dumps(self.body)


class BackchannelLogout:
    """The back-channel logout endpoint's logic, shared by the framework integrations.

    Each path has a blocking method (Flask, Django) and an ``_async`` twin (FastAPI) over the
    same rules: :meth:`respond` / :meth:`respond_async`, :meth:`signed_in` /
    :meth:`signed_in_async`, :meth:`signed_out` / :meth:`signed_out_async`, :meth:`is_ended` /
    :meth:`is_ended_async`.

    Args:
        client: The application's client (its configuration, discovery and key set).
        sessions: Where the application's sessions are found and ended.
        replay_store: Where accepted ``jti`` are remembered; ``None``: this process's memory
            (a replay reaching another worker is then not refused: pass a
            :class:`RedisReplayStore` when several processes serve the app).

    """

    def __init__(
        self,
        client: LogtoClient,
        sessions: SessionIndex,
        *,
        replay_store: Optional[ReplayStore] = None,
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.replay_store = replay_store

    def __repr__(self) -> str:
        return f"BackchannelLogout(sessions={self.sessions!r}, replay_store={self.replay_store!r})"

    @staticmethod
    def _token(payload: str) -> LogoutToken:
        data = json.loads(payload)
        return LogoutToken(
            sub=data["sub"], sid=data["sid"], iat=int(data["iat"]), exp=int(data["exp"]), jti=data["jti"]
        )

    def verify(self, logout_token: str) -> LogoutToken:
        """Verify ``logout_token`` (blocking), every check but the replay; nothing is ended yet.

        Raises:
            LogtoTokenValidationError: a check failed (``check`` names it).
            LogtoNetworkError: the provider's keys could not be fetched.
            LogtoResponseError: the provider answered garbage.

        """
        return self._token(_driver.run_blocking(self.client._core.verify_logout_token(logout_token)))

    def claim(self, logout: LogoutToken) -> None:
        """Claim the verified token's ``jti`` in the replay store (blocking), once its sessions ended.

        Raises:
            LogtoTokenValidationError: the token was claimed before (``check`` ``jti``).
            LogtoStorageError: the replay store failed.

        """
        _driver.run_blocking(self._claim_operation(logout))

    def _claim_operation(self, logout: LogoutToken) -> Operation:
        return self.client._core.claim_logout_token(logout.jti, logout.exp, self.replay_store)

    def signed_in(
        self, session: MutableMapping[str, Any], id_token: Optional[str], session_id: Optional[str]
    ) -> None:
        """After a successful callback: mark the framework ``session`` and index the sign-in.

        ``session`` is the framework's own session (Flask's ``session``, Starlette's
        ``request.session``, Django's ``request.session``); ``session_id`` the server-side
        session's id, if any. The mark's time is the new ID token's sign-in time.
        """
        drive_blocking(self._signed_in(session, id_token, session_id))

    async def signed_in_async(
        self, session: MutableMapping[str, Any], id_token: Optional[str], session_id: Optional[str]
    ) -> None:
        """:meth:`signed_in` on an event loop, awaiting an asyncio store."""
        await drive_async(self._signed_in(session, id_token, session_id))

    def _signed_in(
        self, session: MutableMapping[str, Any], id_token: Optional[str], session_id: Optional[str]
    ) -> Steps[None]:
        if not id_token:
            return
        claims = _id_token_claims(id_token)
        session[MARK_KEY] = SessionMark(session_time(claims), secrets.token_urlsafe(16)).dump()
        yield self.sessions.record(claims, session_id)

    def signed_out(
        self, session: MutableMapping[str, Any], id_token: Optional[str], session_id: Optional[str]
    ) -> None:
        """At a local sign-out: drop the session from the index and revoke its mark (its copies)."""
        drive_blocking(self._signed_out(session, id_token, session_id))

    async def signed_out_async(
        self, session: MutableMapping[str, Any], id_token: Optional[str], session_id: Optional[str]
    ) -> None:
        """:meth:`signed_out` on an event loop, awaiting an asyncio store."""
        await drive_async(self._signed_out(session, id_token, session_id))

    def _signed_out(
        self, session: MutableMapping[str, Any], id_token: Optional[str], session_id: Optional[str]
    ) -> Steps[None]:
        mark = SessionMark.load(session.pop(MARK_KEY, None))
        if mark is not None:
            yield self.sessions.revoke(mark)
        if id_token:
            yield self.sessions.forget(_id_token_claims(id_token), session_id)

    def is_ended(self, session: Mapping[str, Any], id_token: Optional[str]) -> bool:
        """Whether the session holding ``id_token`` was ended by a logout or a local sign-out.

        Raises:
            LogtoStorageError: the store of the records failed (an outage: answer 503).
            LogtoConfigError: the store is an asyncio one (use :meth:`is_ended_async`).

        """
        return drive_blocking(self._is_ended(session, id_token))

    async def is_ended_async(self, session: Mapping[str, Any], id_token: Optional[str]) -> bool:
        """:meth:`is_ended` on an event loop: an asyncio store is awaited, never run in a thread.

        A stalled Redis then holds up only the requests that consult it, until its client's
        socket timeout fails them (``LogtoStorageError``: answer 503).
        """
        return await drive_async(self._is_ended(session, id_token))

    def _is_ended(self, session: Mapping[str, Any], id_token: Optional[str]) -> Steps[bool]:
        if not id_token:
            return False
        try:
            claims = _id_token_claims(id_token)
        except LogtoException:
            return False
        try:
            return bool((yield self.sessions.is_ended(claims, SessionMark.load(session.get(MARK_KEY)))))
        except LogtoConfigError:
            raise  # a misconfiguration, not an outage
        except Exception as error:
            raise _store_error("is_ended") from error

    def respond_to_body(self, body: Optional[bytes]) -> BackchannelResponse:
        """Handle the POSTed body (``application/x-www-form-urlencoded``; blocking).

        ``body`` is what :func:`read_limited` read: ``None`` (longer than :data:`MAX_BODY`) is
        answered 413.
        """
        return _too_large() if body is None else self.respond(parse_form(body))

    async def respond_to_body_async(self, body: Optional[bytes]) -> BackchannelResponse:
        """:meth:`respond_to_body` on an event loop, awaiting the provider and an asyncio store."""
        return _too_large() if body is None else await self.respond_async(parse_form(body))

    def respond(self, form: Mapping[str, Any]) -> BackchannelResponse:
        """Handle the POSTed form (blocking): verify the token, end the sessions, then claim the token.

        200 ``{}`` when the sessions are ended; 400 ``{"error": "invalid_request", ...}`` for a
        missing or bad token, or a replay (nothing is changed); 503 when the provider's keys, the
        session store or the replay store are out of reach. The ``jti`` is claimed only once the
        sessions have ended: a logout answered 503 is accepted when the provider resends it, and
        a replay ends nothing a first delivery had not already ended.

        Raises:
            LogtoConfigError: the stores are asyncio ones (use :meth:`respond_async`).

        """
        return drive_blocking(self._respond(form, _driver.run_blocking))

    async def respond_async(self, form: Mapping[str, Any]) -> BackchannelResponse:
        """:meth:`respond` on an event loop: the same checks and order, every wait awaited."""
        return await drive_async(self._respond(form, _driver.run))

    def _respond(
        self, form: Mapping[str, Any], run: Callable[[Operation], Any]
    ) -> Steps[BackchannelResponse]:
        """The endpoint's rules; ``run`` drives a core operation (blocking, or a coroutine)."""
        token = form.get("logout_token")
        if not isinstance(token, str) or not token:
            return _bad_request("the request has no logout_token")
        try:
            logout = self._token((yield run(self.client._core.verify_logout_token(token))))
        except LogtoTokenValidationError as error:
            return _bad_request(str(error))
        except (LogtoNetworkError, LogtoResponseError):
            return _unavailable()  # Logto's keys out of reach: Logto may retry later
        try:
            yield self.sessions.end(logout)
        except LogtoConfigError:
            raise  # a misconfiguration, not an outage
        except Exception:
            logger.exception("a back-channel logout could not end its sessions (the session store failed)")
            return _unavailable()
        try:
            yield run(self._claim_operation(logout))
        except LogtoTokenValidationError as error:
            return _bad_request(str(error))
        except LogtoStorageError:
            return _unavailable()
        return BackchannelResponse(200, {})


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of a form-encoded body (the first value of each)."""
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def read_limited(read: Callable[[int], bytes], content_length: Optional[Union[int, str]]) -> Optional[bytes]:
    """Read a request body through ``read(size)``, at most :data:`MAX_BODY` + 1 bytes.

    ``None`` when the body is longer than :data:`MAX_BODY`: a declared ``Content-Length`` over
    it reads nothing, and a body that turns out longer is not read past the limit.
    """
    if declared_too_large(content_length):
        return None
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY:
        chunk = read(MAX_BODY + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks) if size <= MAX_BODY else None


async def read_limited_async(
    chunks: AsyncIterator[bytes], content_length: Optional[Union[int, str]]
) -> Optional[bytes]:
    """:func:`read_limited` over an asynchronous stream of ``chunks`` (Starlette's ``request.stream()``)."""
    if declared_too_large(content_length):
        return None
    body = b""
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return body


def declared_too_large(content_length: Optional[Union[int, str]]) -> bool:
    """Whether a ``Content-Length`` announces more than :data:`MAX_BODY` bytes."""
    try:
        return content_length is not None and int(content_length) > MAX_BODY
    except ValueError:
        return False


@functools.lru_cache(maxsize=1024)
def _id_token_claims(id_token: str) -> Mapping[str, Any]:
    """A stored ID token's claims, decoded once per token (read-only: the mapping is shared).

    Cookie sessions consult them on every request.
    """
    return MappingProxyType(json.loads(CoreClient.decode_id_token_claims(id_token)))


def _bad_request(description: str) -> BackchannelResponse:
    return BackchannelResponse(400, {"error": "invalid_request", "error_description": description})


def _unavailable() -> BackchannelResponse:
    return BackchannelResponse(503, {"error": "temporarily_unavailable"})


def _too_large() -> BackchannelResponse:
    return BackchannelResponse(
        413, {"error": "invalid_request", "error_description": "the request body is too large"}
    )


def _store_error(op: str) -> LogtoStorageError:
    return LogtoStorageError(f"the back-channel logout store failed ({op})", "storage.error")
