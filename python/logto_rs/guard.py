"""The bearer guard: what an API answers a request, whatever its framework.

Given the request's ``Authorization`` header and what a route requires (scopes, an
organization, roles in a claim), :func:`check_bearer` (blocking, for Flask and Django) and
:func:`check_bearer_async` (FastAPI, ``async def`` views) verify the token with an
:class:`~logto_rs.AccessTokenVerifier` and return its :class:`~logto_rs.AccessTokenClaims`, or a
:class:`BearerRejection`: the status, the JSON body and the headers to answer with. Both run one
definition (a generator over :mod:`logto_rs._steps`).

- No bearer token: 401 with a bare ``Bearer`` challenge (RFC 6750 §3.1).
- A token that fails a check: 401 ``invalid_token``; a missing scope, organization or role: 403
  ``insufficient_scope``. The ``WWW-Authenticate`` value comes from the Rust verifier, like the
  body's ``error`` and ``error_description``.
- Logto out of reach, or answering garbage, while the keys or an introspection are needed: 503
  ``temporarily_unavailable`` with ``Retry-After``, an outage and not a bad token.

The Flask decorator, the FastAPI dependency and the Django REST framework classes only turn a
rejection into their framework's answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional, Union

from . import _driver
from ._core import CoreVerifier
from ._flows import OUTAGE, RETRY_AFTER
from ._steps import Steps, drive_async, drive_blocking
from .errors import LogtoAccessTokenError, LogtoException
from .models import AccessTokenClaims
from .verifier import (
    DEFAULT_ROLES_CLAIM,
    AccessTokenVerifier,
    BlockingAccessTokenVerifier,
    Run,
    Scopes,
    verify_steps,
)

__all__ = [
    "PROVIDER_OUTAGE",
    "RETRY_AFTER",
    "BearerRejection",
    "BearerResult",
    "Verifier",
    "access_token_error_body",
    "bearer_token",
    "check_bearer",
    "check_bearer_async",
    "missing_token",
]

PROVIDER_OUTAGE = OUTAGE
"""The errors that mean Logto cannot be reached or answers garbage: an outage, answered 503
with ``Retry-After`` (``RETRY_AFTER`` seconds), as every browser flow answers one."""


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


def access_token_error_body(error: LogtoAccessTokenError) -> dict[str, str]:
    """The JSON body answering a rejected bearer token: ``{"error", "error_description"}``."""
    return {
        "error": error.error or "invalid_token",
        "error_description": error.description or error.message,
    }


class BearerRejection:
    """Why a request was refused, and the answer: status, JSON body and headers.

    ``error`` is the exception behind it: a :class:`~logto_rs.LogtoAccessTokenError` (401/403,
    ``headers`` holds its ``WWW-Authenticate``), or an outage of ``PROVIDER_OUTAGE`` (503,
    ``headers`` holds ``Retry-After``; the body names the error code only, no provider text).
    """

    __slots__ = ("body", "error", "headers", "status")

    def __init__(self, error: LogtoException) -> None:
        """Make the answer to ``error``: a rejected token, or an outage of ``PROVIDER_OUTAGE``."""
        self.error = error
        if isinstance(error, LogtoAccessTokenError):
            self.status: int = error.status or 401
            self.body: dict[str, str] = access_token_error_body(error)
            self.headers: dict[str, str] = {"WWW-Authenticate": error.www_authenticate}
        else:
            self.status = 503
            self.body = {
                "error": "temporarily_unavailable",
                "error_description": f"the identity provider is unavailable ({error.code})",
            }
            self.headers = {"Retry-After": RETRY_AFTER}

    @property
    def unavailable(self) -> bool:
        """Whether this is an outage (503), not a refused token."""
        return self.status == 503

    def __repr__(self) -> str:
        return f"BearerRejection(status={self.status}, code={self.error.code!r})"


def missing_token() -> BearerRejection:
    """The answer to a request without a bearer token: 401 with a bare ``Bearer`` challenge.

    For a framework that asks for a challenge before any token was checked (Django REST
    framework's ``authenticate_header``); no verifier is needed.
    """
    return BearerRejection(CoreVerifier.rejection("missing"))


BearerResult = Union[AccessTokenClaims, BearerRejection]
"""What the guard decides: the token's claims, or the rejection to answer with."""

Verifier = Union[AccessTokenVerifier, BlockingAccessTokenVerifier]
"""Either face of a verifier: the guard runs the same checks with both."""


def _guard_steps(
    verifier: Verifier,
    run: Run,
    authorization: Optional[str],
    scopes: Optional[Scopes],
    organization_id: Optional[str],
    roles: Optional[Iterable[str]],
    roles_claim: str,
) -> Steps[BearerResult]:
    try:
        claims: AccessTokenClaims = yield from verify_steps(
            verifier,
            run,
            bearer_token(authorization),
            scopes=scopes,
            organization_id=organization_id,
            roles=roles,
            roles_claim=roles_claim,
        )
    except (LogtoAccessTokenError, *PROVIDER_OUTAGE) as error:
        return BearerRejection(error)
    return claims


def check_bearer(
    verifier: Verifier,
    authorization: Optional[str],
    *,
    scopes: Optional[Scopes] = None,
    organization_id: Optional[str] = None,
    roles: Optional[Iterable[str]] = None,
    roles_claim: str = DEFAULT_ROLES_CLAIM,
) -> BearerResult:
    """Decide a request by its ``Authorization`` header, blocking: its claims or a rejection.

    Args:
        verifier: The verifier (an :class:`~logto_rs.AccessTokenVerifier` or its blocking twin).
        authorization: The ``Authorization`` header value (``None`` when absent).
        scopes: Scopes the token must have (added to the verifier's own).
        organization_id: The organization the token must be for (with a verifier without
            audience this also sets the audience, ``urn:logto:organization:<id>``).
        roles: Roles the token must all hold in its ``roles_claim`` claim.
        roles_claim: The claim holding the roles (a list of names).

    Returns:
        The token's claims, or the :class:`BearerRejection` to answer with.

    Raises:
        LogtoConfigError: an invalid scope, or no audience and no organization.

    """
    return drive_blocking(
        _guard_steps(
            verifier, _driver.run_blocking, authorization, scopes, organization_id, roles, roles_claim
        )
    )


async def check_bearer_async(
    verifier: Verifier,
    authorization: Optional[str],
    *,
    scopes: Optional[Scopes] = None,
    organization_id: Optional[str] = None,
    roles: Optional[Iterable[str]] = None,
    roles_claim: str = DEFAULT_ROLES_CLAIM,
) -> BearerResult:
    """:func:`check_bearer` on the event loop: it yields only while the keys are fetched."""
    return await drive_async(
        _guard_steps(verifier, _driver.run, authorization, scopes, organization_id, roles, roles_claim)
    )
