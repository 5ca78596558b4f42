//! Opaque access tokens: Logto issues one when a client asks for no API resource. It is a random
//! string, not a JWT, so nothing can be checked offline: with introspection configured, the
//! verifier asks the provider's introspection endpoint (RFC 7662, authenticated with the app's
//! credentials, `client_secret_basic`) whether the token is active and what it grants.
//!
//! Answers are kept in a [`TokenCache`] for a short, bounded time that never passes the token's
//! `exp` (inactive answers too: an inactive token never becomes active), and concurrent
//! introspections of one token share one request.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Verified;
use super::cache::{CacheLimits, TokenCache, TokenDigest, token_digest};
use crate::error::{Endpoint, Error, Result, ValidationError};
use crate::http::{ClientAuth, HttpClient};
use crate::jwt::{self, RegisteredClaims};
use crate::process::PerProcess;
use crate::secret::ClientSecret;
use crate::single_flight::{Lanes, run_in_lane};

/// What the provider said about a token.
#[derive(Debug)]
pub(crate) enum Introspected {
    /// Active: the claims of the answer, as a verified token's.
    Active(Arc<Verified>),
    /// Not active (unknown, expired, revoked), or not an access token.
    Inactive,
}

/// The app credentials and the answers of the introspection endpoint.
pub(crate) struct Introspection {
    client_id: String,
    secret: ClientSecret,
    answers: Arc<TokenCache<Introspected>>,
    lanes: PerProcess<Lanes<TokenDigest>>,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Whether `token` is not shaped like a JWT (three dot-separated segments): an opaque token.
pub(crate) fn is_opaque(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() != 2
}

impl Introspection {
    pub(crate) fn new(client_id: String, secret: ClientSecret, limits: CacheLimits) -> Self {
        Self {
            client_id,
            secret,
            answers: Arc::new(TokenCache::new(limits)),
            lanes: PerProcess::new(),
        }
    }

    /// The cached answer for `token`, if any.
    pub(crate) fn cached(&self, token: &str) -> Option<Arc<Introspected>> {
        self.answers.get(&self.answers.key(token)?)
    }

    /// The provider's answer for `token`: the cached one, or one request (shared with
    /// concurrent callers for the same token), whose answer is then cached.
    ///
    /// # Errors
    /// Network and response errors of the request.
    pub(crate) async fn introspect(
        &self,
        http: &HttpClient,
        endpoint: &str,
        token: &str,
        now: u64,
    ) -> Result<Arc<Introspected>> {
        let digest = token_digest(token);
        let cacheable = self.answers.key(token).is_some();
        if cacheable && let Some(answer) = self.answers.get(&digest) {
            return Ok(answer);
        }
        let lanes = self.lanes.get(|_| Lanes::default());
        let guard = lanes.enter(&digest).await?;
        if cacheable && let Some(answer) = self.answers.get(&digest) {
            return Ok(answer);
        }
        let (http, endpoint, token) = (http.clone(), endpoint.to_owned(), token.to_owned());
        let (client_id, secret, answers) =
            (self.client_id.clone(), self.secret.clone(), self.answers.clone());
        run_in_lane(guard, async move {
            let params = [("token", token.as_str()), ("token_type_hint", "access_token")];
            let auth = ClientAuth::Basic {
                client_id: &client_id,
                secret: &secret,
            };
            let answer: Value = http
                .post_form(Endpoint::Introspection, &endpoint, &params, auth)
                .await?;
            let (answer, expires_at) = read_answer(answer)?;
            let answer = Arc::new(answer);
            if cacheable {
                let ttl = expires_at.map_or(answers.limits().max_age, |exp| {
                    Duration::from_secs(exp.saturating_sub(now))
                });
                answers.insert(digest, answer.clone(), ttl);
            }
            Ok(answer)
        })
        .await
    }
}

/// Reads an introspection answer: inactive, or active with the claims of an access token (and
/// its `exp`). The payload is the answer without `active`, with `"aud": []` when the token names
/// no audience (it was issued for no API resource).
fn read_answer(answer: Value) -> Result<(Introspected, Option<u64>)> {
    let unexpected = |reason: &str| Error::UnexpectedResponse {
        endpoint: Endpoint::Introspection,
        status: 200,
        reason: reason.into(),
    };
    let Value::Object(mut answer) = answer else {
        return Err(unexpected("the introspection answer is not a JSON object"));
    };
    let active = answer.remove("active").and_then(|a| a.as_bool()) == Some(true);
    let access_token = answer
        .get("token_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
    if !active || !access_token {
        return Ok((Introspected::Inactive, None));
    }
    if answer.get("aud").is_none_or(Value::is_null) {
        answer.insert("aud".into(), Value::Array(Vec::new()));
    }
    let expires_at = answer.get("exp").and_then(Value::as_u64);
    let payload = serde_json::to_string(&Value::Object(answer))
        .map_err(|_| unexpected("the introspection answer cannot be read"))?;
    let claims: RegisteredClaims =
        serde_json::from_str(&payload).map_err(|_| unexpected("the introspection answer cannot be read"))?;
    jwt::check_access_token_claim_types(&claims).map_err(Error::AccessTokenRejected)?;
    let verified = Verified {
        claims,
        payload,
        key_generation: 0,
    };
    Ok((Introspected::Active(Arc::new(verified)), expires_at))
}

/// The rejection of a token the provider says is not active.
pub(crate) fn inactive() -> Error {
    Error::AccessTokenRejected(ValidationError::Inactive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_access_token_claims() {
        assert!(is_opaque("abc_DEF-123"));
        assert!(!is_opaque("a.b.c"));
        let (answer, exp) = read_answer(serde_json::json!({
            "active": true, "sub": "u", "iss": "https://t/oidc", "exp": 100, "iat": 1,
            "client_id": "app", "scope": "openid", "token_type": "Bearer"
        }))
        .unwrap();
        assert_eq!(exp, Some(100));
        let Introspected::Active(verified) = answer else {
            panic!("expected an active answer")
        };
        let payload: serde_json::Map<String, Value> = serde_json::from_str(&verified.payload).unwrap();
        assert_eq!(payload["aud"], serde_json::json!([]));
        assert!(!payload.contains_key("active"));
        for inactive in [
            serde_json::json!({"active": false}),
            serde_json::json!({"active": true, "sub": "u"}), // a refresh token: no token_type
        ] {
            assert!(matches!(read_answer(inactive).unwrap().0, Introspected::Inactive));
        }
        assert!(read_answer(serde_json::json!([])).is_err());
    }
}
