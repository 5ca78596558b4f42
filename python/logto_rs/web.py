"""Framework-neutral pieces of the web integrations (Flask, FastAPI/Starlette, Django).

Each integration moves requests, sessions and errors of its framework; the decisions live here
once: where a sign-in may return to, whether a request comes from the site itself, when a
session cookie is unsafe, and what a browser or an API client gets when its session has ended
(the bearer guard of APIs is :mod:`logto_rs.guard`).
"""

from __future__ import annotations

import warnings
from typing import Optional, TypeVar
from urllib.parse import urlsplit

from .errors import LogtoException, LogtoStorageError

__all__ = [
    "COOKIE_LIMIT",
    "LOOPBACK_HOSTS",
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
