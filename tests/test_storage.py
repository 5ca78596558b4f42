"""Storage runs where the caller is: in the caller's thread and context, sync or async, one
session per client, and never partly written."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Optional

import pytest

from conftest import REDIRECT_URI, ClientFactory, run, sign_in, snapshot
from logto_rs import LogtoClient, LogtoConfig, LogtoStorageError, MemoryStorage, Storage
from provider_harness import Provider, complete_sign_in

# Like Flask's `session`: only reachable inside the request's context.
current_session: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("current_session")


class ContextBoundStorage(Storage):
    """Reads the session from a ContextVar the caller set; raises without it. Records the
    thread of every call."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def _session(self) -> dict[str, str]:
        self.threads.add(threading.get_ident())
        return current_session.get()  # LookupError outside the caller's context

    def get(self, key: str) -> Optional[str]:
        return self._session().get(key)

    def set(self, key: str, value: Optional[str]) -> None:
        if value is None:
            self._session().pop(key, None)
        else:
            self._session()[key] = value

    def delete(self, key: str) -> None:
        self._session().pop(key, None)


class AsyncStorage(Storage):
    """A storage whose methods are coroutines (like one over redis.asyncio)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.awaited = 0

    async def get(self, key: str) -> Optional[str]:
        await asyncio.sleep(0)
        self.awaited += 1
        return self.values.get(key)

    async def set(self, key: str, value: Optional[str]) -> None:
        await asyncio.sleep(0)
        self.awaited += 1
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value

    async def delete(self, key: str) -> None:
        await asyncio.sleep(0)
        self.awaited += 1
        self.values.pop(key, None)


def test_context_bound_storage_from_asyncio_tasks(make_client: ClientFactory) -> None:
    storage = ContextBoundStorage()
    client = make_client(storage)

    async def request(session: dict[str, str]) -> str:
        current_session.set(session)  # set in this task's context only
        url = await client.signIn(REDIRECT_URI)
        callback = await asyncio.to_thread(complete_sign_in, url, REDIRECT_URI)
        await client.handleSignInCallback(callback)
        assert client.isAuthenticated()
        return client.getIdTokenClaims().sub

    async def main() -> tuple[list[str], int]:
        sessions: list[dict[str, str]] = [{}, {}]
        subs = await asyncio.gather(*(asyncio.create_task(request(s)) for s in sessions))
        assert all(set(s) == {"idToken", "refreshToken", "accessTokenMap"} for s in sessions)
        return list(subs), threading.get_ident()

    subs, loop_thread = run(main())
    assert subs == ["user-alice", "user-alice"]
    assert storage.threads == {loop_thread}


def test_context_bound_storage_from_the_blocking_api_in_threads(make_client: ClientFactory) -> None:
    storage = ContextBoundStorage()
    client = make_client(storage).blocking
    results: dict[int, str] = {}

    def request() -> None:
        current_session.set({})
        url = client.signIn(REDIRECT_URI)
        client.handleSignInCallback(complete_sign_in(url, REDIRECT_URI))
        results[threading.get_ident()] = client.getIdTokenClaims().sub
        assert "id_token_hint" in client.signOut()
        assert not client.isAuthenticated()

    threads = [threading.Thread(target=request) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == ["user-alice"] * 3
    assert storage.threads == set(results)


def test_storage_outside_its_context_raises_a_typed_error_with_the_cause(make_client: ClientFactory) -> None:
    client = make_client(ContextBoundStorage())
    with pytest.raises(LogtoStorageError) as caught:
        client.isAuthenticated()
    assert isinstance(caught.value.__cause__, LookupError)
    assert caught.value.code == "storage.error"
    with pytest.raises(LogtoStorageError):
        run(client.signIn(REDIRECT_URI))


def test_async_storage_through_the_whole_flow(make_client: ClientFactory) -> None:
    storage = AsyncStorage()
    client = make_client(storage)

    async def flow() -> None:
        await sign_in(client)
        assert set(storage.values) == {"idToken", "refreshToken", "accessTokenMap"}
        # The seed's synchronous methods cannot await inside a running loop: a clear error.
        with pytest.raises(LogtoStorageError) as caught:
            client.isAuthenticated()
        assert caught.value.code == "storage.async_in_blocking_call"
        # From a thread without a running loop they work.
        assert await asyncio.to_thread(client.isAuthenticated)
        claims = await asyncio.to_thread(client.getIdTokenClaims)
        assert claims.sub == "user-alice"
        await client.signOut()
        assert storage.values == {}

    run(flow())
    assert storage.awaited > 10


def test_async_storage_with_the_blocking_client_outside_a_loop(make_client: ClientFactory) -> None:
    storage = AsyncStorage()
    client = make_client(storage).blocking
    url = client.signIn(REDIRECT_URI)
    client.handleSignInCallback(complete_sign_in(url, REDIRECT_URI))
    assert client.isAuthenticated()
    assert client.getIdTokenClaims().sub == "user-alice"


def test_memory_storage_is_per_client(provider: Provider) -> None:
    config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
    first, second = LogtoClient(config), LogtoClient(config)
    run(sign_in(first))
    assert first.isAuthenticated()
    assert not second.isAuthenticated()


class FailingStorage(MemoryStorage):
    """A MemoryStorage whose n-th write raises."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_on_write: Optional[int] = None
        self.writes = 0

    def _count(self) -> None:
        self.writes += 1
        if self.fail_on_write is not None and self.writes == self.fail_on_write:
            raise OSError("disk full")

    def set(self, key: str, value: Optional[str]) -> None:
        self._count()
        super().set(key, value)

    def delete(self, key: str) -> None:
        self._count()
        super().delete(key)


