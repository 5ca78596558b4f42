"""Logto webhooks: signed deliveries checked, parsed into typed events and handled once.

Logto posts each event to a hook's URL as JSON, signed with the hook's signing key:
``logto-signature-sha-256: hex(HMAC-SHA256(signing key, raw body))``. It waits 10 s for an
answer and sends the same body again (up to 3 times) after a failure, so a retry is a replay of
the same bytes.

:class:`Webhooks` is the endpoint's logic, written once for every framework (the Flask, FastAPI
and Django modules beside it only read the body and translate the answer):

- at most :data:`~logto_rs.backchannel.MAX_BODY` bytes are read (413 past that);
- the signature is checked in constant time against every accepted key (rotation), over the
  raw body, never re-serialised JSON (401 when none matches or the header is missing);
- the body is parsed into a typed event (:func:`parse_event`; 400 when it is not one);
- ``createdAt`` must lie within ``max_age`` of now (400 for a stale delivery);
- the body's SHA-256 is claimed in a replay store: a body already handled is answered 200 and
  not handled again (503 when the store is out of reach);
- the handlers registered with :meth:`Webhooks.on` run; if one raises, the answer is 500 and
  the claim is released, so Logto's retry is handled.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional, Protocol, TypeVar, Union

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from .._flows import WebResponse
from .._steps import Steps, drive_async, drive_blocking
from ..backchannel import MEMORY_CAPACITY, RedisReplayStore
from ..errors import LogtoConfigError, LogtoStorageError, LogtoWebhookError

if TYPE_CHECKING:
    from ..backchannel import RedisClient

__all__ = [
    "DEFAULT_MAX_AGE",
    "EVENT_TYPES",
    "SIGNATURE_HEADER",
    "DataEvent",
    "DeliveryStore",
    "HookOrganization",
    "HookRole",
    "HookUser",
    "InteractionEvent",
    "MemoryDeliveryStore",
    "OrganizationCreated",
    "OrganizationDataUpdated",
    "OrganizationDeleted",
    "OrganizationMembershipUpdated",
    "PostRegister",
    "PostResetPassword",
    "PostSignIn",
    "RedisDeliveryStore",
    "RoleCreated",
    "RoleDataUpdated",
    "RoleDeleted",
    "RoleScopesUpdated",
    "UnknownEvent",
    "UserCreated",
    "UserDataUpdated",
    "UserDeleted",
    "UserSuspensionStatusUpdated",
    "WebhookEvent",
    "Webhooks",
    "parse_event",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "logto-signature-sha-256"
"""The header carrying the hex HMAC-SHA256 of the body."""

DEFAULT_MAX_AGE = timedelta(minutes=5)
"""How far a delivery's ``createdAt`` may lie from now (either way) before it is refused as stale."""

RESPONSE_HEADERS = {"Cache-Control": "no-store"}
"""Headers of every answer of the endpoint (besides the JSON content type)."""

logger = logging.getLogger("logto_rs.webhooks")


# --- Signatures --------------------------------------------------------------------------------


def sign(signing_key: str, body: bytes) -> str:
    """The ``logto-signature-sha-256`` value Logto sends for ``body`` under ``signing_key``."""
    return hmac.new(signing_key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, signature: Optional[str], signing_keys: Iterable[str]) -> bool:
    """Whether ``signature`` is the HMAC-SHA256 of the raw ``body`` under one of ``signing_keys``.

    Every key is compared, each in constant time (``hmac.compare_digest``), so the answer's
    timing says nothing about which key matched or how much of the signature was right.
    """
    if not signature:
        return False
    given = signature.strip().lower().encode("ascii", "replace")
    matched = False
    for key in signing_keys:
        matched |= hmac.compare_digest(sign(key, body).encode("ascii"), given)
    return matched


# --- Events ------------------------------------------------------------------------------------


