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
  a logout deletes the sessions' keys, so every worker and host sees them gone.
- :class:`MemoryRevocations` / :class:`RedisRevocations` (sessions kept in a signed cookie,
  which the server cannot delete): a logout records ``sid``/``sub`` with the token's ``iat``,
  and each request checks the cookie's ID token against it: a session whose ID token (its
  ``auth_time``, else ``iat``) dates from up to that time is signed out.

The framework integrations (Flask, FastAPI, Django) serve the endpoint with a few lines over
:meth:`BackchannelLogout.respond`.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Optional, Protocol, Union

from . import _driver
from ._core import CoreClient
from .errors import (
    LogtoException,
    LogtoNetworkError,
    LogtoResponseError,
    LogtoStorageError,
    LogtoTokenValidationError,
)
from .redis_storage import SESSION_KEYS

if TYPE_CHECKING:
    import redis

    from .client import LogtoClient

__all__ = [
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
]

RESPONSE_HEADERS = {"Cache-Control": "no-store", "Content-Type": "application/json"}
"""Headers of every answer of the endpoint."""

MEMORY_CAPACITY = 10_000
"""Most records a :class:`MemoryRevocations` keeps (the oldest go first)."""

logger = logging.getLogger("logto_rs.backchannel")


@dataclass(frozen=True)
class LogoutToken:
    """A verified logout token: whose sessions end.

    Attributes:
        sub: The user, when the token names one.
        sid: The provider's session, when the token names one.
        iat: When the provider issued the token (seconds since the epoch).
        exp: Until when the token is accepted, and its ``jti`` remembered.

    """

    sub: Optional[str]
    sid: Optional[str]
    iat: int
    exp: int


class ReplayStore(Protocol):
    """Remembers the ``jti`` of accepted logout tokens, so each is accepted once."""

    def claim(self, jti: str, ttl: float) -> Union[bool, Awaitable[bool]]:
        """Record ``jti`` for ``ttl`` seconds; ``True`` when it was not recorded yet (atomic)."""


class RedisReplayStore:
    """A :class:`ReplayStore` in Redis (``SET NX EX``).

    A token is accepted once across every process and host sharing the Redis.

    Args:
        client: A synchronous ``redis.Redis``.
        prefix: Prefix of the keys.

    """

    def __init__(self, client: redis.Redis, *, prefix: str = "logto-logout-jti:") -> None:
        self.redis = client
        self.prefix = prefix

    def claim(self, jti: str, ttl: float) -> bool:
        """Record ``jti`` for ``ttl`` seconds; ``True`` when it was not recorded yet."""
        return bool(self.redis.set(self.prefix + jti, "1", nx=True, ex=max(1, math.ceil(ttl))))

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
    """Finds and ends an application's sessions by the provider's ``sid`` and ``sub``."""

    def record(self, claims: Mapping[str, Any], session_id: Optional[str]) -> None:  # noqa: B027
        """Remember a session that just signed in (its ID token's ``claims``); by default nothing."""

    def forget(self, claims: Mapping[str, Any], session_id: Optional[str]) -> None:  # noqa: B027
        """Drop a session that signed out locally from the index; by default nothing."""

    @abstractmethod
    def end(self, logout: LogoutToken) -> int:
        """End the sessions ``logout`` names; returns how many were found (0 for cookie sessions)."""

    def is_ended(self, claims: Mapping[str, Any]) -> bool:
        """Whether the session whose ID token has ``claims`` was ended; by default ``False``."""
        return False


