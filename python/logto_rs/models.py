"""Pydantic v2 models of what logto-rs returns, and the scope enums.

Every model keeps claims it does not know (``extra="allow"``), so nothing the provider sends is
lost, and ``model_dump_json(exclude_unset=True)`` shows exactly what the provider sent.

The claim models agree with the Rust checks: a token that passes them always fits its model
(the checks verify the types of the claims the models declare; fractional NumericDates are
truncated to whole seconds, as the checks compare them).
"""

from __future__ import annotations

import functools
import math
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

__all__ = [
    "UserInfoScope",
    "ReservedScope",
    "ReservedResource",
    "InteractionMode",
    "FirstScreen",
    "UserClaims",
    "IdTokenClaims",
    "AccessTokenClaims",
    "ActorClaims",
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


def _whole_seconds(value: Any) -> Any:
    """A JSON NumericDate may be fractional (RFC 7519 §2); the checks compare whole seconds."""
    if isinstance(value, float) and math.isfinite(value):
        return math.trunc(value)
    return value


class UserClaims(BaseModel):
    """The user claims the ID token and the userinfo share (Logto's scope claims, §7).

    Unknown claims are kept as extra attributes.
    """

    model_config = ConfigDict(extra="allow", defer_build=True)

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

    @field_validator("created_at", "updated_at", mode="before")
    @classmethod
    def _numeric_dates(cls, value: Any) -> Any:
        return _whole_seconds(value)


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

    @field_validator("exp", "iat", "auth_time", mode="before")
    @classmethod
    def _whole_seconds(cls, value: Any) -> Any:
        return _whole_seconds(value)


class ActorClaims(BaseModel):
    """The actor of an impersonated or delegated token (the ``act`` claim, RFC 8693 §4.1).

    ``sub`` is who acts on behalf of the token's subject; a nested ``act`` names the actor
    before it (a chain of delegations). Other members are kept as extra attributes.
    """

    model_config = ConfigDict(extra="allow", defer_build=True)

    sub: str
    act: Optional[ActorClaims] = None


class AccessTokenClaims(BaseModel):
    """Claims of an access token (a JWT resource or organization token, or an opaque one).

    For an opaque token they are the provider's introspection answer, and ``aud`` is empty
    (the token names no API). ``act`` is set when the token is impersonated or delegated
    (``sub`` is the user the token acts for, ``act.sub`` who acts). Unknown claims (custom JWT
    claims, ``cnf``…) are kept as extra attributes.
    """

    model_config = ConfigDict(extra="allow", defer_build=True)

    iss: str
    sub: str
    aud: Union[str, list[str]]
    exp: int
    iat: int
    jti: Optional[str] = None
    scope: Optional[str] = None
    client_id: Optional[str] = None
    organization_id: Optional[str] = None
    act: Optional[ActorClaims] = None

    @field_validator("exp", "iat", mode="before")
    @classmethod
    def _whole_seconds(cls, value: Any) -> Any:
        return _whole_seconds(value)

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


# --- Machine tokens and personal access tokens ---------------------------------------------------

__all__ += ["MachineToken", "TokenExchangeResult", "PersonalAccessToken", "SubjectToken"]

_HIDDEN = "<hidden>"
T = TypeVar("T")


def without_inputs(error: ValidationError) -> ValidationError:
    """Return the same validation error with every input replaced.

    An input may be (or contain) a secret, whether the error is about it or about another
    field of the same dict.
    """
    details = [
        InitErrorDetails(type=item["type"], loc=item["loc"], input=_HIDDEN, ctx=item["ctx"])
        if "ctx" in item
        else InitErrorDetails(type=item["type"], loc=item["loc"], input=_HIDDEN)
        for item in error.errors(include_url=False)
    ]
    return ValidationError.from_exception_data(error.title, details, hide_input=True)


def _hiding_inputs(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def hiding(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except ValidationError as error:
            raise without_inputs(error) from None

    return hiding


class SecretHidingModel(BaseModel):
    """A model holding a secret, whose validation errors never carry their input.

    pydantic puts the input in every error (``errors()``, ``json()``) and, for a missing field,
    the whole input dict, secret included. Construction, ``model_validate*`` and assignment
    re-raise such errors with the inputs hidden; the field, the kind of problem and the message
    stay. Validating through a ``TypeAdapter`` bypasses this: wrap it with
    :func:`without_inputs`.
    """

    model_config = ConfigDict(hide_input_in_errors=True, defer_build=True)

    if not TYPE_CHECKING:  # keep pydantic's typed signatures for type checkers
        __init__ = _hiding_inputs(BaseModel.__init__)
        __setattr__ = _hiding_inputs(BaseModel.__setattr__)
        model_validate = classmethod(_hiding_inputs(BaseModel.model_validate.__func__))
        model_validate_json = classmethod(_hiding_inputs(BaseModel.model_validate_json.__func__))
        model_validate_strings = classmethod(_hiding_inputs(BaseModel.model_validate_strings.__func__))


def _from_epoch(value: Any, units_per_second: int) -> Any:
    """A number of seconds (or milliseconds) since the epoch as an aware UTC datetime."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / units_per_second, tz=timezone.utc)
    return value


class MachineToken(SecretHidingModel):
    """An access token issued without a user session (a machine-to-machine app's token).

    ``accessToken`` is left out of ``repr`` and ``str``.

    Attributes:
        accessToken: The token, for ``Authorization: Bearer``.
        tokenType: ``Bearer``.
        expiresAt: When it expires (aware, UTC).
        scopes: The granted scopes; nothing is granted that was not asked for.

    """

    accessToken: str = Field(repr=False)
    tokenType: str = "Bearer"
    expiresAt: datetime
    scopes: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _split_scope(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("scope"), str) and "scopes" not in data:
            data = {**data, "scopes": data["scope"].split()}
        return data

    @field_validator("expiresAt", mode="before")
    @classmethod
    def _epoch_seconds(cls, value: Any) -> Any:
        return _from_epoch(value, 1)

    @property
    def expiresIn(self) -> float:
        """Seconds of life left (negative once expired)."""
        return (self.expiresAt - datetime.now(timezone.utc)).total_seconds()


class TokenExchangeResult(MachineToken):
    """An access token from an RFC 8693 token exchange, acting as the subject token's user.

    The subject token is a personal access token, an access token the user presented to a
    service (delegation), or an impersonation subject token. Logto answers with the access
    token, its lifetime, scope and type only (no refresh or ID token).

    Attributes:
        issuedTokenType: ``urn:ietf:params:oauth:token-type:access_token`` (Logto may not say;
            it only ever issues access tokens here).

    """

    issuedTokenType: str = "urn:ietf:params:oauth:token-type:access_token"


class PersonalAccessToken(SecretHidingModel):
    """A user's personal access token, as Logto's Management API returns it.

    ``value`` is the secret token (``pat_…``) and is left out of ``repr`` and ``str``.
    Logto sends timestamps as epoch milliseconds; they are aware UTC datetimes here.

    Attributes:
        userId: The user it belongs to.
        name: Its name, unique per user.
        value: The token.
        createdAt: When it was created.
        expiresAt: When it expires; ``None``: never.
        tenantId: The tenant.

    """

    userId: str
    name: str
    value: str = Field(repr=False)
    createdAt: datetime
    expiresAt: Optional[datetime] = None
    tenantId: Optional[str] = None

    @field_validator("createdAt", "expiresAt", mode="before")
    @classmethod
    def _epoch_milliseconds(cls, value: Any) -> Any:
        return _from_epoch(value, 1000)

    @property
    def expired(self) -> bool:
        """Whether it has expired (an expired token can no longer be exchanged)."""
        return self.expiresAt is not None and self.expiresAt <= datetime.now(timezone.utc)


class SubjectToken(SecretHidingModel):
    """An impersonation subject token from Logto's Management API (``POST /api/subject-tokens``).

    Exchange it once, before it expires, with ``exchangeSubjectToken``: it is single-use.
    ``subjectToken`` is a secret and is left out of ``repr`` and ``str``.

    Attributes:
        subjectToken: The token (``sub_…``).
        expiresIn: Its lifetime in seconds, as Logto sent it (600).
        expiresAt: When it expires (aware, UTC).

    """

    subjectToken: str = Field(repr=False)
    expiresIn: int
    expiresAt: datetime

    @field_validator("expiresAt", mode="before")
    @classmethod
    def _epoch_seconds(cls, value: Any) -> Any:
        return _from_epoch(value, 1)


# --- The signed-in user's context ----------------------------------------------------------------

__all__ += ["LogtoContext"]


class LogtoContext(SecretHidingModel):
    """What ``getContext`` returns: the signed-in user's claims and tokens in one value.

    Signed out, ``is_authenticated`` is ``False`` and every other field is empty. The tokens are
    left out of ``repr`` and ``str``.

    Attributes:
        is_authenticated: Whether a user is signed in.
        claims: The ID token's claims.
        user_info: The userinfo, when asked for (``fetch_user_info=True``).
        access_tokens: An access token per resource of ``LogtoConfig.resources``, when asked for
            (``access_tokens=True``).
        organization_tokens: An organization token per organization of the ID token's
            ``organizations`` claim, when asked for (``organization_tokens=True``) and the
            ``urn:logto:scope:organizations`` scope is configured.

    """

    is_authenticated: bool = False
    claims: Optional[IdTokenClaims] = None
    user_info: Optional[UserInfoResponse] = None
    access_tokens: dict[str, str] = Field(default_factory=dict, repr=False)
    organization_tokens: dict[str, str] = Field(default_factory=dict, repr=False)
