"""Webhook deliveries: signatures (rotation), typed events, the body bound, stale and replayed
deliveries (memory and a real Redis), handler failures and Logto's retry, and the same answers
from the Flask, FastAPI and Django endpoints."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

import pytest

from logto_rs.backchannel import MAX_BODY
from logto_rs.errors import LogtoConfigError, LogtoWebhookError
from logto_rs.webhooks import (
    SIGNATURE_HEADER,
    MemoryDeliveryStore,
    OrganizationCreated,
    PostSignIn,
    RedisDeliveryStore,
    RoleCreated,
    UnknownEvent,
    UserCreated,
    UserSuspensionStatusUpdated,
    Webhooks,
    parse_event,
    sign,
    verify_signature,
)

KEY = "whk-signing-key-one"
OLD_KEY = "whk-signing-key-old"


def payload(event: str = "User.Created", *, age: timedelta = timedelta(0), **fields: Any) -> dict[str, Any]:
    """A delivery as Logto 1.42.0 builds it (packages/core/src/libraries/hook)."""
    created = datetime.now(timezone.utc) - age
    body: dict[str, Any] = {
        "hookId": "hook1",
        "event": event,
        "createdAt": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "userAgent": "node",
        "path": "/users",
        "method": "POST",
        "status": 200,
        "params": {},
        "matchedRoute": "/users",
        "data": {"id": "u1", "username": "alice", "primaryEmail": "alice@example.com", "isSuspended": False},
    }
    body.update(fields)
    return body


def encode(data: dict[str, Any]) -> bytes:
    """``JSON.stringify``'s bytes: no spaces."""
    return json.dumps(data, separators=(",", ":")).encode()


# --- signatures and events ------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_the_raw_body_under_any_accepted_key() -> None:
    body = encode(payload())
    assert verify_signature(body, sign(KEY, body), [KEY])
    assert verify_signature(body, sign(OLD_KEY, body), [KEY, OLD_KEY])
    assert verify_signature(body, sign(KEY, body).upper(), [KEY])
    assert not verify_signature(body, sign(OLD_KEY, body), [KEY])
    assert not verify_signature(body, None, [KEY])
    assert not verify_signature(body, "", [KEY])
    # the same JSON serialised differently is other bytes: never re-serialised
    spaced = json.dumps(json.loads(body)).encode()
    assert not verify_signature(spaced, sign(KEY, body), [KEY])


def test_events_parse_into_their_models_and_the_rest_into_unknown() -> None:
    created = parse_event(encode(payload()))
    assert isinstance(created, UserCreated)
    assert created.data is not None and created.data.primary_email == "alice@example.com"
    assert created.user_id == "u1" and created.hook_id == "hook1"
    suspended = parse_event(
        encode(payload("User.SuspensionStatus.Updated", data={"id": "u1", "isSuspended": True}))
    )
    assert (
        isinstance(suspended, UserSuspensionStatusUpdated) and suspended.data and suspended.data.is_suspended
    )
    sign_in = parse_event(
        encode({"hookId": "h", "event": "PostSignIn", "createdAt": "2026-01-01T00:00:00.000Z",
                "sessionId": "s", "userId": "u1", "user": {"id": "u1"}, "application": {"id": "a"}})
    )  # fmt: skip
    assert isinstance(sign_in, PostSignIn) and sign_in.user_id == "u1" and sign_in.session_id == "s"
    assert isinstance(
        parse_event(encode(payload("Role.Created", data={"id": "r", "name": "admin"}))), RoleCreated
    )
    assert isinstance(
        parse_event(encode(payload("Organization.Created", data={"id": "o"}))), OrganizationCreated
    )
    other = parse_event(encode(payload("OrganizationScope.Deleted", extra="kept")))
    assert type(other) is UnknownEvent and other.event == "OrganizationScope.Deleted"
    assert other.model_extra == {"extra": "kept"}


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"event": 1}', encode(payload(createdAt="yesterday")), encode(payload(data=[1]))],
)
def test_a_malformed_body_is_a_typed_error_quoting_nothing_of_it(body: bytes) -> None:
    with pytest.raises(LogtoWebhookError) as caught:
        parse_event(body)
    assert caught.value.code == "webhook.malformed"
    assert "yesterday" not in str(caught.value)


