"""The official ``logto`` package's ``OidcCore`` module, for code that uses it directly.

The module keeps the official name, so ``from logto.OidcCore import OidcCore`` ports by changing
the package. ``LogtoClient.getOidcCore()`` returns an :class:`OidcCore` for the client's tenant.

What it has: the provider ``metadata`` (:class:`OidcProviderMetadata`), ``defaultScopes``, the
static helpers ``generateState``, ``generateCodeVerifier``, ``generateCodeChallenge``,
``decodeIdToken`` and ``decodeAccessToken`` (both without any verification, as in the official
package), and the awaitable ``getProviderMetadata`` and ``fetchUserInfo``.

What it refuses, with :class:`NotImplementedError`: ``fetchTokenByCode``,
``fetchTokenByRefreshToken`` and ``verifyIdToken``. Called directly, they would go around the
client: a refresh outside it rotates the refresh token the client has stored, and Logto revokes
the whole grant when the old one comes back. :meth:`LogtoClient.handleSignInCallback` exchanges
the code and verifies the ID token (with more checks than the official ``verifyIdToken``), and
:meth:`LogtoClient.getAccessToken` refreshes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any, ClassVar, NoReturn, Optional, Union

from pydantic import BaseModel, ConfigDict, ValidationError

from ._core import __version__
from .errors import LogtoNetworkError, LogtoResponseError, LogtoTimeoutError
from .models import AccessTokenClaims, IdTokenClaims, ReservedScope, UserInfoResponse, UserInfoScope

__all__ = ["OidcCore", "OidcProviderMetadata", "TokenResponse", "AccessToken", "Scope"]

Scope = Union[UserInfoScope, ReservedScope]
"""A scope enum member. (In the official package ``Scope`` is the enums' base class.)"""

_USER_AGENT = f"logto-rs/{__version__} (python)"


class OidcProviderMetadata(BaseModel):
    """The OpenID Connect discovery document (OpenID Connect Discovery §3).

    Fields the provider sends beyond these are kept as extra attributes.
    """

    model_config = ConfigDict(extra="allow", defer_build=True)

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    registration_endpoint: Optional[str] = None
    scopes_supported: list[str] = []
    response_types_supported: list[str]
    response_modes_supported: list[str] = []
    grant_types_supported: list[str] = []
    acr_values_supported: list[str] = []
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    id_token_encryption_alg_values_supported: list[str] = []
    id_token_encryption_enc_values_supported: list[str] = []
    userinfo_signing_alg_values_supported: list[str] = []
    userinfo_encryption_alg_values_supported: list[str] = []
    userinfo_encryption_enc_values_supported: list[str] = []
    request_object_signing_alg_values_supported: list[str] = []
    request_object_encryption_alg_values_supported: list[str] = []
    request_object_encryption_enc_values_supported: list[str] = []
    token_endpoint_auth_methods_supported: list[str] = []
    token_endpoint_auth_signing_alg_values_supported: list[str] = []
    display_values_supported: list[str] = []
    claim_types_supported: list[str] = []
    claims_supported: list[str] = []
    service_documentation: Optional[str] = None
    claims_locales_supported: list[str] = []
    ui_locales_supported: list[str] = []
    claims_parameter_supported: bool = False
    request_parameter_supported: bool = False
    request_uri_parameter_supported: bool = True
    require_request_uri_registration: bool = False
    op_policy_uri: Optional[str] = None
    op_tos_uri: Optional[str] = None
    end_session_endpoint: Optional[str] = None
    code_challenge_methods_supported: list[str] = []


class TokenResponse(BaseModel):
    """A token endpoint response, as the official package models it."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    access_token: str
    token_type: str
    expires_in: int
    refresh_token: Optional[str] = None
    id_token: Optional[str] = None

    def __repr_args__(self) -> Any:
        # Tokens never appear in a repr.
        return [
            (name, value) for name, value in super().__repr_args__() if name in ("token_type", "expires_in")
        ]


class AccessToken(BaseModel):
    """An access token and when the official client's cache stops using it (epoch seconds)."""

    token: str
    expiresAt: int

    def __repr_args__(self) -> Any:
        return [("expiresAt", self.expiresAt)]


def _urlsafe(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unverified_payload(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as error:
        raise LogtoResponseError("the token is not a JWT", code="response.unexpected") from error
    if not isinstance(claims, dict):
        raise LogtoResponseError("the token's payload is not a JSON object", code="response.unexpected")
    return claims


def _get_json(url: str, timeout: float, bearer: Optional[str] = None) -> Any:
    """GET ``url`` and parse its JSON body (blocking; run it in a worker thread)."""
    headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    import urllib.error  # here, not at import: ssl and http are slow to import
    import urllib.request

    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        raise LogtoResponseError(
            f"{url} answered HTTP {error.code}", code="response.unexpected", status=error.code
        ) from None
    except TimeoutError:
        raise LogtoTimeoutError(f"{url} did not answer within {timeout} s", code="network.timeout") from None
    except OSError as error:
        raise LogtoNetworkError(f"{url} is unreachable: {error}", code="network.error") from None
    try:
        return json.loads(body)
    except ValueError:
        raise LogtoResponseError(f"{url} did not answer JSON", code="response.unexpected") from None


class OidcCore:
    """The official SDK's OIDC helper for one provider (see the module's documentation).

    Args:
        metadata: The provider's discovery document, e.g. from :meth:`getProviderMetadata`.
        requestTimeout: Seconds allowed for one HTTP request.

    """

    defaultScopes: ClassVar[list[str]] = ["openid", "offline_access", "profile"]

    def __init__(self, metadata: OidcProviderMetadata, requestTimeout: float = 10.0) -> None:
        self.metadata = metadata
        self.requestTimeout = requestTimeout

    def __repr__(self) -> str:
        return f"OidcCore(issuer={self.metadata.issuer!r})"

    @staticmethod
    def generateState() -> str:
        """A random ``state`` (32 bytes, base64url)."""
        return _urlsafe(secrets.token_bytes(32))

    @staticmethod
    def generateCodeVerifier() -> str:
        """A random PKCE code verifier (32 bytes, base64url; RFC 7636 §4.1)."""
        return _urlsafe(secrets.token_bytes(32))

    @staticmethod
    def generateCodeChallenge(codeVerifier: str) -> str:
        """The S256 code challenge of ``codeVerifier`` (RFC 7636 §4.2)."""
        return _urlsafe(hashlib.sha256(codeVerifier.encode("ascii")).digest())

    @staticmethod
    def decodeIdToken(idToken: str) -> IdTokenClaims:
        """The claims of an ID token, WITHOUT verifying it (the client verifies every ID token)."""
        return IdTokenClaims.model_validate(_unverified_payload(idToken))

    @staticmethod
    def decodeAccessToken(accessToken: str) -> AccessTokenClaims:
        """The claims of a JWT access token, WITHOUT verifying it (see ``AccessTokenVerifier``)."""
        return AccessTokenClaims.model_validate(_unverified_payload(accessToken))

    @staticmethod
    async def getProviderMetadata(discoveryUrl: str, requestTimeout: float = 10.0) -> OidcProviderMetadata:
        """Fetch the discovery document at ``discoveryUrl``.

        Raises:
            LogtoNetworkError: the provider is unreachable (``LogtoTimeoutError``: too slow).
            LogtoResponseError: an HTTP error or a document that is not provider metadata.

        """
        import asyncio

        document = await asyncio.to_thread(_get_json, discoveryUrl, requestTimeout)
        try:
            return OidcProviderMetadata.model_validate(document)
        except ValidationError:
            raise LogtoResponseError(
                f"{discoveryUrl} is not an OpenID provider's metadata", code="response.unexpected"
            ) from None

    async def fetchUserInfo(self, accessToken: str) -> UserInfoResponse:
        """Fetch the userinfo that ``accessToken`` (an opaque token, ``resource=""``) grants.

        :meth:`LogtoClient.fetchUserInfo` does the same with the stored token and also checks
        that the ``sub`` is the signed-in user's.
        """
        import asyncio

        info = await asyncio.to_thread(
            _get_json, self.metadata.userinfo_endpoint, self.requestTimeout, accessToken
        )
        return UserInfoResponse.model_validate(info)

    async def fetchTokenByCode(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not provided: :meth:`LogtoClient.handleSignInCallback` exchanges the code."""
        raise NotImplementedError(
            "logto-rs exchanges the code in LogtoClient.handleSignInCallback, which also verifies "
            "the ID token and stores the tokens"
        )

    async def fetchTokenByRefreshToken(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not provided: :meth:`LogtoClient.getAccessToken` refreshes, once for all callers."""
        raise NotImplementedError(
            "logto-rs refreshes in LogtoClient.getAccessToken / getOrganizationToken: a refresh "
            "outside the client would rotate its refresh token, and Logto revokes the grant when "
            "the old one is used"
        )

    def verifyIdToken(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not provided: the client verifies every ID token it receives."""
        raise NotImplementedError(
            "logto-rs verifies every ID token in LogtoClient.handleSignInCallback and on refresh "
            "(signature, alg, iss, aud, azp, exp, iat, nonce)"
        )


_metadata_cache: dict[str, OidcProviderMetadata] = {}


async def oidc_core_for(endpoint: str, requestTimeout: float = 10.0) -> OidcCore:
    """An :class:`OidcCore` for the tenant at ``endpoint`` (discovery fetched once per endpoint)."""
    discovery_url = endpoint.rstrip("/") + "/oidc/.well-known/openid-configuration"
    metadata = _metadata_cache.get(discovery_url)
    if metadata is None:
        metadata = await OidcCore.getProviderMetadata(discovery_url, requestTimeout)
        _metadata_cache[discovery_url] = metadata
    return OidcCore(metadata, requestTimeout)
