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
bearer token, or with a token that fails a check, is answered 401 (403 for a missing scope or
organization) with a JSON body ``{"error", "error_description"}`` and the RFC 6750
``WWW-Authenticate`` header. ``async def`` views are verified with the awaitable verifier.

If the keys cannot be fetched from Logto (:class:`~logto_rs.LogtoNetworkError` or
:class:`~logto_rs.LogtoResponseError`), that is an outage, not a bad token: the guard answers
503 with ``{"error": "temporarily_unavailable"}`` and ``Retry-After``, never 500 (pass
``onUnavailable`` to answer differently).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any, Callable, Optional, TypeVar, Union, cast

from flask import Response, current_app, g, jsonify, request

from .errors import (
    LogtoAccessTokenError,
    LogtoConfigError,
    LogtoException,
    LogtoNetworkError,
    LogtoResponseError,
)
from .verifier import AccessTokenVerifier, Scopes, _scope_list
from .web import access_token_error_body, bearer_token, no_bearer_token_error

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

PROVIDER_OUTAGE = (LogtoNetworkError, LogtoResponseError)
"""The errors that mean Logto cannot be reached or answers garbage: an outage, answered 503."""


def provider_unavailable_response(error: LogtoException) -> Response:
    """Return the answer to a request that could not be checked because Logto is failing.

    503 with ``Retry-After: 5`` and ``{"error": "temporarily_unavailable", "error_description"}``;
    the description names the error code only (no provider text).
    """
    response = jsonify(
        {
            "error": "temporarily_unavailable",
            "error_description": f"the identity provider is unavailable ({error.code})",
        }
    )
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


def access_token_error_response(error: LogtoAccessTokenError) -> Response:
    """Return the guard's answer to a rejected request.

    The status is 401 or 403, the body ``{"error", "error_description"}``, and the
    ``WWW-Authenticate`` header comes from the error. Pass your own function as
    ``onError`` to answer differently.
    """
    response = jsonify(access_token_error_body(error))
    response.status_code = error.status or 401
    response.headers["WWW-Authenticate"] = error.www_authenticate
    return response


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
        verifier: The verifier to use; by default the application's, built from
            ``LOGTO_ENDPOINT`` and ``LOGTO_AUDIENCE`` on first use.
        onError: Makes the response for a rejected request (default:
            :func:`access_token_error_response`).
        onUnavailable: Makes the response when the keys cannot be fetched from Logto (default:
            :func:`provider_unavailable_response`, 503).

    Returns:
        The decorator.

    """
    scope_list = _scope_list(scopes)
    answer = onError or access_token_error_response
    unavailable = onUnavailable or provider_unavailable_response

    def organization(view_args: Mapping[str, Any]) -> Optional[str]:
        return organizationId(view_args) if callable(organizationId) else organizationId

    def decorator(view: F) -> F:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_guarded(*args: Any, **kwargs: Any) -> Any:
                token = bearer_token(request.headers.get("Authorization"))
                try:
                    if token is None:
                        raise no_bearer_token_error()
                    g.access_token_claims = await (verifier or _app_verifier()).verify(
                        token, scopes=scope_list, organizationId=organization(kwargs)
                    )
                except LogtoAccessTokenError as error:
                    return answer(error)
                except PROVIDER_OUTAGE as error:
                    return unavailable(error)
                return await view(*args, **kwargs)

            return cast(F, async_guarded)

        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            token = bearer_token(request.headers.get("Authorization"))
            try:
                if token is None:
                    raise no_bearer_token_error()
                g.access_token_claims = (verifier or _app_verifier()).blocking.verify(
                    token, scopes=scope_list, organizationId=organization(kwargs)
                )
            except LogtoAccessTokenError as error:
                return answer(error)
            except PROVIDER_OUTAGE as error:
                return unavailable(error)
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorator
