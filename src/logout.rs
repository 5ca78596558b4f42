//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): the logout token the provider
//! POSTs to an application when a user's session ends there, and the store that refuses a
//! token seen before.
//!
//! Logto (an `oidc-provider` fork with `features.backchannelLogout` on) sends each application
//! that has a `backchannelLogoutUri` a form field `logout_token`: a JWT with header
//! `typ: logout+jwt`, signed with the keys of the JWKS, carrying `iss`, `aud` (the app id),
//! `iat`, `jti`, `sub`, the back-channel logout event, and `sid` when the application requires
//! the session (`backchannelLogoutSessionRequired`). Logto sets no `exp`: a token without one is
//! accepted for [`MAX_AGE`] seconds after its `iat`.
//!
//! [`LogtoClient::verify_logout_token`](crate::LogtoClient::verify_logout_token) checks, in order:
//! `typ` (before any key is fetched), the key and the signature, `iss`, `aud`, `iat` (required, not
//! in the future beyond the clock tolerance), `exp` (when present) or the age, the `events` member,
//! `sub` or `sid`, no `nonce`, and `jti`. A failure is an
//! [`Error::TokenValidation`](crate::Error::TokenValidation) naming the check. Once the sessions
//! the token names have ended,
//! [`LogtoClient::claim_logout_token`](crate::LogtoClient::claim_logout_token) claims its `jti` in
//! a [`ReplayStore`], which remembers it until the token would expire: claimed last, a logout whose
//! sessions could not be ended is not refused as a replay when the provider resends it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::error::{BoxError, Result, ValidationError};
use crate::jwks::KeySet;
use crate::jwt::{self, UnverifiedJwt};

/// The member of `events` that makes a JWT a logout token.
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long (seconds after `iat`, plus the clock tolerance) a logout token without `exp` is
/// accepted. The provider sends it at once, so this only bounds how long its `jti` is kept.
pub const MAX_AGE: u64 = 300;

/// Most `jti`s a [`MemoryReplayStore`] keeps; past that, the ones closest to expiry go first.
pub const MEMORY_REPLAY_CAPACITY: usize = 10_000;

/// Whether a JWS `typ` names a logout token: `logout+jwt`, or the media type
/// `application/logout+jwt` (media types compare case-insensitively).
#[must_use]
pub fn is_logout_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        let lower = typ.to_ascii_lowercase();
        lower == "logout+jwt" || lower == "application/logout+jwt"
    })
}

/// A verified logout token: whose sessions end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    /// The user (`sub`), when the token names one.
    pub subject: Option<String>,
    /// The provider's session (`sid`), when the token names one.
    pub session_id: Option<String>,
    /// When the provider issued the token (`iat`, seconds since the epoch): sessions whose ID
    /// token was issued up to then are the ones that end.
    pub issued_at: u64,
    /// Until when (seconds since the epoch) the token is accepted, and its `jti` remembered.
    pub expires_at: u64,
    /// The token's id (`jti`).
    pub jti: String,
}

/// What a logout token must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct LogoutExpectations<'a> {
    /// Required `iss`.
    pub issuer: &'a str,
    /// `aud` must be, or contain, this (the app id).
    pub audience: &'a str,
    /// The current time (seconds since the epoch).
    pub now: u64,
    /// Tolerated clock skew in seconds.
    pub leeway: u64,
}

fn string<'m>(
    claims: &'m Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'m str>, ValidationError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(value)) if !value.is_empty() => Ok(Some(value)),
        Some(_) => Err(ValidationError::Claim(name)),
    }
}

fn number(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, ValidationError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or(ValidationError::Claim(name)),
    }
}

/// Checks the header's `typ`: made before any key lookup, so a token of another kind never
/// causes a JWKS fetch.
///
/// # Errors
/// [`ValidationError::LogoutTokenType`].
pub fn check_logout_header(jwt: &UnverifiedJwt<'_>) -> Result<(), ValidationError> {
    if is_logout_token_type(jwt.typ.as_deref()) {
        Ok(())
    } else {
        Err(ValidationError::LogoutTokenType)
    }
}

