//! Opaque access tokens: Logto issues one when a client asks for no API resource. It is a random
//! string, not a JWT, so nothing can be checked offline: with introspection configured, the
//! verifier asks the provider's introspection endpoint (RFC 7662, authenticated with the app's
//! credentials, `client_secret_basic`) whether the token is active and what it grants.
//!
//! Active answers are kept in a [`TokenCache`] for a short, bounded time that never passes the
//! token's `exp`; inactive ones in a cache of their own (an inactive token never becomes
//! active), so a flood of made-up tokens cannot evict the answers for real ones. Concurrent
//! introspections of one token share one request, and requests are paced by a token bucket
//! ([`IntrospectionLimits::calls_per_second`]): a token that would need one beyond it is
//! rejected (check `introspection_rate`) without a request.
//!
//! An opaque token names no API, so an active one is accepted only when it was issued to one of
//! the apps the verifier accepts ([`IntrospectionLimits`]' caller configures them; by default
//! the introspecting app itself): any app of the tenant can obtain an opaque token for its user.

use std::sync::{Arc, Mutex, PoisonError};
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
use crate::token_bucket::{Rate, TokenBucket};

/// How much introspection a verifier may cause (see
/// [`AccessTokenVerifierBuilder::introspection_limits`](super::AccessTokenVerifierBuilder::introspection_limits)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntrospectionLimits {
    /// How long an inactive answer is reused (zero: not at all); such entries are bounded by
    /// the verifier's cache size, apart from the active answers.
    pub negative_ttl: Duration,
    /// Most introspection requests a second, in bursts of as many; `None`: no bound. Tokens
    /// that would need a request beyond it are rejected (check `introspection_rate`).
    pub calls_per_second: Option<f64>,
}

/// What the provider said about a token.
#[derive(Debug)]
pub(crate) enum Introspected {
    /// Active: the claims of the answer, as a verified token's.
    Active(Arc<Verified>),
    /// Not active (unknown, expired, revoked), or not an access token.
    Inactive,
}

/// The app credentials, the apps whose tokens are accepted, and the answers of the
/// introspection endpoint.
pub(crate) struct Introspection {
    client_id: String,
    secret: ClientSecret,
    /// The `client_id`s whose opaque tokens are accepted.
    clients: Vec<String>,
    /// Active answers.
    answers: Arc<TokenCache<Introspected>>,
    /// Inactive answers.
    refused: Arc<TokenCache<Introspected>>,
    /// The pace of requests (`None`: unbounded).
    rate: Option<Rate>,
    bucket: PerProcess<Mutex<TokenBucket>>,
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
    /// Introspects as `client_id`; accepts the tokens of `clients` (empty: of `client_id`);
    /// caches active answers within `cache` and inactive ones within `cache` and `limits`.
    pub(crate) fn new(
        client_id: String,
        secret: ClientSecret,
        clients: Vec<String>,
        cache: CacheLimits,
        limits: IntrospectionLimits,
    ) -> Self {
        let clients = if clients.is_empty() {
            vec![client_id.clone()]
        } else {
            clients
        };
        Self {
            client_id,
            secret,
            clients,
            answers: Arc::new(TokenCache::new(cache)),
            refused: Arc::new(TokenCache::new(CacheLimits {
                max_age: limits.negative_ttl,
                ..cache
            })),
            rate: limits.calls_per_second.map(Rate::per_second),
            bucket: PerProcess::new(),
            lanes: PerProcess::new(),
        }
    }

    /// Whether an opaque token issued to `client_id` is accepted.
    pub(crate) fn accepts_client(&self, client_id: Option<&str>) -> bool {
        client_id.is_some_and(|id| self.clients.iter().any(|c| c == id))
    }

    /// The cached answer for `token`, if any.
    pub(crate) fn cached(&self, token: &str) -> Option<Arc<Introspected>> {
        let digest = self.answers.key(token).or_else(|| self.refused.key(token))?;
        self.answers.get(&digest).or_else(|| self.refused.get(&digest))
    }

    /// Spends one request of the rate limit; `false` when it is exhausted.
    fn may_send(&self) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        let bucket = self.bucket.get(|_| Mutex::new(TokenBucket::default()));
        let mut bucket = bucket.lock().unwrap_or_else(PoisonError::into_inner);
        bucket.take(rate)
    }

    /// The provider's answer for `token`: the cached one, or one request (shared with
    /// concurrent callers for the same token, within the rate limit), whose answer is then
    /// cached.
    ///
    /// # Errors
    /// Network and response errors of the request; [`ValidationError::IntrospectionRate`] when
    /// the rate limit allows no request now.
    pub(crate) async fn introspect(
        &self,
        http: &HttpClient,
        endpoint: &str,
        token: &str,
        now: u64,
    ) -> Result<Arc<Introspected>> {
        let digest = token_digest(token);
        if let Some(answer) = self.cached(token) {
            return Ok(answer);
        }
        let lanes = self.lanes.get(|_| Lanes::default());
        let guard = lanes.enter(&digest).await?;
        if let Some(answer) = self.cached(token) {
            return Ok(answer);
        }
        if !self.may_send() {
            return Err(Error::AccessTokenRejected(ValidationError::IntrospectionRate));
        }
        let (http, endpoint, token) = (http.clone(), endpoint.to_owned(), token.to_owned());
        let (client_id, secret) = (self.client_id.clone(), self.secret.clone());
        let (answers, refused) = (self.answers.clone(), self.refused.clone());
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
            let cache = match *answer {
                Introspected::Active(_) => &answers,
                Introspected::Inactive => &refused,
            };
            if cache.key(&token).is_some() {
                let ttl = expires_at.map_or(cache.limits().max_age, |exp| {
                    Duration::from_secs(exp.saturating_sub(now))
                });
                cache.insert(digest, answer.clone(), ttl);
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
