"""The ``LOGTO`` settings dict: read once, validated, turned into one client and one verifier.

Everything below is cached per process and dropped when a test changes ``LOGTO`` (Django's
``setting_changed`` signal), so ``override_settings(LOGTO=...)`` works.
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from pydantic import ValidationError

from ..client import LogtoClient
from ..config import LogtoConfig
from ..errors import LogtoConfigError
from ..verifier import AccessTokenVerifier
from ..web import COOKIE_LIMIT

__all__ = ["LogtoSettings", "get_client", "get_settings", "get_verifier", "reset"]

# Keys of LOGTO that go to LogtoConfig, with the LogtoConfig field they become.
CONFIG_KEYS = {
    "ENDPOINT": "endpoint",
    "APP_ID": "appId",
    "APP_SECRET": "appSecret",
    "SCOPES": "scopes",
    "RESOURCES": "resources",
    "PROMPT": "prompt",
    "REQUEST_TIMEOUT": "requestTimeout",
    "CONNECT_TIMEOUT": "connectTimeout",
    "CLOCK_TOLERANCE": "clockTolerance",
    "JWKS_REFETCH_COOLDOWN": "jwksRefetchCooldown",
    "ACCESS_TOKEN_MARGIN": "accessTokenMargin",
}

# The other keys, with their defaults.
OPTION_DEFAULTS: dict[str, Any] = {
    # Routes and redirects.
    "REDIRECT_URI": None,  # the full callback URL; default: built from the request
    "POST_SIGN_OUT_REDIRECT": "/",  # path (or URL) Logto sends the user to after signing out
    "SIGN_IN_OPTIONS": {},  # extra keyword arguments of LogtoClient.signIn
    "SIGN_UP_FIRST_SCREEN": None,  # Logto's first screen of the sign-up route (firstScreen)
    "ERROR_TEMPLATE": "logto_rs/callback_error.html",
    "SIGN_OUT_TEMPLATE": "logto_rs/sign_out.html",
    # Sessions and the refresh lock.
    "SESSION_PREFIX": "logto_",
    "LOCK_CACHE": "default",  # cache alias for the refresh lock; None: no cross-process lock
    "MAX_COOKIE_BYTES": COOKIE_LIMIT,
    # Django users.
    "CREATE_USERS": True,
    "FETCH_USER_INFO": False,  # map the userinfo (fresher, more claims) instead of the ID token
    "USER_CLAIMS": None,  # {"user field": "claim"}; None: email, first_name, last_name
    "GROUP_CLAIMS": (),  # claims whose values become the user's groups, e.g. ("roles",)
    "STAFF_ROLES": None,  # roles (or "org:role" organization roles) that make is_staff
    "SUPERUSER_ROLES": None,  # roles that make is_superuser
    # APIs (Django REST framework).
    "AUDIENCE": None,  # the API resource indicator bearer tokens must be for
    "TOKEN_USERS": False,  # request.user of a bearer token: the Django user with its sub
    "TOKEN_CREATE_USERS": False,  # with TOKEN_USERS: create that user when there is none
    # Webhooks (logto_rs.webhooks.django).
    "WEBHOOK_SIGNING_KEYS": (),  # the hook's signing key(s); several while rotating
    "WEBHOOK_MAX_AGE": 300,  # seconds a delivery's createdAt may lie from now
    "WEBHOOK_SYNC_USERS": False,  # keep Django users in step with Logto's user events
    "WEBHOOK_DELETED_USERS": "deactivate",  # "deactivate" or "delete" a user deleted in Logto
}

SECRET_KEYS = ("APP_SECRET", "WEBHOOK_SIGNING_KEYS")


def _fail(message: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"settings.LOGTO: {message}")


def _string_list(name: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise _fail(f"{name} must be a list of strings, not {type(value).__name__}")
    items = [item.value if hasattr(item, "value") else item for item in value]
    if not all(isinstance(item, str) for item in items):
        raise _fail(f"{name} must be a list of strings")
    return items


@dataclass(frozen=True)
class LogtoSettings:
    """``settings.LOGTO``, validated. Build it with :func:`get_settings`."""

    config: LogtoConfig = field(repr=False)
    options: dict[str, Any] = field(repr=False)  # holds WEBHOOK_SIGNING_KEYS

    def __getitem__(self, name: str) -> Any:
        return self.options[name]

    @classmethod
    def from_dict(cls, raw: Any) -> LogtoSettings:
        """Validate ``raw`` (the ``LOGTO`` setting).

        Raises:
            ImproperlyConfigured: a missing or unknown key, or a bad value. The message names
                the key and never contains the secret.

        """
        if not isinstance(raw, dict):
            raise _fail("must be a dict with at least ENDPOINT and APP_ID")
        known = set(CONFIG_KEYS) | set(OPTION_DEFAULTS)
        for key in raw:
            if key not in known:
                hint = difflib.get_close_matches(str(key), sorted(known), n=1)
                raise _fail(f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        for key in ("ENDPOINT", "APP_ID"):
            if not raw.get(key) or not isinstance(raw[key], str):
                raise _fail(f"{key} is required (a non-empty string)")
        secret = raw.get("APP_SECRET")
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise _fail("APP_SECRET must be a non-empty string, or None for a public app")
        fields: dict[str, Any] = {}
        for key, name in CONFIG_KEYS.items():
            if key in raw and raw[key] is not None:
                value = raw[key]
                if key in ("SCOPES", "RESOURCES"):
                    value = _string_list(key, value)
                fields[name] = value
        try:
            config = LogtoConfig(**fields)
        except ValidationError as error:
            # Pydantic's message would quote the input: describe each failure without it.
            problems = "; ".join(
                f"{_setting_name(problem['loc'])}: {problem['msg']}"
                for problem in error.errors(include_input=False, include_url=False)
            )
            raise _fail(problems) from None
        except LogtoConfigError as error:
            raise _fail(error.message) from None
        options = {key: raw.get(key, default) for key, default in OPTION_DEFAULTS.items()}
        cls._check_options(options)
        return cls(config=config, options=options)

    @staticmethod
    def _check_options(options: dict[str, Any]) -> None:
        for key in ("GROUP_CLAIMS", "WEBHOOK_SIGNING_KEYS"):
            options[key] = tuple(_string_list(key, options[key]))
        for key in ("STAFF_ROLES", "SUPERUSER_ROLES"):
            if options[key] is not None:
                options[key] = frozenset(_string_list(key, options[key]))
        claims = options["USER_CLAIMS"]
        if claims is not None and (
            not isinstance(claims, dict) or not all(isinstance(v, str) for v in claims.values())
        ):
            raise _fail('USER_CLAIMS must map user fields to claim names, e.g. {"email": "email"}')
        if not isinstance(options["SIGN_IN_OPTIONS"], dict):
            raise _fail("SIGN_IN_OPTIONS must be a dict of LogtoClient.signIn keyword arguments")
        for key in ("REDIRECT_URI", "AUDIENCE", "LOCK_CACHE", "SIGN_UP_FIRST_SCREEN"):
            if options[key] is not None and not isinstance(options[key], str):
                raise _fail(f"{key} must be a string or None")
        if not isinstance(options["POST_SIGN_OUT_REDIRECT"], str):
            raise _fail("POST_SIGN_OUT_REDIRECT must be a path or an absolute URL")
        if not isinstance(options["MAX_COOKIE_BYTES"], int) or options["MAX_COOKIE_BYTES"] <= 0:
            raise _fail("MAX_COOKIE_BYTES must be a positive integer")
        if not isinstance(options["WEBHOOK_MAX_AGE"], (int, float)) or options["WEBHOOK_MAX_AGE"] <= 0:
            raise _fail("WEBHOOK_MAX_AGE must be a positive number of seconds")
        if options["WEBHOOK_DELETED_USERS"] not in ("deactivate", "delete"):
            raise _fail('WEBHOOK_DELETED_USERS must be "deactivate" or "delete"')


def _setting_name(location: tuple[Any, ...]) -> str:
    names = {name: key for key, name in CONFIG_KEYS.items()}
    return ".".join(names.get(str(part), str(part)) for part in location) or "LOGTO"


_lock = threading.RLock()
_cache: dict[str, Any] = {}


def get_settings() -> LogtoSettings:
    """The validated ``settings.LOGTO`` (cached; :func:`reset` drops it)."""
    cached = _cache.get("settings")
    if cached is None:
        with _lock:
            cached = _cache.get("settings")
            if cached is None:
                cached = _cache["settings"] = LogtoSettings.from_dict(getattr(settings, "LOGTO", None))
    return cached


def get_client() -> LogtoClient:
    """The process's client: one pool, discovery and key cache; bind it per request with ``withStorage``."""
    client = _cache.get("client")
    if client is None:
        with _lock:
            client = _cache.get("client")
            if client is None:
                client = _cache["client"] = LogtoClient(get_settings().config)
    return client


