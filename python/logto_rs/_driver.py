"""Runs a core ``Operation`` to completion, awaited or blocking.

The Rust future is polled here, in the caller's thread, so storage methods run in the caller's
thread and context. A storage coroutine is awaited by the caller's own task (async) or run on
this thread's private event loop (blocking, when no loop is running in the thread).

While the operation waits for the network, an awaiting caller's event loop watches the
operation's wake-up descriptor; tokio's threads only write a byte to it and never touch Python.

Cancellation: until the operation passes its point of no return (``must_finish``: a refresh the
provider may accept, a commit under way), a cancelled caller abandons it and nothing has been
written. After that point, the driver runs it to its end, the storage calls shielded from the
cancellation, and raises the cancellation afterwards: the session is left complete, never half
written, and a rotated refresh token is never lost.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Optional

from ._core import Operation
from .errors import LogtoStorageError

if TYPE_CHECKING:
    import asyncio

# asyncio is imported where it is used, not at import: it is a third of the package's import time,
# and blocking code never needs it.

__all__ = ["run", "run_blocking"]

_DONE, _AWAIT, _WAIT = 0, 1, 2


class _Waiter:
    """The event-loop side of an operation's wake-up descriptor."""

    __slots__ = ("operation", "loop", "future", "pending")

    def __init__(self, operation: Operation, loop: asyncio.AbstractEventLoop) -> None:
        self.operation = operation
        self.loop = loop
        self.future: Optional[asyncio.Future[None]] = None
        self.pending = False
        loop.add_reader(operation.fileno(), self._ready)

    def _ready(self) -> None:
        self.operation.drain_wakes()
        future = self.future
        if future is None:
            self.pending = True
        elif not future.done():
            future.set_result(None)

    async def wait(self) -> None:
        if self.pending:
            self.pending = False
            return
        self.future = self.loop.create_future()
        try:
            await self.future
        finally:
            self.future = None

    def close(self) -> None:
        self.loop.remove_reader(self.operation.fileno())


async def _finish(awaitable: Awaitable[Any]) -> tuple[Any, Optional[BaseException]]:
    """Await ``awaitable`` to its end even if the caller is cancelled meanwhile.

    Returns its result and the cancellation that was held back, if any.
    """
    import asyncio

    task = asyncio.ensure_future(awaitable)
    interrupted: Optional[BaseException] = None
    while True:
        try:
            return await asyncio.shield(task), interrupted
        except asyncio.CancelledError as exc:
            if task.done():
                return task.result(), interrupted
            interrupted = interrupted or exc


async def run(operation: Operation) -> Any:
    """Drive ``operation`` from a coroutine."""
    import asyncio

    waiter: Optional[_Waiter] = None
    interrupted: Optional[BaseException] = None
    try:
        while True:
            kind, value = operation.step()
            if kind == _DONE:
                if interrupted is not None:
                    raise interrupted
                return value
            if kind == _AWAIT and operation.must_finish:
                try:
                    result, held_back = await _finish(value)
                except BaseException as exc:  # delivered to the core, which reports LogtoStorageError
                    operation.throw(exc)
                    if not isinstance(exc, Exception):
                        interrupted = interrupted or exc
                else:
                    interrupted = interrupted or held_back
                    operation.resume(result)
                continue
            try:
                if kind == _AWAIT:
                    try:
                        result = await value
                    except Exception as exc:  # delivered to the core, which reports LogtoStorageError
                        operation.throw(exc)
                    else:
                        operation.resume(result)
                else:
                    if waiter is None:
                        waiter = _Waiter(operation, asyncio.get_running_loop())
                    await waiter.wait()
            except BaseException as exc:
                if not operation.must_finish:
                    raise
                # Past the point of no return: finish, then raise the cancellation.
                interrupted = interrupted or exc
    finally:
        if waiter is not None:
            waiter.close()


_thread_state = threading.local()


def _await_blocking(awaitable: Awaitable[Any]) -> Any:
    import asyncio

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
    interrupted: Optional[BaseException] = None
    while True:
        kind, value = operation.step()
        if kind == _DONE:
            if interrupted is not None:
                raise interrupted
            return value
        try:
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
        except BaseException as exc:  # KeyboardInterrupt, SystemExit from a signal handler
            if not operation.must_finish or isinstance(exc, LogtoStorageError):
                raise
            interrupted = interrupted or exc
