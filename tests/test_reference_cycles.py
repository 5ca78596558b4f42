"""Reference cycles through the native objects are collected by the garbage collector.

The native client and every operation in progress show the collector the Python objects they
hold (the storage an operation calls, the awaitable or exception in transit, the strings of the
client's access-token memo), so a cycle through them is collected like any other.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
import weakref
from collections.abc import Generator
from typing import Any, Callable, Optional

from logto_rs import LogtoClient, LogtoConfig, MemoryStorage

CONFIG = LogtoConfig(endpoint="http://127.0.0.1:9", appId="app-id")


class _Never:
    """An awaitable that never completes: a storage stuck waiting for its backend."""

    def __await__(self) -> Generator[None, None, None]:
        while True:
            yield


class StalledStorage:
    """An ``async def`` storage whose reads never complete, holding whatever it is given."""

    def __init__(self) -> None:
        self.held: list[Any] = []

    async def get(self, key: str) -> Optional[str]:
        await _Never()
        return None

    async def set(self, key: str, value: Optional[str]) -> None:
        return None

    async def delete(self, key: str) -> None:
        return None


def collected(build: Callable[[], list[object]]) -> bool:
    """Whether the objects ``build`` returns (the only references left to a cycle it made) are
    gone once the collector has run."""
    refs = [weakref.ref(o) for o in build()]
    gc.collect()
    return [ref() for ref in refs] == [None] * len(refs)


def test_a_cycle_through_a_pending_call_and_its_storage_is_collected() -> None:
    def build() -> list[object]:
        storage = StalledStorage()
        client = LogtoClient(CONFIG, storage=storage)
        call = client.getIdTokenAsync()
        call.send(None)  # the operation now waits for the storage's read
        storage.held.append(call)  # storage -> call -> operation -> storage
        return [storage, client]

    assert collected(build)


class BackendGone(Exception):
    """What a storage's backend raised; it keeps the storage that failed."""

    storage: object


def test_a_cycle_through_an_exception_handed_to_an_operation_is_collected() -> None:
    def build() -> list[object]:
        storage = StalledStorage()
        operation = LogtoClient(CONFIG, storage=storage)._core.get_id_token(storage)
        kind, read = operation.step()
        assert kind == 1  # the storage's read, for the driver to await
        read.close()
        error = BackendGone("the backend is gone")
        error.storage = storage
        operation.throw(error)  # operation -> error -> storage -> operation
        storage.held.append(operation)
        return [storage, error]

    assert collected(build)


class Tagged(str):
    """A ``str`` subclass: its instances can hold references, unlike plain strings."""

    owner: object


def test_a_cycle_through_the_clients_access_token_memo_is_collected() -> None:
    def build() -> list[object]:
        storage = MemoryStorage()
        client = LogtoClient(CONFIG, storage=storage)
        token = {"token": "opaque-token", "scope": "", "expiresAt": int(time.time()) + 3600}
        stored = Tagged(json.dumps({"": token}))
        stored.owner = client  # client -> native client -> memo -> stored map -> client
        storage.set("accessTokenMap", stored)
        assert asyncio.run(client.getAccessToken()) == "opaque-token"  # the memo holds the map
        return [client, stored]

    assert collected(build)