def test_misconfigurations_are_refused() -> None:
    with pytest.raises(LogtoConfigError):
        Webhooks([])
    with pytest.raises(LogtoConfigError):
        Webhooks(KEY, max_age=timedelta(0))

    class ClaimOnly:
        def claim(self, jti: str, ttl: float) -> bool:
            return True

    with pytest.raises(LogtoConfigError, match="release"):
        Webhooks(KEY, store=ClaimOnly())  # type: ignore[arg-type]
    assert KEY not in repr(Webhooks(KEY))


# --- the endpoint, in each framework ---------------------------------------------------------

Post = Callable[[Webhooks, bytes, Optional[str]], tuple[int, dict[str, Any]]]


def post_core(webhooks: Webhooks, body: bytes, signature: Optional[str]) -> tuple[int, dict[str, Any]]:
    answer = webhooks.respond(body if len(body) <= MAX_BODY else None, signature)
    return answer.status, json.loads(answer.body)


def post_flask(webhooks: Webhooks, body: bytes, signature: Optional[str]) -> tuple[int, dict[str, Any]]:
    from flask import Flask

    from logto_rs.webhooks.flask import webhook_view

    app = Flask(__name__)
    app.add_url_rule("/webhooks/logto", view_func=webhook_view(webhooks), methods=["POST"])
    headers = {SIGNATURE_HEADER: signature} if signature is not None else {}
    answer = app.test_client().post("/webhooks/logto", data=body, headers=headers)
    assert answer.headers["Cache-Control"] == "no-store"
    return answer.status_code, answer.get_json()


def post_fastapi(webhooks: Webhooks, body: bytes, signature: Optional[str]) -> tuple[int, dict[str, Any]]:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from logto_rs.webhooks.fastapi import webhook_router

    app = FastAPI()
    app.include_router(webhook_router(webhooks))
    headers = {SIGNATURE_HEADER: signature} if signature is not None else {}
    with TestClient(app) as client:
        answer = client.post("/webhooks/logto", content=body, headers=headers)
    assert answer.headers["Cache-Control"] == "no-store"
    return answer.status_code, answer.json()


DJANGO_WEBHOOKS: list[Webhooks] = []


def django_endpoint(request: Any) -> Any:
    from logto_rs.webhooks.django import webhook_view

    return webhook_view(DJANGO_WEBHOOKS[-1])(request)


django_endpoint.csrf_exempt = True  # type: ignore[attr-defined]  # as the view it dispatches to


def post_django(webhooks: Webhooks, body: bytes, signature: Optional[str]) -> tuple[int, dict[str, Any]]:
    import django_site

    django_site.setup()
    from django.test import Client, override_settings
    from django.urls import path

    global urlpatterns
    urlpatterns = [path("webhooks/logto", django_endpoint)]
    DJANGO_WEBHOOKS.append(webhooks)
    headers = {"HTTP_LOGTO_SIGNATURE_SHA_256": signature} if signature is not None else {}
    with override_settings(ROOT_URLCONF=__name__):
        answer = Client(enforce_csrf_checks=True).post(
            "/webhooks/logto", data=body, content_type="application/json", **headers
        )
    assert answer["Cache-Control"] == "no-store"
    return answer.status_code, json.loads(answer.content)


urlpatterns: list[Any] = []

FRAMEWORKS = {"core": post_core, "flask": post_flask, "fastapi": post_fastapi, "django": post_django}


@pytest.fixture(params=sorted(FRAMEWORKS))
def post(request: pytest.FixtureRequest) -> Post:
    return FRAMEWORKS[request.param]


@pytest.fixture
def received() -> list[Any]:
    return []