/// Every check of a logout token but the replay: header, key, signature, then the claims.
///
/// # Errors
/// The first failing check.
pub fn check_logout_token(
    jwt: &UnverifiedJwt<'_>,
    keys: &KeySet,
    expected: &LogoutExpectations<'_>,
) -> Result<LogoutToken, ValidationError> {
    check_logout_header(jwt)?;
    let key = keys
        .find(jwt.kid.as_deref(), jwt.alg)
        .ok_or(ValidationError::UnknownKey)?;
    jwt.verify_signature(key)?;
    check_logout_claims(&jwt.claims_map()?, expected)
}

/// The claim checks of a logout token (its signature already verified).
///
/// # Errors
/// The first failing check.
pub fn check_logout_claims(
    claims: &Map<String, Value>,
    expected: &LogoutExpectations<'_>,
) -> Result<LogoutToken, ValidationError> {
    match string(claims, "iss")? {
        Some(iss) if iss == expected.issuer => {}
        Some(_) => return Err(ValidationError::Issuer),
        None => return Err(ValidationError::Claim("iss")),
    }
    let audience_matches = match claims.get("aud") {
        Some(Value::String(aud)) => aud == expected.audience,
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
            list.iter().any(|aud| aud.as_str() == Some(expected.audience))
        }
        _ => return Err(ValidationError::Claim("aud")),
    };
    if !audience_matches {
        return Err(ValidationError::Audience);
    }
    let issued_at = number(claims, "iat")?.ok_or(ValidationError::Claim("iat"))?;
    if issued_at > expected.now.saturating_add(expected.leeway) {
        return Err(ValidationError::IssuedInFuture);
    }
    let expires_at = match number(claims, "exp")? {
        Some(exp) => exp,
        None => issued_at.saturating_add(MAX_AGE),
    };
    if expires_at.saturating_add(expected.leeway) <= expected.now {
        return Err(ValidationError::Expired);
    }
    let has_event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(LOGOUT_EVENT))
        .is_some_and(Value::is_object);
    if !has_event {
        return Err(ValidationError::LogoutEvent);
    }
    let subject = string(claims, "sub")?;
    let session_id = string(claims, "sid")?;
    if subject.is_none() && session_id.is_none() {
        return Err(ValidationError::Claim("sub"));
    }
    if claims.contains_key("nonce") {
        return Err(ValidationError::NonceInLogoutToken);
    }
    let jti = string(claims, "jti")?.ok_or(ValidationError::Claim("jti"))?;
    Ok(LogoutToken {
        subject: subject.map(str::to_owned),
        session_id: session_id.map(str::to_owned),
        issued_at,
        expires_at: expires_at.saturating_add(expected.leeway),
        jti: jti.to_owned(),
    })
}

/// Remembers the `jti` of every accepted logout token until it expires, so a token is accepted
/// once. A store shared by every process and host (the Python package's Redis one) refuses a
/// replay wherever it arrives; [`MemoryReplayStore`] only within one process.
pub trait ReplayStore: Send + Sync {
    /// Records `jti` until `expires_at` (seconds since the epoch); `true` when it was not
    /// recorded yet. Must be atomic: of two concurrent claims of one `jti`, one wins.
    fn claim(&self, jti: &str, expires_at: u64) -> impl Future<Output = Result<bool, BoxError>> + Send;
}

/// A [`ReplayStore`] in this process's memory: bounded ([`MEMORY_REPLAY_CAPACITY`]) and
/// expiring. Other processes do not see it.
#[derive(Debug)]
pub struct MemoryReplayStore {
    seen: Mutex<HashMap<String, u64>>,
    capacity: usize,
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::with_capacity(MEMORY_REPLAY_CAPACITY)
    }
}

impl MemoryReplayStore {
    /// A store keeping at most `capacity` ids (at least one).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// [`ReplayStore::claim`] at the time `now`.
    pub fn claim_at(&self, jti: &str, expires_at: u64, now: u64) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.get(jti).is_some_and(|&until| until > now) {
            return false;
        }
        seen.retain(|_, until| *until > now);
        while seen.len() >= self.capacity {
            let Some(first) = seen
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            seen.remove(&first);
        }
        seen.insert(jti.to_owned(), expires_at);
        true
    }

    /// How many ids are remembered (expired ones included until the next claim).
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no id is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayStore for MemoryReplayStore {
    async fn claim(&self, jti: &str, expires_at: u64) -> Result<bool, BoxError> {
        Ok(self.claim_at(jti, expires_at, jwt::now_epoch_seconds()))
    }
}

#[cfg(test)]
mod tests;
