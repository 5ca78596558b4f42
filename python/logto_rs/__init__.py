"""logto-rs: the Logto (OpenID Connect) client for Python, with a Rust core.

Drop-in for the official SDK: ``from logto_rs import LogtoClient, LogtoConfig, Storage``. Every
name the official ``logto`` package exports is here too, including its ``OidcCore`` and
``utilities`` modules.
"""

from ._core import __version__
from .client import BlockingLogtoClient, LogtoClient
from .config import LogtoConfig
from .errors import (
    LogtoApiAuthError,
    LogtoApiConflictError,
    LogtoApiError,
    LogtoApiInvalidInputError,
    LogtoApiNotFoundError,
    LogtoAuthorizationError,
    LogtoCallbackError,
    LogtoConfigError,
    LogtoDeviceCodeExpiredError,
    LogtoDeviceSignInDeniedError,
    LogtoDeviceSignInError,
    LogtoException,
    LogtoGrantNotAllowedError,
    LogtoInvalidGrantError,
    LogtoNetworkError,
    LogtoNotAuthenticatedError,
    LogtoOAuthError,
    LogtoResponseError,
    LogtoStorageError,
    LogtoTimeoutError,
    LogtoTokenValidationError,
)
from .machine import (
    BlockingLogtoM2MClient,
    BlockingManagementApi,
    LogtoM2MClient,
    LogtoM2MConfig,
    ManagementApi,
    exchange_personal_access_token,
    exchange_personal_access_token_blocking,
)
from .models import (
    AccessTokenClaims,
    ActorClaims,
    FirstScreen,
    IdTokenClaims,
    InteractionMode,
    LogtoContext,
    MachineToken,
    PersonalAccessToken,
    ReservedResource,
    ReservedScope,
    SubjectToken,
    TokenExchangeResult,
    UserInfoResponse,
    UserInfoScope,
)
from .storage import MemoryStorage, PersistKey, Storage

# isort: split
# Verifying the access tokens that reach an API.
from .errors import LogtoAccessTokenError, LogtoInsufficientScopeError, LogtoInvalidTokenError
from .verifier import AccessTokenVerifier, BlockingAccessTokenVerifier

# isort: split
# The rest of the official package's names: its OidcCore and utilities modules, and its models.
from . import OidcCore, utilities
from .OidcCore import AccessToken, OidcProviderMetadata, Scope, TokenResponse

__all__ = [
    "__version__",
    "AccessTokenClaims",
    "ActorClaims",
    "BlockingLogtoClient",
    "FirstScreen",
    "IdTokenClaims",
    "InteractionMode",
    "LogtoAuthorizationError",
    "LogtoCallbackError",
    "LogtoClient",
    "LogtoContext",
    "LogtoConfig",
    "LogtoConfigError",
    "LogtoException",
    "LogtoInvalidGrantError",
    "LogtoNetworkError",
    "LogtoNotAuthenticatedError",
    "LogtoOAuthError",
    "LogtoResponseError",
    "LogtoStorageError",
    "LogtoTimeoutError",
    "LogtoTokenValidationError",
    "MemoryStorage",
    "PersistKey",
    "ReservedResource",
    "ReservedScope",
    "Storage",
    "UserInfoResponse",
    "UserInfoScope",
    # Verifying the access tokens that reach an API.
    "AccessTokenVerifier",
    "BlockingAccessTokenVerifier",
    "LogtoAccessTokenError",
    "LogtoInsufficientScopeError",
    "LogtoInvalidTokenError",
]

# Machine tokens, personal access tokens.
__all__ += [
    "BlockingLogtoM2MClient",
    "BlockingManagementApi",
    "LogtoApiAuthError",
    "LogtoApiConflictError",
    "LogtoApiError",
    "LogtoApiInvalidInputError",
    "LogtoApiNotFoundError",
    "LogtoGrantNotAllowedError",
    "LogtoM2MClient",
    "LogtoM2MConfig",
    "MachineToken",
    "ManagementApi",
    "PersonalAccessToken",
    "TokenExchangeResult",
    "exchange_personal_access_token",
    "exchange_personal_access_token_blocking",
]

# Token exchange between services: delegation and impersonation.
__all__ += ["SubjectToken"]

# Device sign-in for command lines and headless scripts (``logto_rs.device``).
__all__ += ["LogtoDeviceCodeExpiredError", "LogtoDeviceSignInDeniedError", "LogtoDeviceSignInError"]

# The rest of the official package's names.
__all__ += ["AccessToken", "OidcCore", "OidcProviderMetadata", "Scope", "TokenResponse", "utilities"]
