//! The error taxonomy of the client.
//!
//! Every failure is one [`Error`] variant that names what went wrong (the failed check, the
//! endpoint, the OAuth error code) and never carries a token, a code or a secret in its message.
//! [`Error::code`] gives a stable machine-readable code for each variant; the Python binding maps
//! variants to the `LogtoException` hierarchy in one place (`src/python/errors.rs`).

use std::fmt;
use std::time::Duration;

/// A boxed error from a storage backend or a transport, kept as the `source` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The provider endpoint a request went to; names the endpoint in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// `/.well-known/openid-configuration`.
    Discovery,
    /// The JWKS (`jwks_uri`).
    Jwks,
    /// The token endpoint.
    Token,
    /// The userinfo endpoint.
    UserInfo,
    /// The token revocation endpoint.
    Revocation,
    /// Logto's Management API.
    ManagementApi,
    /// Logto's Account API (`/api/my-account`, `/api/verifications`), for the signed-in user.
    AccountApi,
    /// The device authorization endpoint (RFC 8628).
    DeviceAuthorization,
    /// The token introspection endpoint (RFC 7662).
    Introspection,
}

impl Endpoint {
    /// A short lowercase name, used in messages and error codes.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Jwks => "jwks",
            Self::Token => "token",
            Self::UserInfo => "userinfo",
            Self::Revocation => "revocation",
            Self::ManagementApi => "management_api",
            Self::AccountApi => "account_api",
            Self::DeviceAuthorization => "device_authorization",
            Self::Introspection => "introspection",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth 2.0 error response (RFC 6749 §5.2) from the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The endpoint that answered.
    pub endpoint: Endpoint,
    /// HTTP status code.
    pub status: u16,
    /// The `error` code, e.g. `invalid_grant`.
    pub error: String,
    /// The `error_description`, when the provider sent one.
    pub description: Option<String>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} endpoint answered HTTP {} {}",
            self.endpoint, self.status, self.error
        )?;
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

/// An error answer in Logto's own format, `{code, message}` (the Management API's, and any Logto
/// route that is not OAuth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The endpoint that answered.
    pub endpoint: Endpoint,
    /// HTTP status code.
    pub status: u16,
    /// Logto's error code, e.g. `entity.not_found`.
    pub code: String,
    /// Logto's message.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} answered HTTP {} {}: {}",
            self.endpoint, self.status, self.code, self.message
        )
    }
}