class _LogtoModel(BaseModel):
    """Logto's camelCase fields as snake_case attributes; unknown fields kept."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", hide_input_in_errors=True
    )


class HookUser(_LogtoModel):
    """A user as Logto puts it in a webhook (``data`` of user events, ``user`` of interactions).

    Only ``id`` is always there; the other fields are Logto's user fields when sent.
    """

    id: str
    username: Optional[str] = None
    primary_email: Optional[str] = None
    primary_phone: Optional[str] = None
    name: Optional[str] = None
    avatar: Optional[str] = None
    custom_data: Optional[dict[str, Any]] = None
    profile: Optional[dict[str, Any]] = None
    is_suspended: Optional[bool] = None


class HookRole(_LogtoModel):
    """A role as Logto sends it in role events."""

    id: str
    name: Optional[str] = None
    description: Optional[str] = None
    type: Optional[str] = None


class HookOrganization(_LogtoModel):
    """An organization as Logto sends it in organization events."""

    id: str
    name: Optional[str] = None
    description: Optional[str] = None
    custom_data: Optional[dict[str, Any]] = None


class WebhookEvent(_LogtoModel):
    """What every delivery carries.

    Attributes:
        event: The event's name (``User.Created``, ``PostSignIn``…).
        hook_id: The hook that sent it.
        created_at: When Logto created the delivery.
        user_agent: The user agent of the request that caused the event, when known.

    """

    event: str
    hook_id: str
    created_at: datetime
    user_agent: Optional[str] = None


class InteractionEvent(WebhookEvent):
    """An event of a user's interaction with Logto's sign-in experience."""

    session_id: Optional[str] = None
    user_ip: Optional[str] = None
    user_id: Optional[str] = None
    user: Optional[HookUser] = None
    application: Optional[dict[str, Any]] = None


class PostRegister(InteractionEvent):
    """A user registered."""

    event: Literal["PostRegister"]


class PostSignIn(InteractionEvent):
    """A user signed in."""

    event: Literal["PostSignIn"]


class PostResetPassword(InteractionEvent):
    """A user reset their password."""

    event: Literal["PostResetPassword"]


class DataEvent(WebhookEvent):
    """An event of a change to Logto's data, made through the Management API or the console.

    Attributes:
        path: The request's path.
        method: The request's method.
        status: The status Logto answered it with.
        params: The route's parameters (``userId``, ``id``…).
        data: The changed object, when the request returned one.
        matched_route: The route pattern (``/users/:userId``).

    """

    path: Optional[str] = None
    method: Optional[str] = None
    status: Optional[int] = None
    params: Optional[dict[str, str]] = None
    data: Any = None
    matched_route: Optional[str] = None


class _UserEvent(DataEvent):
    data: Optional[HookUser] = None

    @property
    def user_id(self) -> Optional[str]:
        """The user's id: from ``data``, else the route's ``userId``."""
        if self.data is not None:
            return self.data.id
        return (self.params or {}).get("userId")


class UserCreated(_UserEvent):
    """A user was created (``data``: the user)."""

    event: Literal["User.Created"]


class UserDataUpdated(_UserEvent):
    """A user's data changed (``data``: the user as it is now)."""

    event: Literal["User.Data.Updated"]


class UserDeleted(_UserEvent):
    """A user was deleted (``data``: the user as it was)."""

    event: Literal["User.Deleted"]


class UserSuspensionStatusUpdated(_UserEvent):
    """A user was suspended or reinstated (``data.is_suspended`` says which)."""

    event: Literal["User.SuspensionStatus.Updated"]


class RoleCreated(DataEvent):
    """A role was created (``data``: the role)."""

    event: Literal["Role.Created"]


class RoleDeleted(DataEvent):
    """A role was deleted (``params["id"]``: which)."""

    event: Literal["Role.Deleted"]


class RoleDataUpdated(DataEvent):
    """A role's name or description changed (``data``: the role)."""

    event: Literal["Role.Data.Updated"]


class RoleScopesUpdated(DataEvent):
    """A role's scopes changed (``params["id"]``: which role)."""

    event: Literal["Role.Scopes.Updated"]


