"""Framework-neutral pieces of the web integrations (Flask, FastAPI/Starlette, Django).

Each integration moves requests, sessions and errors of its framework; the decisions live here
once: where a sign-in may return to, whether a request comes from the site itself, when a
session cookie is unsafe, what a browser or an API client gets when its session has ended, and
how an API reads a bearer token, requires roles and answers a rejected one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Optional, TypeVar
from urllib.parse import urlsplit

from .errors import (
    LogtoAccessTokenError,
    LogtoException,
    LogtoInsufficientScopeError,
    LogtoInvalidTokenError,
    LogtoStorageError,
)

__all__ = [
    "COOKIE_LIMIT",
    "LOOPBACK_HOSTS",
    "access_token_error_body",
    "bearer_token",
    "missing_roles",
    "no_bearer_token_error",
    "insecure_cookie_message",
    "is_loopback",
    "is_refusal",
    "is_same_origin",
    "renamed_keyword",
    "safe_next",
    "wants_redirect",
]

COOKIE_LIMIT = 4093
"""Bytes of one cookie (name, value and attributes) that every browser keeps."""

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
"""Hosts on which a cookie without ``Secure`` draws no warning."""


def safe_next(target: Optional[str]) -> str:
    """Return ``target`` if it is a same-origin path, else ``/`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def is_same_origin(
    *,
    host_url: str,
    sec_fetch_site: Optional[str] = None,
    origin: Optional[str] = None,
    referer: Optional[str] = None,
) -> bool:
    """Whether a request comes from a page of the site at ``host_url`` (``scheme://host[:port]``).

    Fetch metadata (``Sec-Fetch-Site``) decides when the browser sends it, else ``Origin``, else
    ``Referer``. A request that carries none of them is not trusted. Use it to refuse
    cross-site state changes such as sign-out.
    """
    if sec_fetch_site is not None:
        return sec_fetch_site == "same-origin"
    source = origin or referer
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    return f"{parts.scheme}://{parts.netloc}" == host_url.rstrip("/")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (``name[:port]`` or ``[v6]:port``) is a loopback host."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    return name.strip("[]") in LOOPBACK_HOSTS


def insecure_cookie_message(host: str) -> Optional[str]:
    """The warning for a session cookie without ``Secure`` served on ``host`` (``None`` on loopback)."""
    if is_loopback(host):
        return None
    return (
        f"the session cookie is not Secure while serving {host!r}: it would travel over plain "
        "HTTP. Mark the session cookie Secure (and serve HTTPS)."
    )


def is_refusal(error: LogtoStorageError) -> bool:
    """Whether a storage error is the SDK's own refusal (``storage.cookie_too_large``), not an outage.

    An outage (Redis, a cache, a database out of reach) is answered 503; a refusal is a bug.
    """
    return isinstance(error.__cause__, LogtoException)


def wants_redirect(method: str, accept_html: bool) -> bool:
    """Whether a request whose session ended gets a redirect to sign in, rather than a 401.

    A browser navigating (``GET`` accepting HTML) is redirected; an API client, a script or a
    form post gets 401.
    """
    return method == "GET" and accept_html


def bearer_token(authorization: Optional[str]) -> Optional[str]:
    """Return the token of an ``Authorization`` header value.

    Returns ``None`` when the header is absent or uses another scheme than ``Bearer`` (the
    scheme is case-insensitive, RFC 7235), and ``""`` for a ``Bearer`` header without a token.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


NO_BEARER_TOKEN = "the request has no bearer token"


def no_bearer_token_error() -> LogtoInvalidTokenError:
    """The rejection of a request without a bearer token (``token.missing``, 401).

    Its challenge is a bare ``Bearer``: without credentials, RFC 6750 §3.1 sends no error code.
    """
    return LogtoInvalidTokenError(
        NO_BEARER_TOKEN, "token.missing", "invalid_token", NO_BEARER_TOKEN, 401, "missing", "Bearer"
    )


def access_token_error_body(error: LogtoAccessTokenError) -> dict[str, str]:
    """The JSON body answering a rejected bearer token: ``{"error", "error_description"}``."""
    return {
        "error": error.error or "invalid_token",
        "error_description": error.description or error.message,
    }


def missing_roles(
    claims: Mapping[str, Any], roles: Iterable[str], claim: str = "roles"
) -> Optional[LogtoInsufficientScopeError]:
    """The 403 for a token whose ``claim`` lacks one of ``roles``, or ``None`` when it has them all.

    Logto puts no roles in access tokens by itself: a custom JWT claims script adds them (for
    instance ``roles: context.user.roles.map((role) => role.name)``). A claim that is absent
    or not a list of strings holds no role.
    """
    value = claims.get(claim)
    held = {role for role in value if isinstance(role, str)} if isinstance(value, list) else set()
    missing = [role for role in roles if role not in held]
    if not missing:
        return None
    description = f"the token lacks the required role(s): {' '.join(missing)}"
    return LogtoInsufficientScopeError(
        description,
        "token.roles",
        "insufficient_scope",
        description,
        403,
        "roles",
        'Bearer error="insufficient_scope", error_description="{}"'.format(
            description.replace("\\", "\\\\").replace('"', '\\"')
        ),
    )


T = TypeVar("T")


def renamed_keyword(old: str, new: str, old_value: Optional[T], value: Optional[T]) -> Optional[T]:
    """The value of keyword ``new``, or of ``old``, its deprecated name (with a ``DeprecationWarning``).

    Raises:
        TypeError: both names were given.

    """
    if old_value is None:
        return value
    if value is not None:
        raise TypeError(f"pass {new}= only ({old}= is its deprecated name)")
    warnings.warn(f"{old}= is deprecated: use {new}=", DeprecationWarning, stacklevel=3)
    return old_value