@pytest.mark.parametrize("failing_write", [1, 2, 3, 4])
def test_a_failing_write_during_the_callback_leaves_no_partial_session(
    make_client: ClientFactory, failing_write: int
) -> None:
    storage = FailingStorage()
    client = make_client(storage)
    callback = complete_sign_in(run(client.signIn(REDIRECT_URI)), REDIRECT_URI)
    before = snapshot(storage)
    storage.writes, storage.fail_on_write = 0, failing_write
    with pytest.raises(LogtoStorageError) as caught:
        run(client.handleSignInCallback(callback))
    assert isinstance(caught.value.__cause__, OSError)
    assert snapshot(storage) == before


def test_storage_returning_the_wrong_type_is_a_typed_error(make_client: ClientFactory) -> None:
    class Broken(MemoryStorage):
        def get(self, key: str) -> Optional[str]:
            return 42  # type: ignore[return-value]

    client = make_client(Broken())
    for getter in (client.getIdToken, client.getIdTokenClaims, client.getRefreshToken):
        with pytest.raises(LogtoStorageError) as caught:
            getter()
        assert isinstance(caught.value.__cause__, TypeError)
    with pytest.raises(LogtoStorageError) as caught:
        run(client.getIdTokenAsync())
    assert isinstance(caught.value.__cause__, TypeError)


def test_per_request_views_share_the_client_and_bind_their_own_session(
    provider: Provider, make_client: ClientFactory
) -> None:
    client = make_client(MemoryStorage(), resources=["https://api.example.com"])
    alice, bob = MemoryStorage(), MemoryStorage()
    for storage, user in ((alice, "alice"), (bob, "bob")):
        view = client.withStorage(storage)
        url = run(view.signIn(REDIRECT_URI))
        run(view.handleSignInCallback(complete_sign_in(url, REDIRECT_URI, username=user)))
    assert client.withStorage(alice).getIdTokenClaims().username == "alice"
    assert client.withStorage(bob).blocking.getIdTokenClaims().username == "bob"
    assert client.blocking.withStorage(bob).getIdTokenClaims().username == "bob"
    assert not client.isAuthenticated()  # the client's own session is untouched
    # One discovery for the client and every view of it.
    assert len(provider.requests(path="/oidc/.well-known/openid-configuration")) == 1


def test_awaitable_getters_work_with_an_async_storage_inside_a_running_loop(
    make_client: ClientFactory,
) -> None:
    storage = AsyncStorage()
    client = make_client(storage)

    async def journey() -> None:
        assert not await client.isAuthenticatedAsync()
        with pytest.raises(LogtoStorageError):  # the synchronous getters cannot await it here
            client.getIdToken()
        url = await client.signIn(REDIRECT_URI)
        await client.handleSignInCallback(complete_sign_in(url, REDIRECT_URI))
        assert await client.isAuthenticatedAsync()
        assert (await client.getIdTokenClaimsAsync()).sub == "user-alice"
        assert await client.getIdTokenAsync() == await storage.get("idToken")
        assert await client.getRefreshTokenAsync()

    run(journey())


def test_stored_claims_that_do_not_fit_their_model_are_a_typed_rejection(make_client: ClientFactory) -> None:
    import base64
    import json

    from logto_rs import LogtoTokenValidationError

    def jwt(claims: dict[str, object]) -> str:
        def part(obj: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        return f"{part({'alg': 'ES384'})}.{part(claims)}.sig"

    storage = MemoryStorage()
    storage.set("idToken", jwt({"iss": "x", "sub": ["not", "a", "string"], "aud": "a", "exp": 1, "iat": 1}))
    client = make_client(storage)
    for getter in (client.getIdTokenClaims, client.blocking.getIdTokenClaims):
        with pytest.raises(LogtoTokenValidationError) as caught:
            getter()
        assert caught.value.check == "claims" and caught.value.code == "token.claims"