@pytest.fixture
def webhooks(received: list[Any]) -> Webhooks:
    hooks = Webhooks([KEY, OLD_KEY])
    hooks.on("User.Created")(received.append)
    return hooks


def test_a_signed_delivery_is_handled_once(post: Post, webhooks: Webhooks, received: list[Any]) -> None:
    body = encode(payload())
    assert post(webhooks, body, sign(KEY, body)) == (200, {})
    assert [type(event) for event in received] == [UserCreated]
    # Logto's retry, or an attacker's replay, of the same bytes: 200, not handled again
    assert post(webhooks, body, sign(KEY, body)) == (200, {"duplicate": True})
    assert len(received) == 1


def test_a_key_being_rotated_out_still_verifies(post: Post, webhooks: Webhooks, received: list[Any]) -> None:
    body = encode(payload())
    assert post(webhooks, body, sign(OLD_KEY, body))[0] == 200
    assert len(received) == 1


@pytest.mark.parametrize("signature", [None, "", "00" * 32, sign("another-key", b"x")])
def test_a_bad_or_missing_signature_is_401(
    post: Post, webhooks: Webhooks, received: list[Any], signature: Optional[str]
) -> None:
    body = encode(payload())
    assert post(webhooks, body, signature) == (
        401,
        {"error": "signature", "error_description": "the webhook signature is missing or wrong"},
    )
    assert received == []
    # the refusal claimed nothing: the genuine delivery is handled
    assert post(webhooks, body, sign(KEY, body))[0] == 200 and len(received) == 1


def test_a_malformed_body_is_400(post: Post, webhooks: Webhooks, received: list[Any]) -> None:
    body = b'{"event": "User.Created"'
    status, answer = post(webhooks, body, sign(KEY, body))
    assert (status, answer["error"]) == (400, "malformed")
    assert received == []


@pytest.mark.parametrize("age", [timedelta(minutes=6), -timedelta(minutes=6)])
def test_a_stale_delivery_is_400_and_handled_never(
    post: Post, webhooks: Webhooks, received: list[Any], age: timedelta
) -> None:
    body = encode(payload(age=age))
    status, answer = post(webhooks, body, sign(KEY, body))
    assert (status, answer["error"]) == (400, "stale")
    assert received == []


def test_the_window_is_configurable(post: Post, received: list[Any]) -> None:
    hooks = Webhooks(KEY, max_age=timedelta(hours=1))
    hooks.on("User.Created")(received.append)
    body = encode(payload(age=timedelta(minutes=30)))
    assert post(hooks, body, sign(KEY, body))[0] == 200 and len(received) == 1


def test_a_body_over_64_kib_is_413(post: Post, webhooks: Webhooks, received: list[Any]) -> None:
    body = encode(payload(padding="a" * MAX_BODY))
    status, answer = post(webhooks, body, sign(KEY, body))
    assert (status, answer["error"]) == (413, "too_large")
    assert received == []


def test_a_failing_handler_is_500_and_logtos_retry_is_handled(post: Post, received: list[Any]) -> None:
    hooks = Webhooks(KEY)
    attempts: list[str] = []

    @hooks.on("User.Created")
    def flaky(event: UserCreated) -> None:
        attempts.append(event.event)
        if len(attempts) == 1:
            raise RuntimeError("the database is down")
        received.append(event)

    body = encode(payload())
    assert post(hooks, body, sign(KEY, body)) == (500, {"error": "handler_failed"})
    assert received == []
    assert post(hooks, body, sign(KEY, body)) == (200, {})
    assert len(received) == 1
    assert post(hooks, body, sign(KEY, body)) == (200, {"duplicate": True})
    assert len(attempts) == 2


