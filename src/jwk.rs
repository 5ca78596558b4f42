//! One JSON Web Key (RFC 7517) as a key that verifies signatures, and the JWS algorithms this
//! client verifies with (RFC 7518 §3): only asymmetric ones. What a JWT's header names and what a
//! JWKS holds both come down to these.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ECDSA_P521_SHA512_FIXED, ParsedPublicKey,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512,
    RSA_PSS_2048_8192_SHA256, RSA_PSS_2048_8192_SHA384, RSA_PSS_2048_8192_SHA512, RsaParameters,
    RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

/// A JWS signature algorithm this client verifies (RFC 7518 §3): only asymmetric ones. `none`
/// and every HMAC algorithm are not representable, whatever the key set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384 (Logto's default).
    ES384,
    /// ECDSA P-521 with SHA-512.
    ES512,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (older Logto tenants).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
}

impl Algorithm {
    /// The JWS `alg` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
        }
    }
}

/// Algorithms a provider may sign with: Logto signs ES384 (EC P-384) by default and RS256 for
/// RSA keys; the other ECDSA and RSA algorithms are accepted too.
pub const ALLOWED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// The allowed algorithm named `name` (a JWS `alg` value), or `None` when it is not on
/// [`ALLOWED_ALGORITHMS`].
#[must_use]
pub fn allowed_algorithm(name: &str) -> Option<Algorithm> {
    ALLOWED_ALGORITHMS.into_iter().find(|alg| alg.name() == name)
}

/// The JWK members a verifying key is built from (RFC 7517 §4, RFC 7518 §6).
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

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
    /// Builds a key from a JWK (RFC 7517, as JSON); `None` for keys that cannot verify an
    /// allowed algorithm (symmetric keys, encryption keys, unsupported curves, malformed key
    /// material, or a JWK whose `alg` pins an algorithm its key type cannot serve).
    #[must_use]
    pub fn from_jwk(jwk: &Value) -> Option<Self> {
        let jwk = Jwk::deserialize(jwk).ok()?;
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return None;
        }
        let pinned = match jwk.alg.as_deref() {
            Some(alg) => Some(allowed_algorithm(alg)?),
            None => None,
        };
        let wanted = |alg: Algorithm| pinned.is_none_or(|p| p == alg);
        let keys = match jwk.kty.as_str() {
            "RSA" => {
                let components = RsaPublicKeyComponents {
                    n: decode(jwk.n.as_deref()?)?,
                    e: decode(jwk.e.as_deref()?)?,
                };
                RSA_ALGORITHMS
                    .iter()
                    .filter(|(alg, _)| wanted(*alg))
                    .map(|(alg, params)| Some((*alg, components.to_parsed_public_key(params).ok()?)))
                    .collect::<Option<Vec<_>>>()?
            }
            "EC" => {
                let (alg, verification, size) = match jwk.crv.as_deref()? {
                    "P-256" => (Algorithm::ES256, &ECDSA_P256_SHA256_FIXED, 32),
                    "P-384" => (Algorithm::ES384, &ECDSA_P384_SHA384_FIXED, 48),
                    "P-521" => (Algorithm::ES512, &ECDSA_P521_SHA512_FIXED, 66),
                    _ => return None,
                };
                let (x, y) = (decode(jwk.x.as_deref()?)?, decode(jwk.y.as_deref()?)?);
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
        Some(Self { kid: jwk.kid, keys })
    }

    /// The key id (`kid`) the JWK names, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
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
