//! Token exchange between services (RFC 8693 as Logto runs it): an application gets an access
//! token that acts as a user, proved by one of the user's tokens.
//!
//! - **Delegation** (Logto 1.38 "service-to-service delegation"): an API that received a user's
//!   access token exchanges it for a token to a downstream API, for the same user. Logto grants
//!   the requested scopes the user's roles allow. The subject token is reusable, so the result is
//!   cached like every machine token ([`crate::machine`]), keyed by a fingerprint of the subject
//!   token, and never served after the subject token's own `exp` (read from a JWT without
//!   verifying it: the cache only ever shortens a lifetime with it).
//! - **Impersonation** (Logto 1.19+): a subject token from the Management API's
//!   `POST /api/subject-tokens` (a Management API call, [`ManagementApi::send_call`]) is exchanged once for a
//!   token of its user, optionally naming the acting user with an actor token (the result's
//!   `act: {sub}` claim). It is **not cached**: the subject token is single-use, so a second
//!   exchange fails at Logto, and each impersonation is its own event that the caller decides to
//!   start; the caller keeps the result for as long as it needs it.
//!
//! Both need an application with token exchange allowed (a first-party app; Logto never allows
//! it for a third-party app). The answer holds only an access token, its lifetime, scope and
//! type: no refresh token, no ID token, and possibly no `issued_token_type`.
//!
//! [`ManagementApi::send_call`]: crate::management::ManagementApi::send_call

use crate::error::{Error, Result};
use crate::jwt::decode_claims_unverified;
use crate::secret::AccessToken;

/// The `exp` of an access token that is a JWT, read without verifying it; `None` for an opaque
/// token or a JWT without a usable `exp`. Only ever used to stop serving a cached token earlier.
#[must_use]
pub fn unverified_expiry(token: &AccessToken) -> Option<u64> {
    let claims = decode_claims_unverified(token.secret()).ok()?;
    let exp = claims.get("exp")?;
    exp.as_u64().or_else(|| {
        exp.as_f64()
            .filter(|exp| exp.is_finite() && *exp >= 0.0)
            // Truncation is intended: whole seconds, as every other expiry here.
            .map(|exp| exp as u64)
    })
}

/// Refuses an empty (or blank) token before anything is sent: `what` names it in the error.
///
/// # Errors
/// [`Error::Config`] when `secret` is blank.
pub(crate) fn non_empty(secret: &str, what: &str) -> Result<()> {
    if secret.trim().is_empty() {
        return Err(Error::config(format!("the {what} is empty")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::tests::b64;

    fn jwt(payload: &str) -> AccessToken {
        AccessToken::new(format!(
            "{}.{}.c2ln",
            b64(br#"{"alg":"ES384","typ":"at+jwt"}"#),
            b64(payload.as_bytes())
        ))
    }

    #[test]
    fn the_expiry_of_a_jwt_is_read_and_anything_else_has_none() {
        assert_eq!(
            unverified_expiry(&jwt(r#"{"sub":"u","exp":1700000000}"#)),
            Some(1_700_000_000)
        );
        assert_eq!(
            unverified_expiry(&jwt(r#"{"exp":1700000000.9}"#)),
            Some(1_700_000_000)
        );
        for none in [r#"{"sub":"u"}"#, r#"{"exp":"soon"}"#, r#"{"exp":-5}"#, "[1]"] {
            assert_eq!(unverified_expiry(&jwt(none)), None, "{none}");
        }
        assert_eq!(unverified_expiry(&AccessToken::new("opaque-token")), None);
        assert_eq!(unverified_expiry(&AccessToken::new("a.!!.c")), None);
    }
}