def test_coroutine_handlers_and_catch_all_handlers_run(post: Post) -> None:
    hooks = Webhooks(KEY)
    seen: list[str] = []

    @hooks.on("User.Created")
    async def created(event: UserCreated) -> None:
        await asyncio.sleep(0)
        seen.append("async " + event.event)

    @hooks.on("*")
    def every(event: Any) -> None:
        seen.append("all " + event.event)

    for event in ("User.Created", "Role.Deleted"):
        body = encode(payload(event))
        assert post(hooks, body, sign(KEY, body))[0] == 200
    assert seen == ["async User.Created", "all User.Created", "all Role.Deleted"]


# --- stores ----------------------------------------------------------------------------------


def test_a_redis_store_dedupes_across_processes_and_releases_a_failure(redis_client: Any) -> None:
    first, second = (Webhooks(KEY, store=RedisDeliveryStore(redis_client)) for _ in range(2))
    handled: list[str] = []
    fail = [True]

    def handler(event: Any) -> None:
        if fail[0]:
            fail[0] = False
            raise RuntimeError("boom")
        handled.append(event.hook_id)

    first.on("User.Created")(handler)
    second.on("User.Created")(handler)
    body = encode(payload())
    assert first.respond(body, sign(KEY, body)).status == 500
    assert second.respond(body, sign(KEY, body)).status == 200
    assert json.loads(first.respond(body, sign(KEY, body)).body) == {"duplicate": True}
    assert handled == ["hook1"]
    ttl = redis_client.ttl(redis_client.keys("logto-webhook:*")[0])
    assert 60 < ttl <= 2 * 300 + 60


def test_an_asyncio_redis_store_is_awaited(redis_url: str) -> None:
    import redis.asyncio

    async def scenario() -> list[int]:
        client = redis.asyncio.Redis.from_url(redis_url)
        await client.flushdb()
        hooks = Webhooks(KEY, store=RedisDeliveryStore(client))
        hooks.on("User.Created")(lambda event: None)
        body = encode(payload())
        statuses = [(await hooks.respond_async(body, sign(KEY, body))).status for _ in range(2)]
        with pytest.raises(LogtoConfigError):
            hooks.respond(body, sign(KEY, body))  # an asyncio store in blocking code
        await client.aclose()
        return statuses

    assert asyncio.run(scenario()) == [200, 200]


def test_a_store_outage_is_503_and_handles_nothing(redis_url: str, received: list[Any]) -> None:
    import redis

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    hooks = Webhooks(KEY, store=RedisDeliveryStore(dead))
    hooks.on("User.Created")(received.append)
    body = encode(payload())
    answer = hooks.respond(body, sign(KEY, body))
    assert (answer.status, json.loads(answer.body)) == (503, {"error": "temporarily_unavailable"})
    assert received == []


def test_concurrent_copies_of_a_delivery_are_handled_once() -> None:
    hooks = Webhooks(KEY, store=MemoryDeliveryStore())
    count: list[int] = []
    hooks.on("User.Created")(lambda event: count.append(1))
    body = encode(payload())
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(hooks.respond(body, sign(KEY, body)).status))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8 and len(count) == 1


def test_a_full_memory_store_fails_closed() -> None:
    hooks = Webhooks(KEY, store=MemoryDeliveryStore(capacity=1))
    first, second = encode(payload(hookId="a")), encode(payload(hookId="b"))
    assert hooks.respond(first, sign(KEY, first)).status == 200
    assert hooks.respond(second, sign(KEY, second)).status == 503


@pytest.fixture(autouse=True)
def _no_leftover_django_hooks() -> Iterator[None]:
    yield
    DJANGO_WEBHOOKS.clear()


def test_a_worker_forked_while_the_memory_store_was_locked_still_claims() -> None:
    import multiprocessing

    store = MemoryDeliveryStore()
    assert store.claim("before", 60)
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child() -> None:
        results.put((store.claim("after", 60), store.claim("before", 60)))

    with store._lock:  # another thread of the parent in the middle of a claim at the fork
        process = context.Process(target=child)
        process.start()
    process.join(timeout=10)
    alive = process.is_alive()
    if alive:
        process.kill()
    assert not alive and results.get(timeout=1) == (True, False)
