"""The exception hierarchy of logto-rs, rooted at :class:`LogtoException`.

Every exception carries a stable machine-readable ``code`` (``config.invalid``,
``network.timeout``, ``oauth.invalid_grant``, ``token.nonce``, ``callback.state_mismatch``…) and,
where the provider sent them, the OAuth ``error``, ``description`` and HTTP ``status``. Token
validation errors name the failed ``check``. No message or repr ever contains a token, a code
or a secret: the Rust core builds messages from the failed check, never from the value. Every
text attribute is one printable line (control characters escaped), so logging an exception can
never split or forge a log line.
"""

from __future__ import annotations

from typing import Any, Optional

_LIMIT = 2048


def _one_line(text: Optional[str]) -> Optional[str]:
    """Return ``text`` as one printable line of at most 2048 characters.

    Every non-printable character (newlines, terminal escapes, bidi controls) is written as an
    escape, so a message can never break a log line or forge one.
    """
    if text is None or (text.isprintable() and len(text) <= _LIMIT):
        return text
    escaped = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:_LIMIT])
    return escaped + ("…" if len(text) > _LIMIT else "")


__all__ = [
    "LogtoException",
    "LogtoConfigError",
    "LogtoNetworkError",
    "LogtoTimeoutError",
    "LogtoResponseError",
    "LogtoOAuthError",
    "LogtoInvalidGrantError",
    "LogtoTokenValidationError",
    "LogtoCallbackError",
    "LogtoAuthorizationError",
    "LogtoNotAuthenticatedError",
    "LogtoStorageError",
    # Access tokens presented to an API.
    "LogtoAccessTokenError",
    "LogtoInvalidTokenError",
    "LogtoInsufficientScopeError",
]


class LogtoException(Exception):
    """Base class of every error raised by logto-rs.

    Attributes:
        message: Human-readable description (never contains a secret).
        code: Stable machine-readable code, e.g. ``oauth.invalid_grant``.
        error: The OAuth ``error`` sent by the provider, if any.
        description: The OAuth ``error_description`` sent by the provider, if any.
        status: The HTTP status of the provider's answer, if any.
        check: For token validation errors, the failed check (``signature``, ``iss``…).

    """

    def __init__(
        self,
        message: str,
        code: Optional[str] = None,
        error: Optional[str] = None,
        description: Optional[str] = None,
        status: Optional[int] = None,
        check: Optional[str] = None,
    ) -> None:
        message = _one_line(message) or ""
        super().__init__(message)
        self.message = message
        self.code = _one_line(code) or "logto.error"
        self.error = _one_line(error)
        self.description = _one_line(description)
        self.status = status
        self.check = check

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (self.message, self.code, self.error, self.description, self.status, self.check),
        )


class LogtoConfigError(LogtoException):
    """The configuration or an argument is invalid (``config.invalid``)."""


class LogtoNetworkError(LogtoException):
    """The provider could not be reached or its answer could not be read (``network.error``)."""


class LogtoTimeoutError(LogtoNetworkError):
    """No complete answer arrived within the configured timeout (``network.timeout``)."""


class LogtoResponseError(LogtoException):
    """The provider answered neither a success nor an OAuth error (``response.unexpected``).

    For example a 5xx page, HTML instead of JSON, or a malformed document.
    """


class LogtoOAuthError(LogtoException):
    """The provider answered with an OAuth error (``oauth.<error>``).

    See ``error``, ``description`` and ``status``.
    """


class LogtoInvalidGrantError(LogtoOAuthError):
    """The provider rejected a code or refresh token (``oauth.invalid_grant``).

    For a refresh token this means the session is over: the user must sign in again.
    """


class LogtoTokenValidationError(LogtoException):
    """A token failed verification; ``check`` names the failed check (``token.<check>``)."""


class LogtoCallbackError(LogtoException):
    """The sign-in callback was rejected (``callback.<reason>``).

    No sign-in session, another redirect URI, a missing or forged state, no code.
    """


class LogtoAuthorizationError(LogtoCallbackError):
    """The provider redirected back with an error (``callback.authorization_error``).

    For example ``access_denied``; see ``error`` and ``description``.
    """


class LogtoNotAuthenticatedError(LogtoException):
    """The call needs a signed-in user and there is none (``not_authenticated``)."""


class LogtoStorageError(LogtoException):
    """The storage raised; the original exception is the ``__cause__`` (``storage.error``)."""


# --- Sealed (encrypted) cookie sessions ---------------------------------------------------------

__all__ += ["LogtoSealError"]


class LogtoSealError(LogtoException):
    """A sealed (encrypted) cookie did not open (``seal.<reason>``).

    ``seal.malformed`` (not a sealed value), ``seal.unknown_key`` (sealed with a key no longer
    configured), ``seal.invalid`` (altered, forged, or sealed for another cookie) or
    ``seal.expired``. The message never contains the value or a key. The session interfaces of
    :mod:`logto_rs.sessions` answer it with an empty session.
    """


