"""The generated Management API client: one cached Management API token for every call, Logto's
errors typed with their code, bodies checked before anything is sent, path parameters kept in
their segment, retries of idempotent calls after 429 and 5xx, and the ``Total-Number`` of pages.

The development provider serves the personal-access-token routes; the retries and pages are
checked against a small scripted HTTP server (a real server, answering 429 and 503 on demand),
which also plays the token endpoint so that the client's own path is exercised end to end.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conftest import run
from logto_rs import (
    LogtoApiConflictError,
    LogtoApiNotFoundError,
    LogtoConfigError,
    LogtoM2MClient,
    LogtoM2MConfig,
    LogtoResponseError,
)
from logto_rs.management import (
    BlockingManagementClient,
    ManagementClient,
    Page,
    RetryPolicy,
    iterate_pages,
    iterate_pages_blocking,
)
from logto_rs.management.models import User
from provider_harness import Provider

PATS = "/api/users/user-alice/personal-access-tokens"


@pytest.fixture
def api(provider: Provider) -> ManagementClient:
    config = LogtoM2MConfig(endpoint=provider.endpoint, appId="m2m-app", appSecret="m2m-app-secret")
    return ManagementClient(LogtoM2MClient(config))


def test_typed_answers_with_one_cached_token_and_hidden_secrets(
    provider: Provider, api: ManagementClient
) -> None:
    tokens = run(api.listUserPersonalAccessTokens("user-alice"))
    again = api.blocking.listUserPersonalAccessTokens("user-alice")
    assert isinstance(api.blocking, BlockingManagementClient)
    assert [t.name for t in tokens] == [t.name for t in again] and "ci-token" in [t.name for t in tokens]
    for token in tokens:
        assert token.value.startswith("pat_") and token.value not in repr(token)
    assert len(provider.requests(path="/oidc/token")) == 1
    assert [r["authorization"]["scheme"] for r in provider.requests(path=PATS)] == ["bearer", "bearer"]


def test_concurrent_tasks_and_threads_share_one_token(provider: Provider, api: ManagementClient) -> None:
    async def gathered() -> list[Any]:
        return await asyncio.gather(*(api.listUserPersonalAccessTokens("user-alice") for _ in range(5)))

    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda _: api.blocking.listUserPersonalAccessTokens("user-bob"), range(8)))
    answers = run(gathered())
    assert len(answers) == 5 and len(threaded) == 8
    assert len(provider.requests(path="/oidc/token")) == 1
    assert len([r for r in provider.requests() if r["path"].startswith("/api/")]) == 13


def test_logto_errors_carry_their_code(api: ManagementClient) -> None:
    with pytest.raises(LogtoApiNotFoundError) as missing:
        api.blocking.listUserPersonalAccessTokens("no-such-user")
    error = missing.value
    assert (error.status, error.error) == (404, "entity.not_exists_with_id")
    assert error.code == "api.entity.not_exists_with_id"
    with pytest.raises(LogtoApiConflictError) as taken:
        api.blocking.createUserPersonalAccessToken("user-alice", {"name": "ci-token"})
    assert taken.value.status == 422 and taken.value.error


def test_a_body_that_does_not_fit_is_refused_before_anything_is_sent(
    provider: Provider, api: ManagementClient
) -> None:
    with pytest.raises(LogtoConfigError) as refused:
        api.blocking.createUser({"username": "ada", "password": "Hunter2-secret-value", "isAdmin": True})
    with pytest.raises(LogtoConfigError) as wrong_type:
        api.blocking.createUser({"username": ["Hunter2-secret-value"]})
    for error in (refused.value, wrong_type.value):
        assert "CreateUserBody" in str(error) and "Hunter2" not in str(error) and "Hunter2" not in repr(error)
    assert "isAdmin" in str(refused.value) and "username" in str(wrong_type.value)
    assert provider.requests(path="/api/users") == [] and provider.requests(path="/oidc/token") == []


def test_a_path_parameter_stays_in_its_segment(provider: Provider, api: ManagementClient) -> None:
    for traversal in ("", ".", ".."):
        with pytest.raises(LogtoConfigError):
            api.blocking.listUserPersonalAccessTokens(traversal)
    with pytest.raises(LogtoApiNotFoundError):
        api.blocking.listUserPersonalAccessTokens("user-alice/../user-bob")
    [request] = [r for r in provider.requests(method="GET") if r["path"].startswith("/api/")]
    assert request["path"] == "/api/users/user-alice%2F..%2Fuser-bob/personal-access-tokens"


def test_a_negative_retry_policy_is_refused(provider: Provider) -> None:
    config = LogtoM2MConfig(endpoint=provider.endpoint, appId="m2m-app", appSecret="m2m-app-secret")
    with pytest.raises(LogtoConfigError):
        ManagementClient(config, retry=RetryPolicy(maxRetries=-1))
    assert ManagementClient(config, retry=RetryPolicy(maxRetries=5)).retryPolicy.maxRetries == 5


class ScriptedLogto:
    """Discovery and a token endpoint like Logto's, and scripted answers for ``/api/...``."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], Any]] = []
        self.calls: list[tuple[str, str, float]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, status: int, headers: dict[str, str], body: Any) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                issuer = f"http://127.0.0.1:{scripted.port}/oidc"
                if self.path == "/oidc/.well-known/openid-configuration":
                    return self.answer(
                        200,
                        {},
                        {
                            "issuer": issuer,
                            "authorization_endpoint": issuer + "/auth",
                            "token_endpoint": issuer + "/token",
                            "jwks_uri": issuer + "/jwks",
                        },
                    )
                if self.path == "/oidc/token":
                    return self.answer(
                        200, {}, {"access_token": "m-token", "expires_in": 3600, "token_type": "Bearer"}
                    )
                scripted.calls.append((self.command, self.path, time.monotonic()))
                status, headers, body = scripted.script.pop(0)
                self.answer(status, headers, body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def client(self, retry: RetryPolicy) -> ManagementClient:
        config = LogtoM2MConfig(endpoint=f"http://127.0.0.1:{self.port}", appId="m2m", appSecret="m2m-secret")
        return ManagementClient(LogtoM2MClient(config), retry=retry)


@pytest.fixture
def logto() -> Iterator[ScriptedLogto]:
    scripted = ScriptedLogto()
    yield scripted
    scripted.server.shutdown()
    scripted.server.server_close()


def user(n: int) -> dict[str, Any]:
    return {
        "id": f"u{n}",
        "username": f"user{n}",
        "primaryEmail": None,
        "primaryPhone": None,
        "name": None,
        "avatar": None,
        "customData": {},
        "identities": {},
        "lastSignInAt": None,
        "createdAt": 1,
        "updatedAt": 1,
        "profile": {},
        "applicationId": None,
        "isSuspended": False,
    }


UNAVAILABLE = (503, {}, {"code": "unavailable", "message": "down"})
BUSY = (429, {"Retry-After": "1"}, {"code": "guard.too_many_requests", "message": "slow down"})


def test_reads_are_retried_after_503_and_429_honouring_retry_after(logto: ScriptedLogto) -> None:
    logto.script = [UNAVAILABLE, BUSY, (200, {"Total-Number": "3"}, [user(1), user(2)])]
    api = logto.client(RetryPolicy(maxRetries=3, baseDelay=0.01, maxDelay=5))
    page = run(api.listUsers(page=1, page_size=2, search_params={"search.username": "user"}))
    assert isinstance(page, Page) and page.total == 3 and [u.username for u in page] == ["user1", "user2"]
    assert all(isinstance(u, User) for u in page)
    assert [c[1] for c in logto.calls] == ["/api/users?page=1&page_size=2&search.username=user"] * 3
    assert logto.calls[2][2] - logto.calls[1][2] >= 0.95  # Retry-After: 1


def test_writes_are_never_retried(logto: ScriptedLogto) -> None:
    logto.script = [UNAVAILABLE, (201, {}, user(1))]
    api = logto.client(RetryPolicy(maxRetries=3, baseDelay=0.01))
    with pytest.raises(LogtoResponseError) as failed:
        api.blocking.createUser({"username": "user1"})
    assert failed.value.status == 503 and len(logto.calls) == 1


def test_retries_are_bounded_and_a_long_retry_after_is_not_waited_for(logto: ScriptedLogto) -> None:
    logto.script = [UNAVAILABLE] * 3
    with pytest.raises(LogtoResponseError):
        logto.client(RetryPolicy(maxRetries=2, baseDelay=0.01)).blocking.deleteUser("u1")
    assert len(logto.calls) == 3
    logto.calls.clear()
    logto.script = [BUSY]
    started = time.monotonic()
    with pytest.raises(Exception) as busy:
        logto.client(RetryPolicy(maxRetries=3, maxDelay=0.5)).blocking.getUser("u1")
    assert time.monotonic() - started < 0.9 and len(logto.calls) == 1
    assert (busy.value.status, busy.value.code) == (429, "api.guard.too_many_requests")  # type: ignore[attr-defined]


def test_every_page_is_read_by_the_pagination_helpers(logto: ScriptedLogto) -> None:
    pages = [(200, {"Total-Number": "5"}, [user(n) for n in chunk]) for chunk in ([1, 2], [3, 4], [5])]
    logto.script = list(pages)
    api = logto.client(RetryPolicy())
    names = [
        u.username for u in iterate_pages_blocking(lambda n: api.blocking.listUsers(page=n, page_size=2))
    ]
    assert names == ["user1", "user2", "user3", "user4", "user5"]
    assert [c[1] for c in logto.calls] == [f"/api/users?page={n}&page_size=2" for n in (1, 2, 3)]

    logto.script = list(pages)

    async def collect() -> list[str]:
        return [u.username async for u in iterate_pages(lambda n: api.listUsers(page=n, page_size=2))]

    assert run(collect()) == names


def test_an_answer_that_does_not_fit_the_document_is_a_response_error(logto: ScriptedLogto) -> None:
    logto.script = [(200, {}, {"id": "u1", "secret": "leaked-value"})]
    with pytest.raises(LogtoResponseError) as wrong:
        logto.client(RetryPolicy()).blocking.getUser("u1")
    assert "username" in str(wrong.value) and "leaked-value" not in str(wrong.value)


def test_an_enum_value_a_newer_logto_adds_is_read_but_never_sent(logto: ScriptedLogto) -> None:
    role = {"tenantId": "t", "id": "r1", "name": "robots", "description": "d", "isDefault": False}
    logto.script = [(200, {}, {**role, "type": "Robot"}), (200, {}, {**role, "type": "User"})]
    api = logto.client(RetryPolicy())
    assert api.blocking.getRole("r1").type == "Robot"
    assert run(api.getRole("r1")).type == "User"
    with pytest.raises(LogtoConfigError) as refused:
        api.blocking.createRole({"name": "robots", "description": "d", "type": "Robot"})
    assert "CreateRoleBody" in str(refused.value) and "type" in str(refused.value)
    assert [c[:2] for c in logto.calls] == [("GET", "/api/roles/r1")] * 2
