"""``@require_access_token``: protect Flask API views with Logto access tokens.

Needs Flask (``pip install logto-rs[flask]``)::

    from logto_rs.flask import require_access_token

    app.config["LOGTO_ENDPOINT"] = "https://tenant.logto.app"
    app.config["LOGTO_AUDIENCE"] = "https://api.example.com"


    @app.get("/products")
    @require_access_token(scopes=["read:products"])
    def products():
        return {"user": g.access_token_claims.sub}

The guard reads ``Authorization: Bearer <token>``, verifies the token with one
:class:`~logto_rs.AccessTokenVerifier` per application (built from ``LOGTO_ENDPOINT`` and
``LOGTO_AUDIENCE`` on first use, or the one passed as ``verifier=``), and puts its
:class:`~logto_rs.AccessTokenClaims` on ``flask.g.access_token_claims``. A request without a
bearer token, or with a token that fails a check, is answered 401 (403 for a missing scope,
organization or role) with a JSON body ``{"error", "error_description"}`` and the RFC 6750
``WWW-Authenticate`` header. ``async def`` views are verified with the awaitable verifier. The
decisions are :mod:`logto_rs.guard`'s, the same in every framework.

If the keys cannot be fetched from Logto (:class:`~logto_rs.LogtoNetworkError` or
:class:`~logto_rs.LogtoResponseError`), that is an outage, not a bad token: the guard answers
503 with ``{"error": "temporarily_unavailable"}`` and ``Retry-After``, never 500 (pass
``onUnavailable`` to answer differently).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional, TypeVar, Union, cast

from flask import Response, current_app, g, jsonify, request

from .errors import LogtoAccessTokenError, LogtoConfigError, LogtoException
from .guard import (
    PROVIDER_OUTAGE,
    BearerRejection,
    BearerResult,
    bearer_token,
    check_bearer,
    check_bearer_async,
)
from .verifier import DEFAULT_ROLES_CLAIM, AccessTokenVerifier, Scopes, role_list, scope_list

__all__ = [
    "PROVIDER_OUTAGE",
    "VERIFIER_EXTENSION",
    "OrganizationId",
    "access_token_error_response",
    "bearer_token",
    "provider_unavailable_response",
    "require_access_token",
]

F = TypeVar("F", bound=Callable[..., Any])

OrganizationId = Union[str, Callable[[Mapping[str, Any]], Optional[str]], None]
"""The organization a view requires: an id, or a function of the view's arguments that returns
it (e.g. ``lambda args: args["org_id"]`` for ``/orgs/<org_id>/...``)."""

VERIFIER_EXTENSION = "logto_rs.access_token_verifier"
"""The ``app.extensions`` key of the application's verifier (set it to use your own)."""


def _response(rejection: BearerRejection) -> Response:
    response = jsonify(rejection.body)
    response.status_code = rejection.status
    response.headers.update(rejection.headers)
    return response


def provider_unavailable_response(error: LogtoException) -> Response:
    """Return the answer to a request that could not be checked because Logto is failing.

    503 with ``Retry-After`` and ``{"error": "temporarily_unavailable", "error_description"}``;
    the description names the error code only (no provider text).
    """
    return _response(BearerRejection(error))


def access_token_error_response(error: LogtoAccessTokenError) -> Response:
    """Return the guard's answer to a rejected request.

    The status is 401 or 403, the body ``{"error", "error_description"}``, and the
    ``WWW-Authenticate`` header comes from the error. Pass your own function as
    ``onError`` to answer differently.
    """
    return _response(BearerRejection(error))


def _app_verifier() -> AccessTokenVerifier:
    """The application's verifier, built once from its configuration."""
    extensions = current_app.extensions
    verifier = extensions.get(VERIFIER_EXTENSION)
    if verifier is None:
        endpoint = current_app.config.get("LOGTO_ENDPOINT")
        if not endpoint:
            raise LogtoConfigError(
                "require_access_token needs app.config['LOGTO_ENDPOINT'] and "
                "app.config['LOGTO_AUDIENCE'], or a verifier= argument",
                "config.invalid",
            )
        built = AccessTokenVerifier(endpoint, current_app.config.get("LOGTO_AUDIENCE"))
        verifier = extensions.setdefault(VERIFIER_EXTENSION, built)
    return cast(AccessTokenVerifier, verifier)


def require_access_token(
    scopes: Optional[Scopes] = None,
    *,
    organizationId: OrganizationId = None,
    roles: Optional[Iterable[str]] = None,
    roles_claim: str = DEFAULT_ROLES_CLAIM,
    verifier: Optional[AccessTokenVerifier] = None,
    onError: Optional[Callable[[LogtoAccessTokenError], Any]] = None,
    onUnavailable: Optional[Callable[[LogtoException], Any]] = None,
) -> Callable[[F], F]:
    """Protect a Flask view: it runs only for a request with a valid Logto access token.

    The token's claims are on ``flask.g.access_token_claims`` while the view runs.

    Args:
        scopes: Scopes the token must have for this view (added to the verifier's own).
        organizationId: The organization the token must be for: an id, or a function of the
            view's keyword arguments returning it. With a verifier without audience this
            also sets the audience (``urn:logto:organization:<id>``).
        roles: Roles the token must all hold in its ``roles_claim`` claim (403 otherwise).
            Logto puts roles in access tokens through a custom JWT claims script.
        roles_claim: The claim holding the roles (a list of names).
        verifier: The verifier to use; by default the application's, built from
            ``LOGTO_ENDPOINT`` and ``LOGTO_AUDIENCE`` on first use.
        onError: Makes the response for a rejected request (default:
            :func:`access_token_error_response`).
        onUnavailable: Makes the response when Logto cannot be reached (default:
            :func:`provider_unavailable_response`, 503).

    Returns:
        The decorator.

    """
    requirements: dict[str, Any] = {
        "scopes": scope_list(scopes),
        "roles": role_list(roles),
        "roles_claim": roles_claim,
    }
    refuse = onError or access_token_error_response
    unavailable = onUnavailable or provider_unavailable_response

    def organization(view_args: Mapping[str, Any]) -> Optional[str]:
        return organizationId(view_args) if callable(organizationId) else organizationId

    def answer(result: BearerResult) -> Optional[Any]:
        """The rejection's response, or ``None`` after putting the claims on ``g``."""
        if isinstance(result, BearerRejection):
            if result.unavailable:
                return unavailable(result.error)
            return refuse(cast(LogtoAccessTokenError, result.error))
        g.access_token_claims = result
        return None

    def decorator(view: F) -> F:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_guarded(*args: Any, **kwargs: Any) -> Any:
                result = await check_bearer_async(
                    verifier or _app_verifier(),
                    request.headers.get("Authorization"),
                    organization_id=organization(kwargs),
                    **requirements,
                )
                refusal = answer(result)
                return refusal if refusal is not None else await view(*args, **kwargs)

            return cast(F, async_guarded)

        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            result = check_bearer(
                verifier or _app_verifier(),
                request.headers.get("Authorization"),
                organization_id=organization(kwargs),
                **requirements,
            )
            refusal = answer(result)
            return refusal if refusal is not None else view(*args, **kwargs)

        return cast(F, guarded)

    return decorator
