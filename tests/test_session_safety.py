"""Sessions that survive every fault: an accepted refresh is never lost, a cancelled commit is
all or nothing, and clients sharing a locking storage refresh it once.

The public ``spa-app`` gets a new refresh token at every refresh (Logto's policy for public
clients), so each refresh consumes the token it presents: the provider's log shows whether a
consumed token was ever presented again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Callable, Optional

import pytest

from conftest import REDIRECT_URI, ClientFactory, run, sign_in
from logto_rs import (
    LogtoClient,
    LogtoException,
    LogtoStorageError,
    LogtoTokenValidationError,
    MemoryStorage,
)
from logto_rs.storage import LockingStorage
from provider_harness import Provider, complete_sign_in, token_hash

API = "https://api.example.com"
SHORT = "https://short.example.com"


def presented(provider: Provider) -> list[str]:
    entries = provider.requests(path="/oidc/token", grant_type="refresh_token")
    return [entry["form"]["refresh_token"] for entry in entries]


def assert_no_token_presented_twice(provider: Provider) -> None:
    twice = [token for token, n in Counter(presented(provider)).items() if n > 1]
    assert twice == [], "a consumed refresh token was presented again"


def public_client(make_client: ClientFactory, storage: Any) -> LogtoClient:
    return make_client(storage, appId="spa-app", appSecret=None, scopes=["read:products"], resources=[API])


class SharedLockingStorage(LockingStorage):
    """One session shared by several clients, with a lock: a stand-in for Redis in one process."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.locks: dict[str, str] = {}
        self.lock_calls = 0

    def get(self, key: str) -> Optional[str]:
        return self.values.get(key)

    def set(self, key: str, value: Optional[str]) -> None:
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)

    def lock(self, name: str, ttl: float) -> Optional[str]:
        self.lock_calls += 1
        if name in self.locks:
            return None
        self.locks[name] = token = f"owner-{self.lock_calls}"
        return token

    def unlock(self, name: str, token: str) -> None:
        if self.locks.get(name) == token:
            del self.locks[name]

    def rotate(self) -> None:
        pass


# --- a refresh the provider accepted is stored, whatever fails after it ----------------------


class FailingMapWrite(MemoryStorage):
    """Fails the first write of the access-token map."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = False

    def set(self, key: str, value: Optional[str]) -> None:
        if self.fail and key == "accessTokenMap":
            self.fail = False
            raise OSError("disk full")
        super().set(key, value)


def break_the_id_token(provider: Provider) -> type[LogtoException]:
    provider.mutate_next_id_token(claims={"sub": "user-mallory"})
    return LogtoTokenValidationError


def break_the_key_fetch(provider: Provider) -> type[LogtoException]:
    provider.rotate_keys()  # the next ID token has a key id the client has not seen
    provider.fault("jwks", "status500", times=20)
    return LogtoException


@pytest.mark.parametrize(
    "local_failure", [break_the_id_token, break_the_key_fetch, "storage_write"], ids=lambda f: str(f)
)
def test_an_accepted_refresh_survives_a_local_failure(
    provider: Provider, make_client: ClientFactory, local_failure: Any
) -> None:
    storage = FailingMapWrite()
    first = public_client(make_client, storage)
    run(sign_in(first))
    consumed = storage.get("refreshToken")
    run(first.clearAccessToken())
    if local_failure == "storage_write":
        storage.fail, expected = True, LogtoStorageError
    else:
        expected = local_failure(provider)
    with pytest.raises(expected):
        run(first.getAccessToken(API))
    # The provider rotated the refresh token: the new one is stored, not the consumed one.
    assert storage.get("refreshToken") != consumed
    assert first.isAuthenticated()
    provider.reset()  # the key fetch works again
    # A second client on the same storage (another worker) refreshes with the new token.
    second = public_client(make_client, storage)
    assert run(second.getAccessToken(API))
    assert token_hash(consumed or "") not in presented(provider)
    assert_no_token_presented_twice(provider)


# --- cancellation: all or nothing ------------------------------------------------------------


class CancellingStorage(MemoryStorage):
    """An async storage that cancels the caller's task when its ``cancel_at``-th call starts."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.cancel_at = -1
        self.task: Optional[asyncio.Task[Any]] = None

    async def _io(self) -> None:
        self.calls += 1
        if self.calls == self.cancel_at and self.task is not None:
            self.task.cancel()
        await asyncio.sleep(0.005)

    async def get(self, key: str) -> Optional[str]:  # type: ignore[override]
        await self._io()
        return super().get(key)

    async def set(self, key: str, value: Optional[str]) -> None:  # type: ignore[override]
        await self._io()
        super().set(key, value)

    async def delete(self, key: str) -> None:  # type: ignore[override]
        await self._io()
        super().delete(key)


