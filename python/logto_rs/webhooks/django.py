"""Webhooks in Django: the endpoint, a replay store in Django's cache, and users kept in sync.

With ``LOGTO["WEBHOOK_SIGNING_KEYS"]`` set, route the endpoint::

    from logto_rs.webhooks.django import webhook_view

    urlpatterns = [path("webhooks/logto", webhook_view())]

and register handlers on :func:`webhooks` (``webhooks().on("User.Created")``). Deliveries are
remembered in the cache ``LOGTO["LOCK_CACHE"]`` (:class:`CacheDeliveryStore`: once across
workers with a shared cache), for twice ``LOGTO["WEBHOOK_MAX_AGE"]`` seconds.

``LOGTO["WEBHOOK_SYNC_USERS"] = True`` adds :class:`UserSync`'s handlers: Logto's user events
create and update the Django users with the sign-in's claim mapping
(:class:`~logto_rs.django.backends.LogtoBackend`), a suspension sets ``is_active = False``, and
a deletion deactivates or deletes the user (``LOGTO["WEBHOOK_DELETED_USERS"]``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Callable, Optional

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..backchannel import read_limited
from ..django import conf
from ..django._http import response
from ..django.backchannel import KEY_PREFIX, CacheReplayStore, _cache
from ..django.backends import Claims, LogtoBackend
from . import SIGNATURE_HEADER, HookUser, UserDeleted, UserSuspensionStatusUpdated, Webhooks

__all__ = ["CacheDeliveryStore", "UserSync", "user_claims", "webhook_view", "webhooks"]


class CacheDeliveryStore(CacheReplayStore):
    """Handled deliveries in Django's cache (``cache.add``, atomic on Redis, Memcached, the database)."""

    def release(self, jti: str) -> None:
        """Forget ``jti`` (the key :meth:`claim` added)."""
        _cache().delete(f"{KEY_PREFIX}jti:{jti}")


def user_claims(user: HookUser) -> dict[str, Any]:
    """The claims a sign-in would carry for a webhook's ``user`` (``sub``, ``email``, ``name``…)."""
    profile = user.profile or {}
    claims = {
        "sub": user.id,
        "username": user.username,
        "email": user.primary_email,
        "phone_number": user.primary_phone,
        "name": user.name,
        "picture": user.avatar,
        "given_name": profile.get("givenName"),
        "family_name": profile.get("familyName"),
    }
    return {name: value for name, value in claims.items() if value is not None}


class _SyncBackend(LogtoBackend):
    """The sign-in backend, leaving roles alone when the event did not say them."""

    def update_roles(self, user: Any, claims: Claims) -> None:
        if "roles" in claims:
            super().update_roles(user, claims)


class UserSync:
    """Handlers keeping Django users in step with Logto's user events.

    - ``User.Created``, ``User.Data.Updated``: create (whatever ``CREATE_USERS`` says) or update
      the user whose ``USERNAME_FIELD`` is the Logto id, with the sign-in's claim mapping
      (``USER_CLAIMS``); ``is_active`` follows the user's suspension;
    - ``User.SuspensionStatus.Updated``: ``is_active = not isSuspended``;
    - ``User.Deleted``: ``is_active = False``, or the user deleted with
      ``LOGTO["WEBHOOK_DELETED_USERS"] = "delete"``.

    Logto's user events do not carry roles. With ``roles`` (a function from a user id to its
    role names, e.g. over :class:`~logto_rs.management.BlockingManagementClient`'s
    ``listUserRoles``), each created or updated user's roles are looked up and applied as at
    sign-in (``GROUP_CLAIMS = ("roles",)``, ``STAFF_ROLES``, ``SUPERUSER_ROLES``); without it,
    groups and flags are left alone.
    """

    def __init__(self, roles: Optional[Callable[[str], Iterable[str]]] = None) -> None:
        self.roles = roles
        self.backend: LogtoBackend = _SyncBackend()

    def register(self, webhooks: Webhooks) -> None:
        """Add the handlers to ``webhooks``."""
        webhooks.on("User.Created")(self.saved)
        webhooks.on("User.Data.Updated")(self.saved)
        webhooks.on("User.SuspensionStatus.Updated")(self.suspension)
        webhooks.on("User.Deleted")(self.deleted)

    def saved(self, event: Any) -> None:
        """Create or update the event's user."""
        if event.data is None:
            return
        claims = user_claims(event.data)
        if self.roles is not None:
            claims["roles"] = list(self.roles(event.data.id))
        user = self.backend.get_user_by_sub(event.data.id)
        created = user is None
        if user is None:
            user = self.backend.create_user(event.data.id, claims)
        self.backend.update_user(user, claims, created=created)
        if event.data.is_suspended is not None:
            _set_active(user, not event.data.is_suspended)

    def suspension(self, event: UserSuspensionStatusUpdated) -> None:
        """Deactivate a suspended user, reactivate a reinstated one."""
        user = self.backend.get_user_by_sub(event.user_id) if event.user_id else None
        if user is not None and event.data is not None and event.data.is_suspended is not None:
            _set_active(user, not event.data.is_suspended)

    def deleted(self, event: UserDeleted) -> None:
        """Deactivate or delete the user (``LOGTO["WEBHOOK_DELETED_USERS"]``)."""
        user = self.backend.get_user_by_sub(event.user_id) if event.user_id else None
        if user is None:
            return
        if conf.option("WEBHOOK_DELETED_USERS") == "delete":
            user.delete()
        else:
            _set_active(user, False)


def _set_active(user: Any, active: bool) -> None:
    if hasattr(user, "is_active") and user.is_active != active:
        user.is_active = active
        user.save(update_fields=["is_active"])


_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _site_webhooks(keys: tuple[str, ...], max_age: float, sync: bool) -> Webhooks:
    hooks = Webhooks(keys, store=CacheDeliveryStore(), max_age=timedelta(seconds=max_age))
    if sync:
        UserSync().register(hooks)
    return hooks


def webhooks() -> Webhooks:
    """The site's :class:`~logto_rs.webhooks.Webhooks` over the ``LOGTO`` settings (one per settings).

    Register handlers on it at import time (an ``AppConfig.ready``); changing the settings
    (``override_settings``) gives a new one.
    """
    with _lock:
        return _site_webhooks(
            tuple(conf.option("WEBHOOK_SIGNING_KEYS")),
            float(conf.option("WEBHOOK_MAX_AGE")),
            bool(conf.option("WEBHOOK_SYNC_USERS")),
        )


def webhook_view(hooks: Optional[Webhooks] = None) -> Callable[[HttpRequest], HttpResponse]:
    """A Django view serving ``hooks`` (default: :func:`webhooks`, read at each request).

    ``POST`` only, CSRF-exempt (Logto signs the body); see :meth:`Webhooks.respond`. At most
    64 KiB of the body are read.
    """

    @csrf_exempt
    @require_POST
    def logto_webhook(request: HttpRequest) -> HttpResponse:
        body = read_limited(request.read, request.META.get("CONTENT_LENGTH") or None)
        served = hooks if hooks is not None else webhooks()
        return response(served.respond(body, request.headers.get(SIGNATURE_HEADER)))

    return logto_webhook