# --- Machine tokens and the Management API -----------------------------------------------------

__all__ += [
    "LogtoGrantNotAllowedError",
    "LogtoApiError",
    "LogtoApiInvalidInputError",
    "LogtoApiAuthError",
    "LogtoApiNotFoundError",
    "LogtoApiConflictError",
]


class LogtoGrantNotAllowedError(LogtoOAuthError):
    """The application may not use the grant it asked for (``<grant>.not_allowed``).

    ``token_exchange.not_allowed``: enable token exchange for the app (Logto Console, the
    application's "Allow token exchange"). ``client_credentials.not_allowed``: the app is not a
    machine-to-machine app. ``error``, ``description`` and ``status`` are the provider's answer.
    """


class LogtoApiError(LogtoException):
    """Logto's Management API or Account API answered an error (``api.<Logto code>``).

    ``error`` is Logto's code (e.g. ``entity.not_found``), ``description`` its message and
    ``status`` the HTTP status. Subclasses name the common cases.
    """


class LogtoApiInvalidInputError(LogtoApiError):
    """400: the request was invalid, e.g. an ``expiresAt`` that is not in the future."""


class LogtoApiAuthError(LogtoApiError):
    """401 or 403: the token was refused, or the app lacks Management API access (scope ``all``)."""


class LogtoApiNotFoundError(LogtoApiError):
    """404: what the call names does not exist (a user, a role, a personal access token…)."""


class LogtoApiConflictError(LogtoApiError):
    """409 or 422: the name is already used, e.g. by another personal access token of the user."""


# --- Access tokens presented to an API (AccessTokenVerifier) -------------------------------------


class LogtoAccessTokenError(LogtoTokenValidationError):
    """A bearer token presented to your API was rejected (``token.<check>``).

    Raised by :class:`~logto_rs.AccessTokenVerifier`. Answer the request with ``status`` and
    the ``WWW-Authenticate`` header ``www_authenticate`` (RFC 6750 §3); ``error`` and
    ``description`` make a JSON body. No attribute contains the token.

    Attributes:
        status: ``401`` (:class:`LogtoInvalidTokenError`) or ``403``
            (:class:`LogtoInsufficientScopeError`).
        error: ``invalid_token`` or ``insufficient_scope``.
        description: The failed check in words.
        check: The failed check: ``malformed``, ``alg``, ``typ``, ``kid``, ``signature``,
            ``iss``, ``aud``, ``claims``, ``exp``, ``iat``, ``nbf``, ``organization_id``,
            ``scope``.
        www_authenticate: The ``WWW-Authenticate`` response header value, e.g.
            ``Bearer error="invalid_token", error_description="the token has expired (exp)"``.

    """

    def __init__(
        self,
        message: str,
        code: Optional[str] = None,
        error: Optional[str] = None,
        description: Optional[str] = None,
        status: Optional[int] = None,
        check: Optional[str] = None,
        www_authenticate: Optional[str] = None,
    ) -> None:
        super().__init__(message, code, error, description, status, check)
        self.www_authenticate = www_authenticate or "Bearer"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (
                self.message,
                self.code,
                self.error,
                self.description,
                self.status,
                self.check,
                self.www_authenticate,
            ),
        )


class LogtoInvalidTokenError(LogtoAccessTokenError):
    """The token is missing, malformed, forged, expired or not for this API (401, ``invalid_token``)."""


class LogtoInsufficientScopeError(LogtoAccessTokenError):
    """The token is valid but lacks a required scope or organization (403, ``insufficient_scope``).

    For a missing scope, ``www_authenticate`` lists the scopes the resource requires.
    """


# --- Device sign-in (scripts and command lines) --------------------------------------------------

__all__ += ["LogtoDeviceSignInError", "LogtoDeviceSignInDeniedError", "LogtoDeviceCodeExpiredError"]


class LogtoDeviceSignInError(LogtoOAuthError):
    """A device sign-in ended without tokens; start a new one to try again.

    Raised while waiting for the person to approve (``oauth.access_denied`` or
    ``oauth.expired_token``); ``error``, ``description`` and ``status`` are the provider's answer.
    """


class LogtoDeviceSignInDeniedError(LogtoDeviceSignInError):
    """The person denied the device sign-in on the verification page (``oauth.access_denied``)."""


class LogtoDeviceCodeExpiredError(LogtoDeviceSignInError):
    """The device code expired before the person approved the sign-in (``oauth.expired_token``)."""


# --- Webhooks (deliveries from Logto) -------------------------------------------------------------

__all__ += ["LogtoWebhookError"]


class LogtoWebhookError(LogtoException):
    """A webhook delivery was refused; nothing was processed.

    ``code`` says why: ``webhook.signature`` (no valid ``logto-signature-sha-256``),
    ``webhook.malformed`` (not a JSON event), ``webhook.stale`` (``createdAt`` outside the
    accepted window) or ``webhook.too_large`` (a body over 64 KiB). The message never quotes
    the body or the signature.
    """