/// Which check a JWT (ID token or access token) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Not three base64url segments with JSON header and payload.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not on the allow-list of asymmetric algorithms (or is `none`/HS*).
    #[error("algorithm {0:?} is not allowed")]
    Algorithm(String),
    /// The header has `crit`: it names JWS extensions that must be understood, and this client
    /// understands none (RFC 7515 §4.1.11).
    #[error("the token's header names critical extensions (crit) this client does not support")]
    CriticalHeader,
    /// No key in the provider's JWKS matches the token's `kid` (after one refetch).
    #[error("no signing key matches the token's key id")]
    UnknownKey,
    /// The signature does not verify with the provider's key.
    #[error("the signature is invalid")]
    Signature,
    /// `iss` is not the provider's issuer.
    #[error("the issuer (iss) is not the provider's")]
    Issuer,
    /// `aud` does not contain the expected audience.
    #[error("the audience (aud) does not contain the expected value")]
    Audience,
    /// `azp` is present (or required) and is not this application.
    #[error("the authorized party (azp) is not this application")]
    AuthorizedParty,
    /// `exp` is in the past (beyond the clock tolerance).
    #[error("the token has expired (exp)")]
    Expired,
    /// `iat` is in the future (beyond the clock tolerance).
    #[error("the token was issued in the future (iat)")]
    IssuedInFuture,
    /// `nbf` is in the future (beyond the clock tolerance).
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// `nonce` differs from the one sent with the authorization request.
    #[error("the nonce does not match the sign-in request's")]
    Nonce,
    /// A required claim is missing or has the wrong type.
    #[error("claim {0:?} is missing or has the wrong type")]
    Claim(&'static str),
    /// The token lacks a required scope.
    #[error("the token lacks the required scope(s): {0}")]
    Scope(String),
    /// The userinfo `sub` differs from the ID token's.
    #[error("the userinfo subject (sub) differs from the ID token's")]
    Subject,
    /// The header's `typ` is not `at+jwt`: not a JWT access token (RFC 9068 §4).
    #[error("the token is not a JWT access token (typ)")]
    TokenType,
    /// The token is for another organization than the one required (`organization_id`, or the
    /// organization of an `urn:logto:organization:<id>` audience).
    #[error("the token is not for the required organization")]
    Organization,
    /// The header's `typ` is not `logout+jwt`: not a logout token (Back-Channel Logout §2.4).
    #[error("the token is not a logout token (typ)")]
    LogoutTokenType,
    /// The logout token's `events` has no back-channel logout event.
    #[error("the token has no back-channel logout event (events)")]
    LogoutEvent,
    /// The logout token carries a `nonce`, which a logout token must not.
    #[error("a logout token must not carry a nonce")]
    NonceInLogoutToken,
    /// The logout token's `jti` was accepted before: a replay.
    #[error("the logout token was already used (jti)")]
    Replayed,
    /// The token has an actor (`act`): an impersonated or delegated token, and the verifier
    /// refuses those.
    #[error("impersonated tokens (act) are not accepted")]
    Impersonated,
    /// The provider's introspection says the opaque token is not active (unknown, expired,
    /// revoked, or not an access token).
    #[error("the token is not active")]
    Inactive,
    /// The opaque token names no API and was issued to an app (`client_id`) the verifier does
    /// not accept: any app of the tenant can obtain an opaque token for its user.
    #[error("the opaque token was issued to an application this API does not accept (client_id)")]
    Client,
    /// The opaque token would need an introspection request beyond the verifier's rate limit.
    #[error("too many opaque tokens to introspect; try again later")]
    IntrospectionRate,
    /// The request carries no bearer token at all (RFC 6750 §3.1: answered without an error
    /// code).
    #[error("the request has no bearer token")]
    MissingToken,
    /// The verified payload does not fit the binding's model of access token claims (the
    /// checks make every accepted payload fit it; this is the rejection should one not).
    #[error("the token's claims do not fit AccessTokenClaims")]
    ClaimsModel,
    /// The token's roles claim lacks one of the required roles (space-separated).
    #[error("the token lacks the required role(s): {0}")]
    Roles(String),
}

impl ValidationError {
    /// The stable name of the failed check (`signature`, `iss`, `aud`, `exp`, …).
    #[must_use]
    pub fn check(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Algorithm(_) => "alg",
            Self::CriticalHeader => "crit",
            Self::UnknownKey => "kid",
            Self::Signature => "signature",
            Self::Issuer => "iss",
            Self::Audience => "aud",
            Self::AuthorizedParty => "azp",
            Self::Expired => "exp",
            Self::IssuedInFuture => "iat",
            Self::NotYetValid => "nbf",
            Self::Nonce => "nonce",
            Self::Claim(_) => "claims",
            Self::Scope(_) => "scope",
            Self::Subject => "sub",
            Self::TokenType => "typ",
            Self::Organization => "organization_id",
            Self::LogoutTokenType => "typ",
            Self::LogoutEvent => "events",
            Self::NonceInLogoutToken => "nonce",
            Self::Replayed => "jti",
            Self::Impersonated => "act",
            Self::Inactive => "active",
            Self::Client => "client_id",
            Self::IntrospectionRate => "introspection_rate",
            Self::MissingToken => "missing",
            Self::ClaimsModel => "claims",
            Self::Roles(_) => "roles",
        }
    }
}

/// Why a sign-in callback was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// No sign-in session is stored: `signIn` was not called, or the callback was already handled.
    #[error("no sign-in session is stored (sign-in not started, or this callback was already handled)")]
    SessionNotFound,
    /// The stored sign-in session could not be read.
    #[error("the stored sign-in session is corrupt")]
    CorruptSession,
    /// The callback URL could not be parsed.
    #[error("the callback URL is malformed")]
    InvalidUrl,
    /// The callback URL's origin or path differs from the stored redirect URI.
    #[error("the callback URL does not match the redirect URI of the sign-in request")]
    RedirectUriMismatch,
    /// The callback has no `state` parameter.
    #[error("the callback has no state parameter")]
    MissingState,
    /// The callback's `state` differs from the stored one.
    #[error("the callback state does not match the sign-in request's")]
    StateMismatch,
    /// The callback names another issuer in `iss` than the provider's (RFC 9207: a mix-up).
    #[error("the callback's issuer (iss) is not the provider's")]
    IssuerMismatch,
    /// The callback has no `iss` although the provider advertises it (RFC 9207).
    #[error("the callback has no issuer (iss) although the provider always sends one")]
    MissingIssuer,
    /// The callback has no `code` parameter.
    #[error("the callback has no authorization code")]
    MissingCode,
    /// The provider redirected back with an `error` (e.g. `access_denied`).
    #[error("the provider returned {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Authorization {
        /// The `error` parameter.
        error: String,
        /// The `error_description` parameter.
        description: Option<String>,
    },
}