async def call_cancelled_at(storage: CancellingStorage, k: int, call: Callable[[], Any]) -> bool:
    """Run ``call`` with a cancellation at the storage's k-th call; whether it was cancelled."""
    storage.calls, storage.cancel_at = 0, k
    task = asyncio.ensure_future(call())
    storage.task = task
    try:
        await task
    except asyncio.CancelledError:
        return True
    finally:
        storage.cancel_at = -1
    return False


def count_calls(storage: CancellingStorage, call: Callable[[], Any]) -> int:
    storage.calls = 0
    run(call())
    return storage.calls


def test_a_callback_cancelled_at_any_await_leaves_the_session_before_or_complete(
    provider: Provider, make_client: ClientFactory
) -> None:
    def scenario() -> tuple[CancellingStorage, LogtoClient, str, dict[str, str]]:
        storage = CancellingStorage()
        client = public_client(make_client, storage)
        url = run(client.signIn(REDIRECT_URI))
        return storage, client, complete_sign_in(url, REDIRECT_URI), dict(storage._values)

    storage, client, callback, _ = scenario()
    total = count_calls(storage, lambda: client.handleSignInCallback(callback))
    assert total >= 4
    outcomes = set()
    for k in range(1, total + 1):
        storage, client, callback, before = scenario()
        cancelled = run(call_cancelled_at(storage, k, lambda c=client, u=callback: c.handleSignInCallback(u)))
        assert cancelled, k
        after = dict(storage._values)
        if after == before:
            outcomes.add("before")
        else:
            assert set(after) == {"idToken", "refreshToken", "accessTokenMap"}, (k, sorted(after))
            outcomes.add("complete")
    # Early cancellations abandon the callback; once its commit has begun, it completes.
    assert outcomes == {"before", "complete"}


def test_a_refresh_cancelled_at_any_await_never_loses_the_rotated_token(
    provider: Provider, make_client: ClientFactory
) -> None:
    def scenario() -> tuple[CancellingStorage, LogtoClient]:
        storage = CancellingStorage()
        client = public_client(make_client, storage)
        run(sign_in(client))
        run(client.clearAccessToken())
        return storage, client

    storage, client = scenario()
    total = count_calls(storage, lambda: client.getAccessToken(API))
    assert total >= 4
    outcomes = set()
    for k in range(1, total + 1):
        storage, client = scenario()
        before = dict(storage._values)
        provider.reset()
        assert run(call_cancelled_at(storage, k, lambda c=client: c.getAccessToken(API))), k
        after = dict(storage._values)
        if after == before:
            assert presented(provider) == [], k  # abandoned before any request
            outcomes.add("before")
        else:
            # Complete: the rotated refresh token and the new access token, together.
            assert after["refreshToken"] != before["refreshToken"] and "accessTokenMap" in after, k
            outcomes.add("complete")
        assert run(client.getAccessToken(API)), k
        assert_no_token_presented_twice(provider)
    assert outcomes == {"before", "complete"}


def test_a_refresh_cancelled_while_the_provider_answers_is_stored_then_cancelled(
    provider: Provider, make_client: ClientFactory
) -> None:
    storage = MemoryStorage()
    client = public_client(make_client, storage)
    run(sign_in(client))
    run(client.clearAccessToken())
    consumed = storage.get("refreshToken")
    provider.fault("token", "hang", delay_ms=600)

    async def cancel_mid_request() -> None:
        task = asyncio.ensure_future(client.getAccessToken(API))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_mid_request())
    assert storage.get("refreshToken") not in (None, consumed)
    assert "accessTokenMap" in storage._values
    assert run(client.getAccessToken(API))
    assert_no_token_presented_twice(provider)


# --- several clients, one locking storage ------------------------------------------------------


def test_clients_sharing_a_locking_storage_refresh_once(
    provider: Provider, make_client: ClientFactory
) -> None:
    storage = SharedLockingStorage()
    first = public_client(make_client, storage)
    run(sign_in(first))
    run(first.clearAccessToken())
    clients = [public_client(make_client, storage) for _ in range(4)]
    provider.reset()

    async def burst() -> list[Optional[str]]:
        return await asyncio.gather(*(c.getAccessToken(API) for c in clients for _ in range(4)))

    tokens = run(burst())
    assert len(set(tokens)) == 1 and tokens[0]
    assert len(presented(provider)) == 1
    assert storage.locks == {}  # released
    assert storage.lock_calls >= 1