class RedisSessionIndex(SessionIndex):
    """Server-side sessions in Redis (:class:`~logto_rs.redis_storage.RedisStorage`'s layout).

    At each callback, ``<index_prefix><app id>:sid:<sid>`` and ``...:sub:<sub>`` get the session
    id (Redis sets expiring with the session). A logout deletes the sessions' keys
    (``<prefix><session id>:<key>``): the next request, on any worker or host, is signed out.

    Args:
        client: A synchronous ``redis.Redis`` (the sessions' Redis).
        app_id: The application's id (one user's sessions of another app are never touched).
        prefix: The sessions' key prefix (the storage's).
        ttl: How long a session lives (the storage's).
        index_prefix: Prefix of the index's own keys.

    """

    def __init__(
        self,
        client: redis.Redis,
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

    def record(self, claims: Mapping[str, Any], session_id: Optional[str]) -> None:
        """Index ``session_id`` under the ID token's ``sid`` and ``sub``."""
        sub, sid = claims.get("sub"), claims.get("sid")
        if session_id is None:
            return
        pipe = self.redis.pipeline()
        for name in self._sets(sub if isinstance(sub, str) else None, sid if isinstance(sid, str) else None):
            pipe.sadd(name, session_id)
            pipe.expire(name, self.ttl)
        pipe.execute()

    def forget(self, claims: Mapping[str, Any], session_id: Optional[str]) -> None:
        """Remove ``session_id`` from the entries of the ID token's ``sid`` and ``sub``."""
        if session_id is None:
            return
        sub, sid = claims.get("sub"), claims.get("sid")
        pipe = self.redis.pipeline()
        for name in self._sets(sub if isinstance(sub, str) else None, sid if isinstance(sid, str) else None):
            pipe.srem(name, session_id)
        pipe.execute()

    def end(self, logout: LogoutToken) -> int:
        """Delete the sessions of ``sid``, or with only ``sub``, all the user's sessions."""
        name = self._sets(None, logout.sid)[0] if logout.sid else self._sets(logout.sub, None)[0]
        members: Any = self.redis.smembers(name)
        ids = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
        keys = [f"{self.prefix}{session_id}:{key}" for session_id in ids for key in SESSION_KEYS]
        pipe = self.redis.pipeline()
        if keys:
            pipe.delete(*keys)
        pipe.delete(name)
        if logout.sub and ids:
            pipe.srem(f"{self.index}sub:{logout.sub}", *ids)
        pipe.execute()
        return len(ids)

    def __repr__(self) -> str:
        return f"RedisSessionIndex(prefix={self.prefix!r}, index={self.index!r})"


class Revocations(SessionIndex):
    """Cookie sessions: a logout records ``sid``/``sub`` with its ``iat``; requests consult it.

    Subclasses store the records (``_put``, ``_get``) in memory, Redis or a framework's cache.
    """

    @abstractmethod
    def _put(self, key: str, at: int, ttl: int) -> None: ...

    @abstractmethod
    def _get(self, keys: list[str]) -> list[Optional[int]]: ...

    def __init__(self, app_id: str, ttl: timedelta) -> None:
        self.namespace = f"{app_id}:"
        self.ttl = ttl

    def end(self, logout: LogoutToken) -> int:
        """Record the ended ``sid`` (or, with only ``sub``, the user) with the token's ``iat``."""
        key = f"sid:{logout.sid}" if logout.sid else f"sub:{logout.sub}"
        self._put(self.namespace + key, logout.iat, int(self.ttl.total_seconds()))
        return 0

    def is_ended(self, claims: Mapping[str, Any]) -> bool:
        """Whether a record names the session's ``sid`` or ``sub`` at or after its start."""
        keys = []
        for name in ("sid", "sub"):
            value = claims.get(name)
            if isinstance(value, str):
                keys.append(f"{self.namespace}{name}:{value}")
        if not keys:
            return False
        began = session_time(claims)
        return any(at is not None and began <= at for at in self._get(keys))


class MemoryRevocations(Revocations):
    """Revocations of cookie sessions in this process's memory (bounded, expiring).

    Only right for a single process: another worker never learns of the logout. Use
    :class:`RedisRevocations` when several processes or hosts serve the app. The first logout a
    process records is logged as a warning saying so (logger ``logto_rs.backchannel``), since a
    pre-forking server would otherwise sign the user out of one worker only, silently.
    """

    def __init__(
        self, app_id: str, *, ttl: timedelta = timedelta(days=14), capacity: int = MEMORY_CAPACITY
    ) -> None:
        super().__init__(app_id, ttl)
        self.capacity = capacity
        self._records: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._warned_pid = 0

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
            while len(self._records) >= self.capacity:
                self._records.pop(next(iter(self._records)))
            self._records[key] = (at, now + ttl)

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
        client: A synchronous ``redis.Redis``.
        app_id: The application's id.
        ttl: How long a record is kept (at least the cookie sessions' lifetime).
        prefix: Prefix of the keys.

    """

    def __init__(
        self,
        client: redis.Redis,
        app_id: str,
        *,
        ttl: timedelta = timedelta(days=14),
        prefix: str = "logto-revoked:",
    ) -> None:
        super().__init__(app_id, ttl)
        self.redis = client
        self.prefix = prefix

    def _put(self, key: str, at: int, ttl: int) -> None:
        self.redis.set(self.prefix + key, str(at), ex=max(1, ttl))

    def _get(self, keys: list[str]) -> list[Optional[int]]:
        values: Any = self.redis.mget([self.prefix + key for key in keys])
        return [int(value) if value is not None else None for value in values]

    def __repr__(self) -> str:
        return f"RedisRevocations(prefix={self.prefix!r})"


@dataclass(frozen=True)
class BackchannelResponse:
    """What the endpoint answers: a status, a JSON body and :data:`RESPONSE_HEADERS`.

    Attributes:
        status: 200, 400 (a missing or bad token) or 503 (keys or replay store out of reach).
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
        return LogoutToken(sub=data["sub"], sid=data["sid"], iat=int(data["iat"]), exp=int(data["exp"]))

    def verify(self, logout_token: str) -> LogoutToken:
        """Verify ``logout_token`` and claim its ``jti`` (blocking); nothing is ended yet.

        Raises:
            LogtoTokenValidationError: a check failed (``check`` names it; ``jti``: a replay).
            LogtoNetworkError: the provider's keys could not be fetched.
            LogtoResponseError: the provider answered garbage.
            LogtoStorageError: the replay store failed.

        """
        operation = self.client._core.verify_logout_token(logout_token, self.replay_store)
        return self._token(_driver.run_blocking(operation))

    async def verify_async(self, logout_token: str) -> LogoutToken:
        """:meth:`verify` for an event loop (the replay store may be ``async def``)."""
        operation = self.client._core.verify_logout_token(logout_token, self.replay_store)
        return self._token(await _driver.run(operation))

    def record(self, id_token: Optional[str], session_id: Optional[str]) -> None:
        """Index a session that just signed in (called by the integrations after the callback)."""
        if id_token:
            self.sessions.record(_id_token_claims(id_token), session_id)

    def forget(self, id_token: Optional[str], session_id: Optional[str]) -> None:
        """Drop a session that signs out locally from the index (called by the integrations)."""
        if id_token:
            self.sessions.forget(_id_token_claims(id_token), session_id)

    def is_ended(self, id_token: Optional[str]) -> bool:
        """Whether the session holding ``id_token`` was ended by a logout (cookie sessions)."""
        if not id_token:
            return False
        try:
            claims = _id_token_claims(id_token)
        except LogtoException:
            return False
        return self.sessions.is_ended(claims)

    def respond(self, form: Mapping[str, Any]) -> BackchannelResponse:
        """Handle the POSTed form (blocking): verify the token, end the sessions, say how it went.

        200 ``{}`` when the sessions are ended; 400 ``{"error": "invalid_request", ...}`` for a
        missing or bad token (nothing is changed); 503 when the provider's keys or the replay
        store are out of reach.
        """
        token = form.get("logout_token")
        if not isinstance(token, str) or not token:
            return _bad_request("the request has no logout_token")
        try:
            logout = self.verify(token)
        except LogtoTokenValidationError as error:
            return _bad_request(str(error))
        except (LogtoNetworkError, LogtoResponseError, LogtoStorageError):
            # Logto's keys out of reach, or the replay store failing: Logto may retry later.
            return BackchannelResponse(503, {"error": "temporarily_unavailable"})
        self.sessions.end(logout)
        return BackchannelResponse(200, {})


@functools.lru_cache(maxsize=1024)
def _id_token_claims(id_token: str) -> Mapping[str, Any]:
    """A stored ID token's claims, decoded once per token (read-only: the mapping is shared).

    Cookie sessions consult them on every request.
    """
    return MappingProxyType(json.loads(CoreClient.decode_id_token_claims(id_token)))


def _bad_request(description: str) -> BackchannelResponse:
    return BackchannelResponse(400, {"error": "invalid_request", "error_description": description})
