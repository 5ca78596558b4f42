"""Where a user's session lives: the :class:`Storage` interface and :class:`MemoryStorage`.

A storage holds one user's session under four keys (:data:`PersistKey`). Its methods may be
plain functions or coroutines (``async def``, e.g. over ``redis.asyncio``). logto-rs calls them
in the caller's thread and context, so a storage may read request-bound state such as Flask's
``session`` or a ``ContextVar``.

Two optional capabilities make a storage safe to share between processes and hosts
(:class:`LockingStorage`):

- a **session lock**, ``lock(name, ttl)`` / ``unlock(name, token)``. logto-rs takes the
  ``"refresh"`` lock around every refresh of the session and reads the session again once it
  holds it, so several workers that serve one session refresh it once, and a refresh token is
  never presented twice. The lock expires after ``ttl`` seconds, so a crashed holder cannot
  block a session; a waiter gives up after a bounded wait (``storage.error``, op ``lock``).
- a **rotating session id**, ``rotate()``: logto-rs calls it when a callback succeeds, so a
  session id planted in a victim's browser is worthless afterwards. Starting a sign-in keeps
  the id: a signed-in session stays where a back-channel logout finds it.

Without a lock, refreshes are coordinated inside one process only (every client of the process
shares that coordination).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Awaitable, Literal, Optional, Union

__all__ = ["SESSION_KEYS", "PersistKey", "Storage", "LockingStorage", "MemoryStorage"]

PersistKey = Literal["idToken", "refreshToken", "accessTokenMap", "signInSession"]
"""The keys logto-rs reads and writes."""

SESSION_KEYS: tuple[PersistKey, ...] = ("idToken", "refreshToken", "accessTokenMap", "signInSession")
"""Every key of one session: what ending or moving a session touches."""


class Storage(ABC):
    """A session store with string values. Subclass it, or pass any object with these methods.

    Each method may return its value directly or return an awaitable (be ``async def``).
    """

    @abstractmethod
    def get(self, key: str) -> Union[Optional[str], Awaitable[Optional[str]]]:
        """Return the value stored under ``key``, or ``None``."""

    @abstractmethod
    def set(self, key: str, value: Optional[str]) -> Union[None, Awaitable[None]]:
        """Store ``value`` under ``key`` (``None`` deletes the key)."""

    @abstractmethod
    def delete(self, key: str) -> Union[None, Awaitable[None]]:
        """Remove ``key``; no error if it is absent."""


class LockingStorage(Storage):
    """A :class:`Storage` whose session can be locked across processes and its id rotated.

    Implement it for a server-side store shared by several workers or hosts (Redis, a
    database). Every method may be ``async def``.
    """

    @abstractmethod
    def lock(self, name: str, ttl: float) -> Union[Optional[str], Awaitable[Optional[str]]]:
        """Take the session's lock ``name`` for at most ``ttl`` seconds, if it is free.

        Never wait: return an owner token when the lock was taken, ``None`` when someone else
        holds it (logto-rs retries with a backoff).
        """

    @abstractmethod
    def unlock(self, name: str, token: str) -> Union[None, Awaitable[None]]:
        """Release the lock ``name`` if ``token`` still owns it (an expired lock may have a new owner)."""

    @abstractmethod
    def rotate(self) -> Union[None, Awaitable[None]]:
        """Move the session to a new id, keeping its values; the old id must stop working."""


class MemoryStorage(Storage):
    """A process-local session. Each instance is independent: two clients never share one."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def get(self, key: str) -> Optional[str]:
        """Return the value stored under ``key``, or ``None``."""
        return self._values.get(key)

    def set(self, key: str, value: Optional[str]) -> None:
        """Store ``value`` under ``key`` (``None`` deletes the key)."""
        if value is None:
            self._values.pop(key, None)
        else:
            self._values[key] = value

    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is absent."""
        self._values.pop(key, None)

    def __repr__(self) -> str:
        return f"MemoryStorage(keys={sorted(self._values)!r})"
