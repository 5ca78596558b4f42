"""Runs a core ``Operation`` to completion, awaited or blocking.

The Rust future is polled here, in the caller's thread, so storage methods run in the caller's
thread and context. A storage coroutine is awaited by the caller's own task (async) or run on
this thread's private event loop (blocking, when no loop is running in the thread).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import Any

from ._core import Operation
from .errors import LogtoStorageError

__all__ = ["run", "run_blocking"]

_DONE, _AWAIT, _WAIT = 0, 1, 2


async def run(operation: Operation) -> Any:
    """Drive ``operation`` from a coroutine."""
    while True:
        kind, value = operation.step()
        if kind == _DONE:
            return value
        if kind == _AWAIT:
            try:
                result = await value
            except Exception as exc:  # delivered to the core, which reports LogtoStorageError
                operation.throw(exc)
            else:
                operation.resume(result)
        else:
            await operation.wait()


_thread_state = threading.local()


def _await_blocking(awaitable: Awaitable[Any]) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if hasattr(awaitable, "close"):
            awaitable.close()
        raise LogtoStorageError(
            "the storage is asynchronous and an event loop is running in this thread: "
            "use the awaitable client methods here, or call the blocking ones from another thread",
            "storage.async_in_blocking_call",
        )
    loop = getattr(_thread_state, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread_state.loop = loop

    async def wrapper() -> Any:
        return await awaitable

    return loop.run_until_complete(wrapper())


def run_blocking(operation: Operation) -> Any:
    """Drive ``operation`` in this thread, releasing the GIL while it waits for the network."""
    while True:
        kind, value = operation.step()
        if kind == _DONE:
            return value
        if kind == _AWAIT:
            try:
                result = _await_blocking(value)
            except LogtoStorageError:
                raise
            except Exception as exc:
                operation.throw(exc)
            else:
                operation.resume(result)
        else:
            operation.wait_blocking()
