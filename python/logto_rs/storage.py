"""Where a user's session lives: the :class:`Storage` interface and :class:`MemoryStorage`.

A storage holds one user's session under four keys (:data:`PersistKey`). Its methods may be
plain functions or coroutines (``async def``, e.g. over ``redis.asyncio``). logto-rs calls them
in the caller's thread and context, so a storage may read request-bound state such as Flask's
``session`` or a ``ContextVar``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Awaitable, Literal, Optional, Union

__all__ = ["PersistKey", "Storage", "MemoryStorage"]

PersistKey = Literal["idToken", "refreshToken", "accessTokenMap", "signInSession"]
"""The keys logto-rs reads and writes."""


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