impl CallbackError {
    /// The stable code of this rejection (`callback.state_mismatch`, …).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::SessionNotFound => "callback.session_not_found",
            Self::CorruptSession => "callback.corrupt_session",
            Self::InvalidUrl => "callback.invalid_url",
            Self::RedirectUriMismatch => "callback.redirect_uri_mismatch",
            Self::MissingState => "callback.missing_state",
            Self::StateMismatch => "callback.state_mismatch",
            Self::MissingCode => "callback.missing_code",
            Self::IssuerMismatch => "callback.issuer_mismatch",
            Self::MissingIssuer => "callback.missing_issuer",
            Self::Authorization { .. } => "callback.authorization_error",
        }
    }
}

/// Every error this crate returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration (or an argument) is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The request could not be sent or its response could not be read.
    #[error("{endpoint} request failed: {message}")]
    Network {
        /// The endpoint.
        endpoint: Endpoint,
        /// What failed (connect, read, …).
        message: String,
        /// The transport error.
        #[source]
        source: Option<BoxError>,
    },
    /// No complete response arrived within the configured timeout.
    #[error("{endpoint} request timed out after {timeout:?}")]
    Timeout {
        /// The endpoint.
        endpoint: Endpoint,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The provider answered with an OAuth error.
    #[error("{0}")]
    OAuth(OAuthError),
    /// The provider answered something that is neither a success nor an OAuth error
    /// (a 5xx page, HTML instead of JSON, a malformed document).
    #[error("unexpected response from the {endpoint} endpoint (HTTP {status}): {reason}")]
    UnexpectedResponse {
        /// The endpoint.
        endpoint: Endpoint,
        /// HTTP status code.
        status: u16,
        /// What was wrong with it.
        reason: String,
    },
    /// A token failed verification.
    #[error("token rejected: {0}")]
    TokenValidation(#[from] ValidationError),
    /// An access token presented to an API was rejected by the
    /// [`AccessTokenVerifier`](crate::verifier::AccessTokenVerifier); see
    /// [`verifier::Challenge`](crate::verifier::Challenge) for its HTTP status and
    /// `WWW-Authenticate` value.
    #[error("access token rejected: {0}")]
    AccessTokenRejected(ValidationError),
    /// The sign-in callback was rejected.
    #[error("sign-in callback rejected: {0}")]
    Callback(#[from] CallbackError),
    /// The provider rejected the refresh token (`invalid_grant`): it expired, was revoked, or was
    /// reused. The session's tokens have been cleared; the user must sign in again.
    #[error("the refresh token was rejected ({}): the user must sign in again", .0.error)]
    SignInRequired(OAuthError),
    /// The operation needs a signed-in user (or a refresh token) and there is none.
    #[error("not authenticated: {0}")]
    NotAuthenticated(&'static str),
    /// The provider refused a grant the application is not allowed to use (`invalid_request`
    /// "requested grant type is not allowed for this client", or `unauthorized_client`).
    #[error("{} is not allowed for this application: {hint} ({error})", grant.replace('_', " "))]
    GrantNotAllowed {
        /// The grant: `token_exchange` or `client_credentials`.
        grant: &'static str,
        /// What to change in Logto.
        hint: &'static str,
        /// The provider's answer.
        error: OAuthError,
    },
    /// Logto answered with its own error body, `{code, message}` (the Management API).
    #[error("{0}")]
    Api(ApiError),
    /// A device sign-in (RFC 8628) ended without tokens: the user denied it (`access_denied`)
    /// or its device code expired before the user approved it (`expired_token`).
    #[error("the device sign-in ended: {0}")]
    DeviceSignIn(OAuthError),
    /// A sealed value (an encrypted cookie) did not open.
    #[error("{0}")]
    Unseal(#[from] UnsealError),
    /// The storage backend failed.
    #[error("storage {op}({key:?}) failed")]
    Storage {
        /// `get`, `set` or `delete`.
        op: &'static str,
        /// The storage key.
        key: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// A stable machine-readable code: `config.invalid`, `network.error`, `network.timeout`,
    /// `oauth.<error>`, `response.unexpected`, `token.<check>`, `callback.<reason>`,
    /// `not_authenticated`, `storage.error`, `<grant>.not_allowed`, `api.<Logto code>`.
    #[must_use]
    pub fn code(&self) -> String {
        match self {
            Self::Config(_) => "config.invalid".into(),
            Self::Network { .. } => "network.error".into(),
            Self::Timeout { .. } => "network.timeout".into(),
            Self::OAuth(e) | Self::SignInRequired(e) | Self::DeviceSignIn(e) => {
                format!("oauth.{}", e.error)
            }
            Self::UnexpectedResponse { .. } => "response.unexpected".into(),
            Self::TokenValidation(e) | Self::AccessTokenRejected(e) => format!("token.{}", e.check()),
            Self::Callback(e) => e.code().into(),
            Self::NotAuthenticated(_) => "not_authenticated".into(),
            Self::Storage { .. } => "storage.error".into(),
            Self::GrantNotAllowed { grant, .. } => format!("{grant}.not_allowed"),
            Self::Api(e) => format!("api.{}", e.code),
            Self::Unseal(e) => format!("seal.{}", e.reason()),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config(message.into())
    }

    /// A copy of a fetch error for the callers that share one failed fetch (a transport source
    /// is dropped; an error that is not a fetch failure becomes a network error naming its code).
    #[must_use]
    pub(crate) fn replay(&self) -> Self {
        match self {
            Self::Network {
                endpoint, message, ..
            } => Self::Network {
                endpoint: *endpoint,
                message: message.clone(),
                source: None,
            },
            Self::Timeout { endpoint, timeout } => Self::Timeout {
                endpoint: *endpoint,
                timeout: *timeout,
            },
            Self::UnexpectedResponse {
                endpoint,
                status,
                reason,
            } => Self::UnexpectedResponse {
                endpoint: *endpoint,
                status: *status,
                reason: reason.clone(),
            },
            Self::Config(message) => Self::Config(message.clone()),
            other => Self::Network {
                endpoint: Endpoint::Discovery,
                message: format!("the fetch failed ({})", other.code()),
                source: None,
            },
        }
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnsealError {
    /// Not `v1.<key id>.<base64url>` of at least a nonce, an expiry and a tag.
    #[error("the sealed value is malformed")]
    Malformed,
    /// No key of the sealer has the value's key id (it was sealed with a key since removed).
    #[error("the sealed value's key is not among the keys")]
    UnknownKey,
    /// The value does not authenticate: altered, forged, or sealed for another name.
    #[error("the sealed value does not authenticate (altered, or sealed for another name)")]
    Invalid,
    /// The value's expiry has passed.
    #[error("the sealed value has expired")]
    Expired,
}

impl UnsealError {
    /// The stable name of the failure (`malformed`, `unknown_key`, `invalid`, `expired`).
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownKey => "unknown_key",
            Self::Invalid => "invalid",
            Self::Expired => "expired",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(Error::from(ValidationError::Nonce).code(), "token.nonce");
        assert_eq!(
            Error::from(CallbackError::StateMismatch).code(),
            "callback.state_mismatch"
        );
        let oauth = Error::OAuth(OAuthError {
            endpoint: Endpoint::Token,
            status: 400,
            error: "invalid_grant".into(),
            description: Some("grant request is invalid".into()),
        });
        assert_eq!(oauth.code(), "oauth.invalid_grant");
        assert_eq!(
            oauth.to_string(),
            "token endpoint answered HTTP 400 invalid_grant: grant request is invalid"
        );
        let api = Error::Api(ApiError {
            endpoint: Endpoint::ManagementApi,
            status: 404,
            code: "entity.not_found".into(),
            message: "The personal access token `ci` does not exist.".into(),
        });
        assert_eq!(api.code(), "api.entity.not_found");
        assert_eq!(
            api.to_string(),
            "management_api answered HTTP 404 entity.not_found: The personal access token `ci` does not exist."
        );
    }
}
