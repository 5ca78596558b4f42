//! The provider's signing keys: a JWKS fetched lazily, cached, and refetched at most once per
//! cooldown period when a token names an unknown `kid` (so a flood of forged key ids cannot make
//! the client hammer the provider).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::error::{Endpoint, Error, Result, ValidationError};
use crate::http::HttpClient;
use crate::jwt::UnverifiedJwt;

/// One public key from the JWKS, ready to verify signatures.
pub struct VerifyingKey {
    kid: Option<String>,
    /// The JWK's `alg`, when it pins one.
    alg: Option<String>,
    algorithms: &'static [Algorithm],
    key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Builds a key from a JWK; `None` for keys that cannot verify an allowed algorithm
    /// (symmetric keys, encryption keys, unsupported curves).
    #[must_use]
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return None;
        }
        let algorithms: &'static [Algorithm] = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => &[Algorithm::ES256],
                EllipticCurve::P384 => &[Algorithm::ES384],
                _ => return None,
            },
            _ => return None,
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        let alg = jwk.common.key_algorithm.map(|a| format!("{a:?}"));
        Some(Self {
            kid: jwk.common.key_id.clone(),
            alg,
            algorithms,
            key,
        })
    }

    /// Whether this key can verify a signature made with `alg`.
    #[must_use]
    pub fn supports(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
            && self
                .alg
                .as_deref()
                .is_none_or(|pinned| pinned == format!("{alg:?}"))
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// A parsed JWKS.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// Parses a JWKS document, skipping keys that cannot verify an allowed algorithm.
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] when the document has no `keys` array.
    pub fn from_document(document: &Value) -> Result<Self> {
        let keys =
            document
                .get("keys")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::UnexpectedResponse {
                    endpoint: Endpoint::Jwks,
                    status: 200,
                    reason: "the JWKS has no keys array".into(),
                })?;
        let keys = keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter_map(|jwk| VerifyingKey::from_jwk(&jwk))
            .collect();
        Ok(Self { keys })
    }

    /// The key for a token: the one with its `kid`, or, for a token without `kid`, the only key
    /// that supports its algorithm.
    #[must_use]
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid) && k.supports(alg)),
            None => {
                let mut candidates = self.keys.iter().filter(|k| k.supports(alg));
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        }
    }

    /// Number of usable keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

struct Fetched {
    keys: Arc<KeySet>,
    at: Instant,
}

/// The provider's JWKS, fetched on first use and refetched on unknown key ids (rate-limited).
pub struct JwksCache {
    current: RwLock<Option<Arc<Fetched>>>,
    fetch_lock: tokio::sync::Mutex<()>,
    cooldown: Duration,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("cooldown", &self.cooldown)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// An empty cache; `cooldown` is the minimum time between two fetches caused by unknown kids.
    #[must_use]
    pub fn new(cooldown: Duration) -> Self {
        Self {
            current: RwLock::new(None),
            fetch_lock: tokio::sync::Mutex::new(()),
            cooldown,
        }
    }

    fn snapshot(&self) -> Option<Arc<Fetched>> {
        self.current.read().map_or(None, |guard| guard.clone())
    }

    /// Verifies `jwt`'s signature with the provider's key for its `kid`, fetching the JWKS on
    /// first use and once more (at most once per cooldown) when the `kid` is unknown.
    ///
    /// # Errors
    /// [`ValidationError::UnknownKey`], [`ValidationError::Signature`], or the JWKS fetch's error.
    pub async fn verify(&self, http: &HttpClient, jwks_uri: &str, jwt: &UnverifiedJwt<'_>) -> Result<()> {
        let seen = match self.snapshot() {
            Some(fetched) => fetched,
            None => self.fetch(http, jwks_uri, None).await?,
        };
        if let Some(key) = seen.keys.find(jwt.kid.as_deref(), jwt.alg) {
            return Ok(jwt.verify_signature(key)?);
        }
        let refreshed = self.fetch(http, jwks_uri, Some(&seen)).await?;
        match refreshed.keys.find(jwt.kid.as_deref(), jwt.alg) {
            Some(key) => Ok(jwt.verify_signature(key)?),
            None => Err(ValidationError::UnknownKey.into()),
        }
    }

    /// Fetches the JWKS unless another caller already replaced `seen`, or `seen` is younger than
    /// the cooldown (then `seen` is returned as it is). Concurrent callers share one request.
    async fn fetch(
        &self,
        http: &HttpClient,
        jwks_uri: &str,
        seen: Option<&Arc<Fetched>>,
    ) -> Result<Arc<Fetched>> {
        let _guard = self.fetch_lock.lock().await;
        if let Some(current) = self.snapshot() {
            let replaced = seen.is_none_or(|s| !Arc::ptr_eq(s, &current));
            if replaced || current.at.elapsed() < self.cooldown {
                return Ok(current);
            }
        }
        let document: Value = http.get_json(Endpoint::Jwks, jwks_uri).await?;
        let fetched = Arc::new(Fetched {
            keys: Arc::new(KeySet::from_document(&document)?),
            at: Instant::now(),
        });
        if let Ok(mut guard) = self.current.write() {
            *guard = Some(fetched.clone());
        }
        Ok(fetched)
    }
}
