"""Django REST framework: bearer-token authentication and scope/organization permissions.

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
Django user). A bad token is answered 401, a missing scope or organization 403, each with the
RFC 6750 ``WWW-Authenticate`` challenge the verifier chose. A request without a bearer token is
left to the next authentication class (and then 401 ``Bearer`` from ``IsAuthenticated`` or
:class:`HasScopes`). If Logto's keys cannot be fetched, the network error propagates: an
outage, not a bad token.

:class:`LogtoOrganizationTokenAuthentication` accepts organization tokens
(``aud: urn:logto:organization:<id>``) for the organization named by the view's URL keyword
``organization_url_kwarg`` (default ``organization_id``).
"""

from __future__ import annotations

from typing import Any, Optional

from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from ..errors import LogtoAccessTokenError
from ..models import AccessTokenClaims
from ..verifier import AccessTokenVerifier
from ..web import bearer_token
from . import conf

__all__ = [
    "HasOrganization",
    "HasScopes",
    "LogtoOrganizationTokenAuthentication",
    "LogtoTokenAuthentication",
    "LogtoTokenUser",
    "TokenRejected",
]

_CHALLENGE = "_logto_challenge"
_TOKEN = "_logto_token"


def _body(error: LogtoAccessTokenError) -> dict[str, str]:
    return {"error": error.error or "invalid_token", "error_description": error.description or error.message}


class TokenRejected(exceptions.APIException):
    """A rejected bearer token: the verifier's status (401/403), error and challenge."""

    def __init__(self, error: LogtoAccessTokenError) -> None:
        super().__init__(_body(error))
        self.status_code = error.status or status.HTTP_401_UNAUTHORIZED
        self.auth_header = error.www_authenticate


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

    realm = "api"

    def verifier(self) -> AccessTokenVerifier:
        """The verifier (default: the process's, from ``LOGTO``)."""
        return conf.get_verifier()

    def organization_id(self, request: Request) -> Optional[str]:
        """The organization this request's token must be for (``None``: any, or none)."""
        return None

    def authenticate(self, request: Request) -> Optional[tuple[Any, AccessTokenClaims]]:
        """``(user, claims)`` for a valid bearer token; ``None`` without one."""
        token = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if token is None:
            return None
        try:
            claims = self.verifier().blocking.verify(token, organizationId=self.organization_id(request))
        except LogtoAccessTokenError as error:
            setattr(request._request, _CHALLENGE, error.www_authenticate)
            if error.status == status.HTTP_403_FORBIDDEN:
                raise TokenRejected(error) from None
            raise exceptions.AuthenticationFailed(_body(error)) from None
        setattr(request._request, _TOKEN, (token, self))
        return self.get_user(claims), claims

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
        """The 401 challenge: the verifier's for a rejected token, else ``Bearer realm=…``."""
        challenge = getattr(request._request, _CHALLENGE, None)
        return challenge or f'Bearer realm="{self.realm}"'


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


def _reverify(request: Request, scopes: list[str], organization: Optional[str]) -> bool:
    """Check the request's token for ``scopes``/``organization`` with the verifier that accepted it."""
    held = getattr(request._request, _TOKEN, None)
    if held is None:
        # Not authenticated by a Logto token: DRF answers 401 (or 403 for another scheme).
        return False
    token, authentication = held
    try:
        authentication.verifier().blocking.verify(
            token, scopes=scopes, organizationId=organization or authentication.organization_id(request)
        )
    except LogtoAccessTokenError as error:
        raise TokenRejected(error) from None
    return True


class HasScopes(BasePermission):
    """The token has every scope in the view's ``required_scopes`` (403 ``insufficient_scope``)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        """Whether the request's token has the view's scopes."""
        scopes = list(getattr(view, "required_scopes", ()))
        return _reverify(request, scopes, None)


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
        return _reverify(request, list(getattr(view, "required_scopes", ())), str(organization))
