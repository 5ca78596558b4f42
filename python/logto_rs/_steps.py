"""One piece of store logic for synchronous and asyncio clients alike.

Store logic is written once, as a generator that yields each I/O call's result as the client
returns it: a value from a synchronous client (``redis.Redis``, memory), an awaitable from an
asyncio one (``redis.asyncio.Redis``). The generator receives back the call's value and returns
the logic's result::

    def _count(self, key):
        members = yield self.redis.smembers(key)
        return len(members)

    def count(self, key):
        return drive(self._count(key))  # an int, or an awaitable of it with an asyncio client

:func:`drive` runs it synchronously until a call hands back an awaitable, then returns a
coroutine that awaits the rest; :func:`drive_blocking` (synchronous integrations) refuses an
awaitable with :class:`~logto_rs.errors.LogtoConfigError`; :func:`drive_async` awaits whatever
comes. An awaited call's exception is raised inside the generator, where the logic handles it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Generator
from typing import Any, Optional, TypeVar, Union

from .errors import LogtoConfigError

__all__ = ["Steps", "drive", "drive_async", "drive_blocking"]

T = TypeVar("T")

Steps = Generator[Any, Any, T]
"""Store logic: yields each call's result (a value or an awaitable), returns its own result."""


def drive(steps: Steps[T]) -> Union[T, Awaitable[T]]:
    """Run ``steps``: its result when every call was synchronous, else an awaitable of it."""
    value: Any = None
    while True:
        try:
            effect = steps.send(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        if inspect.isawaitable(effect):
            return _Resumption(steps, effect)
        value = effect


def drive_blocking(steps: Steps[T]) -> T:
    """Run ``steps`` in this thread; an asyncio store's awaitable raises ``LogtoConfigError``."""
    value: Any = None
    while True:
        try:
            effect = steps.send(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        if inspect.isawaitable(effect):
            _close(effect)
            steps.close()
            raise LogtoConfigError(
                "an asyncio store (a redis.asyncio client) was called from synchronous code: "
                "use a synchronous redis.Redis in Flask and Django, an asyncio one in FastAPI",
                "config.invalid",
            )
        value = effect


async def drive_async(steps: Steps[T]) -> T:
    """Run ``steps`` on the event loop, awaiting every awaitable call."""
    return await _resume(steps, None)


class _Resumption(Awaitable[T]):
    """The rest of ``steps``, from the awaitable ``pending`` on; closing it closes both."""

    __slots__ = ("pending", "steps")

    def __init__(self, steps: Steps[T], pending: Awaitable[Any]) -> None:
        self.steps = steps
        self.pending = pending

    def __await__(self) -> Generator[Any, None, T]:
        return _resume(self.steps, self.pending).__await__()

    def close(self) -> None:
        """Drop the steps unrun (a blocking caller refused them)."""
        _close(self.pending)
        self.steps.close()


def _close(awaitable: Any) -> None:
    """Close a coroutine (or a :class:`_Resumption`) that will never be awaited."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


async def _resume(steps: Steps[T], pending: Any) -> T:
    value: Any = pending
    while True:
        error: Optional[BaseException] = None
        if inspect.isawaitable(value):
            try:
                value = await value
            except Exception as failure:  # handled (or not) by the logic itself
                error = failure
        try:
            effect = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value = effect