def get_verifier(organizations: bool = False) -> AccessTokenVerifier:
    """The process's access-token verifier for ``LOGTO["AUDIENCE"]``, or for organization tokens.

    Raises:
        ImproperlyConfigured: ``AUDIENCE`` is not set (and ``organizations`` is false).

    """
    key = "org_verifier" if organizations else "verifier"
    verifier = _cache.get(key)
    if verifier is None:
        logto = get_settings()
        audience = None if organizations else logto["AUDIENCE"]
        if not organizations and not audience:
            raise _fail("AUDIENCE (the API resource indicator) is required to verify access tokens")
        with _lock:
            verifier = _cache.get(key)
            if verifier is None:
                verifier = _cache[key] = AccessTokenVerifier(
                    logto.config.endpoint,
                    audience,
                    clockTolerance=logto.config.clockTolerance,
                    jwksRefetchCooldown=logto.config.jwksRefetchCooldown,
                    requestTimeout=logto.config.requestTimeout,
                    connectTimeout=logto.config.connectTimeout,
                )
    return verifier


def reset(**_: Any) -> None:
    """Forget the settings, the client and the verifiers (they are rebuilt on next use)."""
    with _lock:
        _cache.clear()


def _setting_changed(setting: str, **kwargs: Any) -> None:
    if setting == "LOGTO":
        reset()


setting_changed.connect(_setting_changed)


def option(name: str) -> Any:
    """One option of ``LOGTO`` with its default."""
    return get_settings()[name]


def redirect_uri_setting() -> Optional[str]:
    """``LOGTO["REDIRECT_URI"]``."""
    value: Optional[str] = option("REDIRECT_URI")
    return value
