"""System checks (``manage.py check``): the refresh lock's reach, the session backend, cookies."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import conf
from .storage import COOKIE_ENGINES, lock_support

__all__ = ["check_logto", "register"]


def check_logto(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The ``logto_rs`` checks."""
    try:
        logto = conf.get_settings()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="logto_rs.E001")]
    messages: list[checks.CheckMessage] = []
    engine = getattr(settings, "SESSION_ENGINE", "")
    alias = logto["LOCK_CACHE"]
    if alias is not None and alias not in settings.CACHES:
        messages.append(
            checks.Error(
                f"LOGTO['LOCK_CACHE'] names the cache {alias!r}, which settings.CACHES does not define",
                id="logto_rs.E002",
            )
        )
        return messages
    if engine in COOKIE_ENGINES:
        messages.append(
            checks.Warning(
                "a cookie session backend keeps Logto's tokens in the browser: the cookie "
                "may outgrow the 4 KB a browser keeps, and parallel requests of one session in "
                "several processes may each refresh it",
                hint="Use a server-side SESSION_ENGINE (db, cache or cached_db) in production.",
                id="logto_rs.W001",
            )
        )
    else:
        scope, path = lock_support(alias)
        if scope != "global":
            reach = {
                "none": "no lock at all",
                "process": "a lock within one process",
                "host": "a lock within one host (and its add is not atomic)",
            }[scope]
            messages.append(
                checks.Warning(
                    f"the refresh lock's cache ({path or 'LOCK_CACHE = None'}) gives {reach}: "
                    "several processes serving one session could refresh it at once, and Logto "
                    "revokes the grant when a rotated refresh token is reused",
                    hint="Point LOGTO['LOCK_CACHE'] at a Redis or Memcached cache (or the database "
                    "cache), or serve with one process.",
                    id="logto_rs.W002",
                )
            )
    if not settings.DEBUG and not settings.SESSION_COOKIE_SECURE:
        messages.append(
            checks.Warning(
                "SESSION_COOKIE_SECURE is False: the session cookie, and with it the Logto "
                "session, would travel over plain HTTP",
                hint="Set SESSION_COOKIE_SECURE = True and serve HTTPS.",
                id="logto_rs.W003",
            )
        )
    return messages


def register() -> None:
    """Register :func:`check_logto` (idempotent)."""
    checks.register(check_logto, "logto_rs")