class OrganizationCreated(DataEvent):
    """An organization was created (``data``: the organization)."""

    event: Literal["Organization.Created"]


class OrganizationDeleted(DataEvent):
    """An organization was deleted (``params["id"]``: which)."""

    event: Literal["Organization.Deleted"]


class OrganizationDataUpdated(DataEvent):
    """An organization's data changed (``data``: the organization)."""

    event: Literal["Organization.Data.Updated"]


class OrganizationMembershipUpdated(DataEvent):
    """An organization's members changed (``params["id"]``: which organization)."""

    event: Literal["Organization.Membership.Updated"]


class UnknownEvent(DataEvent):
    """Any other event (``OrganizationRole.*``, ``Scope.*``, ``Identifier.Lockout``…), fields kept."""


EVENT_TYPES: Mapping[str, type[WebhookEvent]] = {
    model.model_fields["event"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        PostRegister,
        PostSignIn,
        PostResetPassword,
        UserCreated,
        UserDataUpdated,
        UserDeleted,
        UserSuspensionStatusUpdated,
        RoleCreated,
        RoleDeleted,
        RoleDataUpdated,
        RoleScopesUpdated,
        OrganizationCreated,
        OrganizationDeleted,
        OrganizationDataUpdated,
        OrganizationMembershipUpdated,
    )
}
"""The typed model of each event name; any other name parses as :class:`UnknownEvent`."""


