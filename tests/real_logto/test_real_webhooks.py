"""Real webhooks: hooks created through the Management API deliver signed user events to a Flask,
a FastAPI and a Django app served on 127.0.0.1 (Logto validates no hook URL: loopback is
delivered to), and the Django users follow; a forged, replayed or stale delivery changes nothing.
The hooks and the user are removed afterwards."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import httpx
import pytest
from fastapi import FastAPI
from fastapi_server import serve as serve_asgi
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from conftest import RealLogto
from logto_rs import LogtoM2MClient
from logto_rs.management import BlockingManagementClient, ManagementClient
from logto_rs.webhooks import SIGNATURE_HEADER, UserCreated, Webhooks, sign
from logto_rs.webhooks.fastapi import webhook_router
from logto_rs.webhooks.flask import webhook_view

USER_EVENTS = ["User.Created", "User.Data.Updated", "User.SuspensionStatus.Updated", "User.Deleted"]
PATH = "/webhooks/logto"

pytestmark = pytest.mark.filterwarnings("ignore::logto_rs.django.middleware.LogtoInsecureCookieWarning")


class Receiver:
    """An app's Webhooks (built once the hook's key is known) and what its handlers saw."""

    def __init__(self) -> None:
        self.hooks: Webhooks | None = None
        self.events: list[Any] = []
        self.raw: list[tuple[bytes, str]] = []

    def arm(self, hooks: Webhooks) -> Webhooks:
        hooks.on("*")(self.events.append)
        self.hooks = hooks
        return hooks

    def names(self) -> list[str]:
        return [event.event for event in self.events]


def wsgi(app: Any) -> Iterator[str]:
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture
def flask_receiver() -> Iterator[tuple[Receiver, str]]:
    """A Flask app served on 127.0.0.1 whose WSGI layer keeps each raw delivery (to replay it)."""
    receiver = Receiver()
    app = Flask(__name__)

    @app.post(PATH)
    def endpoint() -> Any:
        assert receiver.hooks is not None
        return webhook_view(receiver.hooks)()

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        receiver.raw.append((body, environ.get("HTTP_LOGTO_SIGNATURE_SHA_256", "")))
        environ["wsgi.input"] = io.BytesIO(body)
        return app.wsgi_app(environ, start_response)

    yield from ((receiver, url) for url in wsgi(recording))


@pytest.fixture
def fastapi_receiver() -> Iterator[tuple[Receiver, str, FastAPI]]:
    """A FastAPI app served on 127.0.0.1; its webhook router is included once the key is known."""
    app = FastAPI()
    with serve_asgi(app) as url:
        yield Receiver(), url, app


@pytest.fixture
def django_site_url() -> Iterator[str]:
    import django_site

    django_site.setup()
    from django.core.handlers.wsgi import WSGIHandler

    yield from wsgi(WSGIHandler())


@pytest.fixture
def api(m2m: LogtoM2MClient) -> BlockingManagementClient:
    return ManagementClient(m2m).blocking


def eventually(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"Logto did not deliver: {what}"
        time.sleep(0.2)


def test_signed_user_events_reach_flask_fastapi_and_django_and_django_users_follow(
    logto: RealLogto,
    api: BlockingManagementClient,
    flask_receiver: tuple[Receiver, str],
    fastapi_receiver: tuple[Receiver, str, FastAPI],
    django_site_url: str,
) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import override_settings
    from django.urls import path

    from logto_rs.webhooks.django import webhook_view as django_view
    from logto_rs.webhooks.django import webhooks as django_webhooks

    tag = uuid.uuid4().hex[:8]
    (flask_rx, flask_url), (fastapi_rx, fastapi_url, fastapi_app) = flask_receiver, fastapi_receiver
    hooks: list[str] = []
    user_id = ""
    try:
        keys = {}
        for name, url in (("flask", flask_url), ("fastapi", fastapi_url), ("django", django_site_url)):
            created = api.createHook(
                {"name": f"wh-{tag}-{name}", "events": USER_EVENTS, "config": {"url": url + PATH}}
            )
            hooks.append(created.id)
            keys[name] = created.signingKey
        # The Flask hook's key is rotated: its deliveries are signed with the new key.
        rotated = api.updateHookSigningKey(hooks[0]).signingKey
        assert rotated != keys["flask"]
        flask_rx.arm(Webhooks([rotated, keys["flask"]]))
        fastapi_app.include_router(webhook_router(fastapi_rx.arm(Webhooks(keys["fastapi"]))))
        global urlpatterns
        urlpatterns = [path(PATH.lstrip("/"), django_view())]
        logto_settings = {
            **settings.LOGTO,
            "WEBHOOK_SIGNING_KEYS": [keys["django"]],
            "WEBHOOK_SYNC_USERS": True,
        }
        with override_settings(LOGTO=logto_settings, ROOT_URLCONF=__name__):
            cache.clear()
            django_rx = Receiver()
            django_rx.arm(django_webhooks())
            users = get_user_model().objects

            user = api.createUser(
                {"username": f"wh{tag}", "primaryEmail": f"wh{tag}@example.com", "name": "Webhook Person"}
            )
            user_id = user.id
            eventually(lambda: users.filter(username=user_id).exists(), "User.Created to Django")
            assert users.get(username=user_id).email == f"wh{tag}@example.com"

            api.updateUser(user_id, {"name": "Renamed Person"})
            eventually(lambda: users.get(username=user_id).first_name == "Renamed", "User.Data.Updated")

            api.updateUserIsSuspended(user_id, {"isSuspended": True})
            eventually(lambda: not users.get(username=user_id).is_active, "User.SuspensionStatus.Updated")

            api.deleteUser(user_id)
            deleted_id, user_id = user_id, ""
            for receiver in (flask_rx, fastapi_rx, django_rx):
                eventually(lambda r=receiver: "User.Deleted" in r.names(), "User.Deleted")  # type: ignore[misc]
                assert sorted(set(receiver.names())) == sorted(USER_EVENTS)
                created_events = [e for e in receiver.events if isinstance(e, UserCreated)]
                assert [e.user_id for e in created_events] == [deleted_id]
            assert not users.get(username=deleted_id).is_active  # deactivated, as by default

            # A replay of a genuine delivery is answered 200 and handled no more.
            body, signature = next((b, s) for b, s in flask_rx.raw if b'"User.Created"' in b)
            assert signature == sign(rotated, body)
            handled = len(flask_rx.events)
            replay = httpx.post(flask_url + PATH, content=body, headers={SIGNATURE_HEADER: signature})
            assert (replay.status_code, replay.json()) == (200, {"duplicate": True})
            assert len(flask_rx.events) == handled

            # A forged delivery (another key, or a changed body) and a stale one change nothing.
            payload = json.loads(body)
            ghost = f"wh-ghost-{tag}"
            payload["data"]["id"] = ghost
            forged = json.dumps(payload, separators=(",", ":")).encode()
            for forged_signature in (signature, sign("not-the-key", forged)):
                answer = httpx.post(
                    django_site_url + PATH, content=forged, headers={SIGNATURE_HEADER: forged_signature}
                )
                assert answer.status_code == 401
            payload["createdAt"] = (datetime.now(timezone.utc) - timedelta(minutes=10)).isoformat()
            stale = json.dumps(payload).encode()
            answer = httpx.post(
                django_site_url + PATH, content=stale, headers={SIGNATURE_HEADER: sign(keys["django"], stale)}
            )
            assert (answer.status_code, answer.json()["error"]) == (400, "stale")
            assert not users.filter(username=ghost).exists()
            users.filter(username=deleted_id).delete()
    finally:
        for hook_id in hooks:
            api.deleteHook(hook_id)
        if user_id:
            api.deleteUser(user_id)
    assert not [hook for hook in api.listHooks() if hook.name.startswith(f"wh-{tag}")]


urlpatterns: list[Any] = []
