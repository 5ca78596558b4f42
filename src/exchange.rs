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

use crate::client::LogtoClient;
use crate::error::{Error, Result};
use crate::grant::{ExchangeSubject, Grant, ImpersonationTokenType, TokenTarget};
use crate::jwt::decode_claims_unverified;
use crate::machine::{CacheKey, MachineToken};
use crate::secret::{AccessToken, SubjectTokenValue};

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

fn non_empty(secret: &str, what: &str) -> Result<()> {
    if secret.trim().is_empty() {
        return Err(Error::config(format!("the {what} is empty")));
    }
    Ok(())
}

impl LogtoClient {
    /// Delegation: exchanges an access token a user presented to this service for an access
    /// token to `target` (another API, an organization) acting as the same user. Nothing is
    /// granted by default: ask for the scopes; Logto grants those the user's roles allow.
    ///
    /// Cached per (fingerprint of the subject token, target) until `accessTokenMargin` before
    /// the result expires, and never after the subject token's own `exp` when it is a JWT;
    /// concurrent callers share one request.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty token or an app without a secret (delegation is for
    /// confidential apps); [`Error::GrantNotAllowed`] when token exchange is not allowed for the
    /// app; [`Error::OAuth`] `invalid_grant` for a subject token Logto does not accept (expired,
    /// not its own, issued to a third-party app), `access_denied` (403) for an organization the
    /// user is not a member of; network errors.
    pub async fn exchange_access_token(
        &self,
        subject_token: &AccessToken,
        target: &TokenTarget,
    ) -> Result<MachineToken> {
        non_empty(subject_token.secret(), "subject token")?;
        if !self.config().has_app_secret() {
            return Err(Error::config(
                "delegating an access token needs appSecret (a confidential app)",
            ));
        }
        let not_after = unverified_expiry(subject_token);
        let subject = ExchangeSubject::AccessToken(subject_token.clone());
        self.machine_token(Some(subject), target.clone(), not_after).await
    }

    /// Impersonation: exchanges a single-use subject token from the Management API for an access
    /// token to `target` acting as its user, once (never cached). With `actor_token` (an access
    /// token with `openid` of the user who acts), the result carries `act: {sub: <actor>}`.
    ///
    /// Once sent, the exchange runs to completion even if the caller is cancelled, since the
    /// subject token is spent either way; its result is kept for a retry with the same
    /// arguments, which gets it once (see [`MachineTokenCache::fetch_once`]).
    ///
    /// [`MachineTokenCache::fetch_once`]: crate::machine::MachineTokenCache::fetch_once
    ///
    /// # Errors
    /// [`Error::Config`] for an empty token; [`Error::GrantNotAllowed`] when token exchange is
    /// not allowed for the app; [`Error::OAuth`] `invalid_grant` for a subject token that is
    /// unknown, expired or already used, or a bad actor token; network errors.
    pub async fn exchange_subject_token(
        &self,
        subject_token: &SubjectTokenValue,
        token_type: ImpersonationTokenType,
        actor_token: Option<&AccessToken>,
        target: &TokenTarget,
    ) -> Result<MachineToken> {
        non_empty(subject_token.secret(), "subject token")?;
        if let Some(actor) = actor_token {
            non_empty(actor.secret(), "actor token")?;
        }
        let subject = ExchangeSubject::Impersonation(subject_token.clone(), token_type);
        let key = CacheKey::impersonation(&subject, actor_token, target.clone());
        let (client, actor_token, target) = (self.clone(), actor_token.cloned(), target.clone());
        self.machine_tokens()
            .fetch_once(key, move || async move {
                let grant = Grant::TokenExchange {
                    subject: &subject,
                    actor_token: actor_token.as_ref(),
                    target: &target,
                };
                client.request_machine_token(&grant).await
            })
            .await
    }
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
