"""Pydantic v2 models of what logto-rs returns, and the scope enums.

Every model keeps claims it does not know (``extra="allow"``), so nothing the provider sends is
lost, and ``model_dump_json(exclude_unset=True)`` shows exactly what the provider sent.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict

__all__ = [
    "UserInfoScope",
    "ReservedScope",
    "ReservedResource",
    "InteractionMode",
    "FirstScreen",
    "UserClaims",
    "IdTokenClaims",
    "AccessTokenClaims",
    "UserInfoResponse",
]


class UserInfoScope(str, Enum):
    """Scopes that release user claims.

    Members are strings, so ``"email"`` and ``UserInfoScope.email`` are interchangeable.
    """

    openid = "openid"
    profile = "profile"
    email = "email"
    phone = "phone"
    address = "address"
    custom_data = "custom_data"
    customData = "custom_data"
    identities = "identities"
    roles = "roles"
    organizations = "urn:logto:scope:organizations"
    organization_roles = "urn:logto:scope:organization_roles"


class ReservedScope(str, Enum):
    """Scopes every sign-in requests."""

    openid = "openid"
    offline_access = "offline_access"
    profile = "profile"


class ReservedResource(str, Enum):
    """Logto's reserved resource indicators."""

    organizations = "urn:logto:resource:organizations"


InteractionMode = Literal["signIn", "signUp"]
"""The first screen of the sign-in experience (deprecated by Logto in favour of ``firstScreen``)."""

FirstScreen = Literal[
    "sign_in",
    "register",
    "reset_password",
    "identifier:sign_in",
    "identifier:register",
    "single_sign_on",
]
"""Logto's ``first_screen`` values."""


class UserClaims(BaseModel):
    """The user claims the ID token and the userinfo share (Logto's scope claims, §7).

    Unknown claims are kept as extra attributes.
    """

    model_config = ConfigDict(extra="allow")

    sub: str
    name: Optional[str] = None
    username: Optional[str] = None
    picture: Optional[str] = None
    email: Optional[str] = None
    email_verified: Optional[bool] = None
    phone_number: Optional[str] = None
    phone_number_verified: Optional[bool] = None
    created_at: Optional[int] = None
    updated_at: Optional[int] = None
    custom_data: Optional[Any] = None
    identities: Optional[dict[str, Any]] = None
    roles: Optional[list[str]] = None
    organizations: Optional[list[str]] = None
    organization_roles: Optional[list[str]] = None


class IdTokenClaims(UserClaims):
    """Claims of the ID token (OpenID Connect Core §2 plus Logto's scope claims)."""

    iss: str
    aud: Union[str, list[str]]
    exp: int
    iat: int
    at_hash: Optional[str] = None
    nonce: Optional[str] = None
    azp: Optional[str] = None
    sid: Optional[str] = None
    auth_time: Optional[int] = None


class AccessTokenClaims(BaseModel):
    """Claims of a JWT access token (a resource or organization token).

    Unknown claims (custom JWT claims, ``act``, ``cnf``…) are kept as extra attributes.
    """

    model_config = ConfigDict(extra="allow")

    iss: str
    sub: str
    aud: Union[str, list[str]]
    exp: int
    iat: int
    jti: Optional[str] = None
    scope: Optional[str] = None
    client_id: Optional[str] = None
    organization_id: Optional[str] = None

    @property
    def scopes(self) -> list[str]:
        """The granted scopes as a list."""
        return self.scope.split() if self.scope else []


class UserInfoResponse(UserClaims):
    """The userinfo of the signed-in user, with Logto's claims.

    Every claim the provider sends is kept, known or not.
    """

    sso_identities: Optional[list[dict[str, Any]]] = None
    organization_data: Optional[list[dict[str, Any]]] = None