def parse_event(body: Union[bytes, str]) -> WebhookEvent:
    """The typed event of a delivery's body: the model its ``event`` names, else :class:`UnknownEvent`.

    Raises:
        LogtoWebhookError: ``webhook.malformed``: the body is not a JSON object with a string
            ``event``, a ``hookId`` and an ISO ``createdAt``, or its fields do not fit the model.

    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise LogtoWebhookError("the webhook body is not JSON", "webhook.malformed") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        raise LogtoWebhookError("the webhook body is not an event", "webhook.malformed")
    model = EVENT_TYPES.get(payload["event"], UnknownEvent)
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        fields = ", ".join(sorted({".".join(map(str, e["loc"])) for e in error.errors()}))
        raise LogtoWebhookError(
            f"the webhook event does not fit {model.__name__} ({fields})", "webhook.malformed"
        ) from None


# --- Replay stores -----------------------------------------------------------------------------


class DeliveryStore(Protocol):
    """Remembers the deliveries handled: claimed before handling, released if handling failed."""

    def claim(self, jti: str, ttl: float) -> Union[bool, Awaitable[bool]]:
        """Record ``jti`` for ``ttl`` seconds; ``True`` when it was not recorded yet (atomic)."""

    def release(self, jti: str) -> Optional[Awaitable[Any]]:
        """Forget ``jti``, so the delivery is handled when it comes again."""


class MemoryDeliveryStore:
    """A :class:`DeliveryStore` in this process's memory (one worker; thread- and fork-safe).

    Past ``capacity`` unexpired records, a claim raises :class:`~logto_rs.LogtoStorageError`
    (the endpoint answers 503, Logto retries) rather than forget a delivery. A forked worker
    starts with a fresh lock and the records made before the fork; what it records later only
    it knows: pass a :class:`RedisDeliveryStore` when several processes serve the endpoint.
    """

    def __init__(self, capacity: int = MEMORY_CAPACITY) -> None:
        self.capacity = capacity
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _renew_lock(reference()))

    def claim(self, jti: str, ttl: float) -> bool:
        """Record ``jti`` for ``ttl`` seconds; ``True`` when it was not recorded yet."""
        now = time.monotonic()
        with self._lock:
            if self._until.get(jti, 0.0) > now:
                return False
            if len(self._until) >= self.capacity:
                self._until = {k: until for k, until in self._until.items() if until > now}
                if len(self._until) >= self.capacity:
                    raise LogtoStorageError("the webhook replay store is full", "storage.full")
            self._until[jti] = now + ttl
            return True

    def release(self, jti: str) -> None:
        """Forget ``jti``."""
        with self._lock:
            self._until.pop(jti, None)

    def __repr__(self) -> str:
        return f"MemoryDeliveryStore(capacity={self.capacity})"


def _renew_lock(store: Optional[MemoryDeliveryStore]) -> None:
    """In a forked child: a lock another thread of the parent held at the fork is never released."""
    if store is not None:
        store._lock = threading.Lock()


class RedisDeliveryStore(RedisReplayStore):
    """A :class:`DeliveryStore` in Redis: the back-channel replay store, plus :meth:`release`.

    A delivery is handled once across every process and host sharing the Redis.

    Args:
        client: A synchronous ``redis.Redis`` (Flask, Django) or an asyncio one (FastAPI).
        prefix: Prefix of the keys.

    """

    def __init__(self, client: RedisClient, *, prefix: str = "logto-webhook:") -> None:
        super().__init__(client, prefix=prefix)

    def release(self, jti: str) -> Optional[Awaitable[Any]]:
        """Forget ``jti`` (the key :meth:`claim` set)."""
        result: Any = self.redis.delete(self.prefix + jti)
        return result if inspect.isawaitable(result) else None

    def __repr__(self) -> str:
        return f"RedisDeliveryStore(prefix={self.prefix!r})"


# --- The endpoint ------------------------------------------------------------------------------

Handler = Callable[[Any], Any]
"""A handler: takes the typed event; a plain function or a coroutine function."""

H = TypeVar("H", bound=Handler)


class Webhooks:
    """The webhook endpoint's logic and its handlers, shared by Flask, FastAPI and Django.

    Register handlers with :meth:`on`; serve :meth:`respond` (blocking: Flask, Django) or
    :meth:`respond_async` (FastAPI) at the hook's URL, or mount the framework's ready endpoint
    (:mod:`logto_rs.webhooks.flask`, :mod:`~logto_rs.webhooks.fastapi`,
    :mod:`~logto_rs.webhooks.django`).

    Args:
        signing_keys: The hook's signing key, or several (while rotating: the new and the old).
        store: Where handled deliveries are remembered; ``None``: this process's memory (a
            replay reaching another worker is then handled again: pass a
            :class:`RedisDeliveryStore` when several processes serve the endpoint).
        max_age: How far ``createdAt`` may lie from now, either way (default 5 minutes).

    """

    def __init__(
        self,
        signing_keys: Union[str, Iterable[str]],
        *,
        store: Optional[DeliveryStore] = None,
        max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> None:
        keys = (signing_keys,) if isinstance(signing_keys, str) else tuple(signing_keys)
        if not keys or not all(isinstance(key, str) and key for key in keys):
            raise LogtoConfigError("Webhooks needs at least one non-empty signing key", "config.invalid")
        if store is not None and not callable(getattr(store, "release", None)):
            raise LogtoConfigError(
                "the webhook store needs release() (a failed delivery must be handled when retried): "
                "use MemoryDeliveryStore or RedisDeliveryStore",
                "config.invalid",
            )
        if max_age <= timedelta(0):
            raise LogtoConfigError("max_age must be positive", "config.invalid")
        self._keys = keys
        self.store: DeliveryStore = store if store is not None else MemoryDeliveryStore()
        self.max_age = max_age
        self._handlers: dict[str, list[Handler]] = {}

    def __repr__(self) -> str:
        return f"Webhooks(keys={len(self._keys)}, store={self.store!r}, max_age={self.max_age!r})"

    def on(self, event: str) -> Callable[[H], H]:
        """Register the decorated function for ``event`` (a Logto event name, or ``"*"`` for all).

        The function takes the typed event; it may be a coroutine function. Handlers of one
        event run in the order registered, then those of ``"*"``.
        """

        def register(handler: H) -> H:
            self._handlers.setdefault(event, []).append(handler)
            return handler

        return register

    def handlers(self, event: str) -> list[Handler]:
        """The handlers that run for ``event``."""
        return [*self._handlers.get(event, ()), *self._handlers.get("*", ())]

    def verify(self, body: bytes, signature: Optional[str]) -> WebhookEvent:
        """Check a delivery and parse it, without the replay store or the handlers.

        Raises:
            LogtoWebhookError: ``webhook.signature``, ``webhook.malformed`` or ``webhook.stale``.

        """
        if not verify_signature(body, signature, self._keys):
            raise LogtoWebhookError("the webhook signature is missing or wrong", "webhook.signature")
        event = parse_event(body)
        created = (
            event.created_at if event.created_at.tzinfo else event.created_at.replace(tzinfo=timezone.utc)
        )
        if abs(datetime.now(timezone.utc) - created) > self.max_age:
            raise LogtoWebhookError("the webhook delivery is stale", "webhook.stale")
        return event

    def respond(self, body: Optional[bytes], signature: Optional[str]) -> WebResponse:
        """Handle a delivery (blocking): its raw ``body`` (``None`` past 64 KiB) and signature header.

        200 ``{}`` when handled, or already handled (``{"duplicate": true}``); 401 for a bad or
        missing signature; 400 for a malformed or stale body; 413 past 64 KiB; 500 when a
        handler raised (the delivery is not remembered: Logto's retry is handled); 503 when the
        store is out of reach. Coroutine handlers run in a new event loop (``asyncio.run``).

        Raises:
            LogtoConfigError: the store is an asyncio one (use :meth:`respond_async`).

        """
        return drive_blocking(self._respond(body, signature, _call_blocking))

    async def respond_async(self, body: Optional[bytes], signature: Optional[str]) -> WebResponse:
        """:meth:`respond` on an event loop: the store and coroutine handlers awaited.

        Plain handlers run in a worker thread (``asyncio.to_thread``), off the event loop.
        """
        return await drive_async(self._respond(body, signature, _call_async))

    def _respond(
        self, body: Optional[bytes], signature: Optional[str], call: Callable[[Handler, WebhookEvent], Any]
    ) -> Steps[WebResponse]:
        if body is None:
            return _refused(413, LogtoWebhookError("the webhook body is too large", "webhook.too_large"))
        try:
            event = self.verify(body, signature)
        except LogtoWebhookError as error:
            return _refused(401 if error.code == "webhook.signature" else 400, error)
        key = hashlib.sha256(body).hexdigest()
        ttl = 2 * self.max_age.total_seconds() + 60  # past this, the delivery is stale anyway
        try:
            fresh = yield self.store.claim(key, ttl)
        except LogtoConfigError:
            raise  # a misconfiguration, not an outage
        except Exception:
            logger.exception("a webhook delivery could not be claimed (the store failed)")
            return _answer(503, {"error": "temporarily_unavailable"})
        if not fresh:
            logger.info("a webhook delivery of %s was handled before; not handled again", event.event)
            return _answer(200, {"duplicate": True})
        try:
            for handler in self.handlers(event.event):
                yield call(handler, event)
        except Exception:
            logger.exception("a handler of the webhook event %s failed", event.event)
            try:
                yield self.store.release(key)
            except Exception:
                logger.exception("a failed webhook delivery could not be released (the store failed)")
            return _answer(500, {"error": "handler_failed"})
        return _answer(200, {})


def _call_blocking(handler: Handler, event: WebhookEvent) -> Any:
    result = handler(event)
    if inspect.isawaitable(result):
        return asyncio.run(_awaited(result))
    return result


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


async def _call_async(handler: Handler, event: WebhookEvent) -> Any:
    result = (
        await handler(event)
        if inspect.iscoroutinefunction(handler)
        else await asyncio.to_thread(handler, event)
    )
    return (await result) if inspect.isawaitable(result) else result


def _answer(status: int, body: Mapping[str, Any]) -> WebResponse:
    return WebResponse.json(body, status, RESPONSE_HEADERS, detail=body.get("error"))


def _refused(status: int, error: LogtoWebhookError) -> WebResponse:
    logger.warning("refused a webhook delivery: %s", error.code)
    return _answer(status, {"error": error.code.partition(".")[2], "error_description": error.message})
