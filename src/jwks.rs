//! The provider's signing keys: a JWKS fetched lazily, cached, and refetched at most once per
//! cooldown period when a token names an unknown `kid` (so a flood of forged key ids cannot make
//! the client hammer the provider).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512, RSA_PSS_2048_8192_SHA256,
    RSA_PSS_2048_8192_SHA384, RSA_PSS_2048_8192_SHA512, RsaParameters, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use serde_json::Value;

use crate::error::{Endpoint, Error, Result, ValidationError};
use crate::http::HttpClient;
use crate::jwt::UnverifiedJwt;

/// One public key from the JWKS, ready to verify signatures.
///
/// The key material is parsed once, when the JWKS is read, into an aws-lc-rs key per algorithm
/// the key may serve (one for an EC key; up to six for an RSA key, fewer when the JWK pins its
/// `alg`), so verifying a signature never rebuilds or copies a key.
pub struct VerifyingKey {
    kid: Option<String>,
    /// The algorithms this key serves, each with its parsed key (pin and curve applied).
    keys: Vec<(Algorithm, ParsedPublicKey)>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field(
                "algorithms",
                &self.keys.iter().map(|(alg, _)| *alg).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

const RSA_ALGORITHMS: [(Algorithm, &RsaParameters); 6] = [
    (Algorithm::RS256, &RSA_PKCS1_2048_8192_SHA256),
    (Algorithm::RS384, &RSA_PKCS1_2048_8192_SHA384),
    (Algorithm::RS512, &RSA_PKCS1_2048_8192_SHA512),
    (Algorithm::PS256, &RSA_PSS_2048_8192_SHA256),
    (Algorithm::PS384, &RSA_PSS_2048_8192_SHA384),
    (Algorithm::PS512, &RSA_PSS_2048_8192_SHA512),
];

fn decode(value: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')).ok()
}

impl VerifyingKey {
    /// Builds a key from a JWK; `None` for keys that cannot verify an allowed algorithm
    /// (symmetric keys, encryption keys, unsupported curves, malformed key material, or a JWK
    /// whose `alg` pins an algorithm its key type cannot serve).
    #[must_use]
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return None;
        }
        let pinned = match jwk.common.key_algorithm {
            Some(alg) => Some(crate::jwt::allowed_algorithm(&format!("{alg:?}"))?),
            None => None,
        };
        let wanted = |alg: Algorithm| pinned.is_none_or(|p| p == alg);
        let keys = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                let components = RsaPublicKeyComponents {
                    n: decode(&rsa.n)?,
                    e: decode(&rsa.e)?,
                };
                RSA_ALGORITHMS
                    .iter()
                    .filter(|(alg, _)| wanted(*alg))
                    .map(|(alg, params)| Some((*alg, components.to_parsed_public_key(params).ok()?)))
                    .collect::<Option<Vec<_>>>()?
            }
            AlgorithmParameters::EllipticCurve(ec) => {
                let (alg, verification, size) = match ec.curve {
                    EllipticCurve::P256 => (Algorithm::ES256, &ECDSA_P256_SHA256_FIXED, 32),
                    EllipticCurve::P384 => (Algorithm::ES384, &ECDSA_P384_SHA384_FIXED, 48),
                    _ => return None,
                };
                let (x, y) = (decode(&ec.x)?, decode(&ec.y)?);
                if !wanted(alg) || x.len() != size || y.len() != size {
                    return None;
                }
                let point = [&[0x04][..], &x, &y].concat();
                vec![(alg, ParsedPublicKey::new(verification, point).ok()?)]
            }
            _ => return None,
        };
        if keys.is_empty() {
            return None;
        }
        Some(Self {
            kid: jwk.common.key_id.clone(),
            keys,
        })
    }

    /// Whether this key can verify a signature made with `alg`.
    #[must_use]
    pub fn supports(&self, alg: Algorithm) -> bool {
        self.keys.iter().any(|(a, _)| *a == alg)
    }

    /// Verifies `signature` (raw bytes: `r || s` for ECDSA) over `message` made with `alg`.
    /// `false` when it does not verify or this key cannot serve `alg`.
    #[must_use]
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.keys
            .iter()
            .find(|(a, _)| *a == alg)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
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

    /// The keys fetched last, without any I/O; `None` before the first fetch.
    #[must_use]
    pub fn cached(&self) -> Option<Arc<KeySet>> {
        self.snapshot().map(|fetched| fetched.keys.clone())
    }

    /// Puts `keys` in the cache as if just fetched (unit tests of the verifier).
    #[cfg(test)]
    pub(crate) fn insert_for_tests(&self, keys: KeySet) {
        if let Ok(mut guard) = self.current.write() {
            *guard = Some(Arc::new(Fetched {
                keys: Arc::new(keys),
                at: Instant::now(),
            }));
        }
    }

    /// Whether a token with an unknown `kid` would cause a refetch now (the last fetch is older
    /// than the cooldown, or there was none).
    #[must_use]
    pub fn refetch_allowed(&self) -> bool {
        self.snapshot()
            .is_none_or(|fetched| fetched.at.elapsed() >= self.cooldown)
    }

    /// The key set to verify a token with `kid` and `alg`: the cached one when it has a matching
    /// key; otherwise the JWKS is fetched (on first use, and once more, at most once per
    /// cooldown, when the `kid` is unknown). The returned set may still lack the key.
    ///
    /// # Errors
    /// The JWKS fetch's error.
    pub async fn keys_for(
        &self,
        http: &HttpClient,
        jwks_uri: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<KeySet>> {
        let seen = match self.snapshot() {
            Some(fetched) => fetched,
            None => self.fetch(http, jwks_uri, None).await?,
        };
        if seen.keys.find(kid, alg).is_some() {
            return Ok(seen.keys.clone());
        }
        Ok(self.fetch(http, jwks_uri, Some(&seen)).await?.keys.clone())
    }

    /// Fetches the JWKS when none is cached or the cooldown has passed since the last fetch;
    /// otherwise (or when a concurrent caller just fetched it) returns the cached set.
    ///
    /// # Errors
    /// The JWKS fetch's error.
    pub async fn refresh(&self, http: &HttpClient, jwks_uri: &str) -> Result<Arc<KeySet>> {
        let seen = self.snapshot();
        Ok(self.fetch(http, jwks_uri, seen.as_ref()).await?.keys.clone())
    }

    /// Verifies `jwt`'s signature with the provider's key for its `kid`, fetching the JWKS on
    /// first use and once more (at most once per cooldown) when the `kid` is unknown.
    ///
    /// # Errors
    /// [`ValidationError::UnknownKey`], [`ValidationError::Signature`], or the JWKS fetch's error.
    pub async fn verify(&self, http: &HttpClient, jwks_uri: &str, jwt: &UnverifiedJwt<'_>) -> Result<()> {
        let keys = self.keys_for(http, jwks_uri, jwt.kid.as_deref(), jwt.alg).await?;
        let key = keys
            .find(jwt.kid.as_deref(), jwt.alg)
            .ok_or(ValidationError::UnknownKey)?;
        Ok(jwt.verify_signature(key)?)
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
