"""Django REST framework: bearer-token authentication and scope, organization and role permissions.

::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["logto_rs.django.drf.LogtoTokenAuthentication"],
    }
    LOGTO = {..., "AUDIENCE": "https://api.example.com"}


    class Products(APIView):
        permission_classes = [HasScopes]
        required_scopes = ["read:products"]

        def get(self, request):
            return Response({"user": request.auth.sub})  # AccessTokenClaims

:class:`LogtoTokenAuthentication` verifies ``Authorization: Bearer …`` with the process's
:class:`~logto_rs.AccessTokenVerifier` (``LOGTO["ENDPOINT"]`` and ``LOGTO["AUDIENCE"]``).
``request.auth`` is the token's :class:`~logto_rs.AccessTokenClaims` and ``request.user`` a
:class:`LogtoTokenUser` (override :meth:`LogtoTokenAuthentication.get_user` to map it to a
Django user). A bad token is answered 401, a missing scope, organization or role 403, each with
the RFC 6750 ``WWW-Authenticate`` challenge the verifier chose, and the body ``{"error",
"error_description"}``. A request without a bearer token is left to the next authentication
class (and then 401 with a bare ``Bearer`` challenge from ``IsAuthenticated`` or
:class:`HasScopes`). If Logto cannot be reached for the keys, the answer is 503 with
``Retry-After``: an outage, not a bad token. The decisions are :mod:`logto_rs.guard`'s, the same
in every framework.

:class:`HasRoles` requires the view's ``required_roles`` in the token's ``roles_claim`` claim
(default ``roles``; Logto adds roles through a custom JWT claims script).

:class:`LogtoOrganizationTokenAuthentication` accepts organization tokens
(``aud: urn:logto:organization:<id>``) for the organization named by the view's URL keyword
``organization_url_kwarg`` (default ``organization_id``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from ..errors import LogtoException
from ..guard import RETRY_AFTER, BearerRejection, bearer_token, check_bearer, missing_token
from ..models import AccessTokenClaims
from ..verifier import DEFAULT_ROLES_CLAIM, AccessTokenVerifier
from . import conf

__all__ = [
    "HasOrganization",
    "HasRoles",
    "HasScopes",
    "LogtoOrganizationTokenAuthentication",
    "LogtoTokenAuthentication",
    "LogtoTokenUser",
    "TokenRejected",
]

_CHALLENGE = "_logto_challenge"
_TOKEN = "_logto_token"


class TokenRejected(exceptions.APIException):
    """A refused request, answered as the bearer guard decided.

    The status is 401/403 (with the verifier's challenge), or 503 with ``Retry-After`` while
    Logto is out of reach; the body is ``{"error", "error_description"}``.
    """

    def __init__(self, error: LogtoException) -> None:
        rejection = BearerRejection(error)
        super().__init__(rejection.body)
        self.status_code = rejection.status
        challenge = rejection.headers.get("WWW-Authenticate")
        if challenge is not None:
            self.auth_header = challenge
        if rejection.unavailable:
            self.wait = int(RETRY_AFTER)


class LogtoTokenUser:
    """``request.user`` of a request authenticated by an access token: its ``sub`` and claims."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, claims: AccessTokenClaims) -> None:
        self.claims = claims
        self.pk = self.id = self.username = claims.sub

    def __str__(self) -> str:
        return str(self.username)

    def __repr__(self) -> str:
        return f"LogtoTokenUser(sub={self.username!r})"

    def get_username(self) -> str:
        """The ``sub`` claim."""
        return str(self.username)


class LogtoTokenAuthentication(BaseAuthentication):
    """Authenticates ``Authorization: Bearer <Logto access token>`` for ``LOGTO["AUDIENCE"]``."""

    def verifier(self) -> AccessTokenVerifier:
        """The verifier (default: the process's, from ``LOGTO``)."""
        return conf.get_verifier()

    def organization_id(self, request: Request) -> Optional[str]:
        """The organization this request's token must be for (``None``: any, or none)."""
        return None

    def authenticate(self, request: Request) -> Optional[tuple[Any, AccessTokenClaims]]:
        """``(user, claims)`` for a valid bearer token; ``None`` without one."""
        authorization = request.META.get("HTTP_AUTHORIZATION")
        if bearer_token(authorization) is None:
            return None  # not a bearer request: the next authentication class decides
        result = check_bearer(self.verifier(), authorization, organization_id=self.organization_id(request))
        if isinstance(result, BearerRejection):
            if result.status != status.HTTP_401_UNAUTHORIZED:
                raise TokenRejected(result.error)
            setattr(request._request, _CHALLENGE, result.headers["WWW-Authenticate"])
            raise exceptions.AuthenticationFailed(result.body)
        setattr(request._request, _TOKEN, (authorization, self))
        return self.get_user(result), result

    def get_user(self, claims: AccessTokenClaims) -> Any:
        """``request.user`` for ``claims``: a :class:`LogtoTokenUser`, or a Django user.

        With ``LOGTO["TOKEN_USERS"]``, the Django user whose ``USERNAME_FIELD`` is ``sub``, found
        as :class:`~logto_rs.django.backends.LogtoBackend` finds it (created with
        ``LOGTO["TOKEN_CREATE_USERS"]``); an unknown or inactive user is refused (401).
        """
        if not conf.option("TOKEN_USERS"):
            return LogtoTokenUser(claims)
        from .backends import LogtoBackend  # the auth models: loaded once the apps are

        backend = LogtoBackend()
        user = backend.get_user_by_sub(claims.sub)
        if user is None and conf.option("TOKEN_CREATE_USERS"):
            user = backend.create_user(claims.sub, {"sub": claims.sub})
        if user is None or not backend.user_can_authenticate(user):
            raise exceptions.AuthenticationFailed(
                {"error": "invalid_token", "error_description": "unknown user"}
            )
        return user

    def authenticate_header(self, request: Request) -> str:
        """The 401 challenge: the verifier's for a rejected token, else the bare ``Bearer``."""
        challenge = getattr(request._request, _CHALLENGE, None)
        return str(challenge or missing_token().headers["WWW-Authenticate"])


class LogtoOrganizationTokenAuthentication(LogtoTokenAuthentication):
    """Authenticates organization tokens for the organization in the view's URL.

    The organization is the view's URL keyword ``organization_url_kwarg`` (an attribute of the
    view; default ``organization_id``).
    """

    def verifier(self) -> AccessTokenVerifier:
        """The process's verifier of organization tokens."""
        return conf.get_verifier(organizations=True)

    def organization_id(self, request: Request) -> Optional[str]:
        """The organization named in the URL."""
        context = request.parser_context or {}
        kwarg = getattr(context.get("view"), "organization_url_kwarg", "organization_id")
        organization = (context.get("kwargs") or {}).get(kwarg)
        if not organization:
            raise exceptions.PermissionDenied("this view names no organization")
        return str(organization)


def _reverify(
    request: Request,
    *,
    scopes: Iterable[str] = (),
    organization: Optional[str] = None,
    roles: Iterable[str] = (),
    roles_claim: str = DEFAULT_ROLES_CLAIM,
) -> bool:
    """Check the request's token against a view's requirements, with the verifier that accepted it."""
    held = getattr(request._request, _TOKEN, None)
    if held is None:
        # Not authenticated by a Logto token: DRF answers 401 (or 403 for another scheme).
        return False
    authorization, authentication = held
    result = check_bearer(
        authentication.verifier(),
        authorization,
        scopes=list(scopes),
        organization_id=organization or authentication.organization_id(request),
        roles=roles,
        roles_claim=roles_claim,
    )
    if isinstance(result, BearerRejection):
        raise TokenRejected(result.error)
    return True


class HasScopes(BasePermission):
    """The token has every scope in the view's ``required_scopes`` (403 ``insufficient_scope``)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        """Whether the request's token has the view's scopes."""
        return _reverify(request, scopes=getattr(view, "required_scopes", ()))


class HasRoles(BasePermission):
    """The token holds every role in the view's ``required_roles`` (403 ``insufficient_scope``).

    The roles are read from the token's claim named by the view's ``roles_claim`` (default
    ``roles``), a list of names that a custom JWT claims script adds in Logto.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        """Whether the request's token holds the view's roles."""
        return _reverify(
            request,
            roles=getattr(view, "required_roles", ()),
            roles_claim=getattr(view, "roles_claim", DEFAULT_ROLES_CLAIM),
        )


class HasOrganization(BasePermission):
    """The token is for the organization in the view's URL (``organization_url_kwarg``).

    For organization-scoped API resource tokens (``aud`` the API, ``organization_id`` claim);
    the view's ``required_scopes`` are checked too.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        """Whether the request's token is for the view's organization (and has its scopes)."""
        kwarg = getattr(view, "organization_url_kwarg", "organization_id")
        organization = (getattr(view, "kwargs", None) or {}).get(kwarg)
        if not organization:
            raise exceptions.PermissionDenied("this view names no organization")
        return _reverify(request, scopes=getattr(view, "required_scopes", ()), organization=str(organization))
