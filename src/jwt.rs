//! JWT verification: an allow-list of asymmetric algorithms, the signature, then each claim
//! check (`iss`, `aud`, `azp`, `exp`, `iat`, `nbf`, `nonce`), each failing with the
//! [`ValidationError`] that names it.
//!
//! Parsing is strict and bounded: three base64url segments, a JSON object header with a string
//! `alg`, a JSON object payload, a non-empty signature, and at most [`MAX_TOKEN_BYTES`] bytes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::jwks::VerifyingKey;

/// Largest token accepted; anything longer is rejected before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Algorithms a provider may sign with: Logto signs ES384 (EC P-384) by default and RS256 for
/// RSA keys. `none` and every HMAC algorithm are refused, whatever the key set holds.
pub const ALLOWED_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// A JWT split and decoded, with its signature not yet checked.
#[derive(Debug)]
pub struct UnverifiedJwt<'a> {
    /// The header's algorithm (already on the allow-list).
    pub alg: Algorithm,
    /// The header's key id.
    pub kid: Option<String>,
    /// The header's `typ`.
    pub typ: Option<String>,
    /// The payload's claims.
    pub claims: Map<String, Value>,
    signing_input: &'a str,
    signature: &'a str,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

fn decode_segment(segment: &str) -> Result<Vec<u8>, ValidationError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| ValidationError::Malformed("a segment is not base64url"))
}

/// Splits and decodes a compact JWS and enforces the algorithm allow-list.
///
/// # Errors
/// [`ValidationError::Malformed`] or [`ValidationError::Algorithm`].
pub fn parse(token: &str) -> Result<UnverifiedJwt<'_>, ValidationError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ValidationError::Malformed("the token is too large"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ValidationError::Malformed("a JWT has three segments"));
    };
    let header: RawHeader = serde_json::from_slice(&decode_segment(header)?)
        .map_err(|_| ValidationError::Malformed("the header is not a JSON object with an alg"))?;
    let alg = ALLOWED_ALGORITHMS
        .iter()
        .copied()
        .find(|a| format!("{a:?}") == header.alg)
        .ok_or_else(|| ValidationError::Algorithm(header.alg.chars().take(16).collect()))?;
    if signature.is_empty() {
        return Err(ValidationError::Malformed("the signature is empty"));
    }
    let claims = match serde_json::from_slice::<Value>(&decode_segment(payload)?) {
        Ok(Value::Object(claims)) => claims,
        _ => return Err(ValidationError::Malformed("the payload is not a JSON object")),
    };
    let signing_input = &token[..token.len() - signature.len() - 1];
    Ok(UnverifiedJwt {
        alg,
        kid: header.kid,
        typ: header.typ,
        claims,
        signing_input,
        signature,
    })
}

/// Decodes a JWT's payload without verifying anything (for tokens this client stored itself
/// after verifying them, and for access-token claims the caller asks for unverified).
///
/// # Errors
/// [`ValidationError::Malformed`] if the token has no decodable JSON payload.
pub fn decode_claims_unverified(token: &str) -> Result<Map<String, Value>, ValidationError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or(ValidationError::Malformed("a JWT has three segments"))?;
    match serde_json::from_slice::<Value>(&decode_segment(payload)?) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(ValidationError::Malformed("the payload is not a JSON object")),
    }
}

impl UnverifiedJwt<'_> {
    /// Verifies the signature with `key`.
    ///
    /// # Errors
    /// [`ValidationError::Signature`] when it does not verify (or the key cannot serve `alg`).
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), ValidationError> {
        if !key.supports(self.alg) {
            return Err(ValidationError::Signature);
        }
        match jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            key.decoding_key(),
            self.alg,
        ) {
            Ok(true) => Ok(()),
            _ => Err(ValidationError::Signature),
        }
    }
}

/// What the claims of a token must satisfy.
#[derive(Debug, Clone)]
pub struct ClaimChecks<'a> {
    /// Required `iss`.
    pub issuer: &'a str,
    /// `aud` must equal this or, when it is a list, contain it.
    pub audience: &'a str,
    /// When `aud` lists several audiences, `azp` must equal this (OIDC Core §3.1.3.7).
    pub authorized_party: Option<&'a str>,
    /// Required `nonce`, compared in constant time.
    pub nonce: Option<&'a crate::secret::Nonce>,
    /// The current time (seconds since the epoch).
    pub now: u64,
    /// Tolerated clock skew in seconds.
    pub leeway: u64,
}

fn number(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, ValidationError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(ValidationError::Claim(name)),
    }
}

/// Checks the registered claims of a verified token, in a fixed order.
///
/// # Errors
/// The first failing check.
pub fn check_claims(claims: &Map<String, Value>, checks: &ClaimChecks<'_>) -> Result<(), ValidationError> {
    match claims.get("iss").and_then(Value::as_str) {
        Some(iss) if iss == checks.issuer => {}
        Some(_) => return Err(ValidationError::Issuer),
        None => return Err(ValidationError::Claim("iss")),
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(ValidationError::Claim("aud")),
    };
    if !audiences.contains(&checks.audience) {
        return Err(ValidationError::Audience);
    }
    if let Some(party) = checks.authorized_party {
        match claims.get("azp").and_then(Value::as_str) {
            Some(azp) if azp == party => {}
            Some(_) => return Err(ValidationError::AuthorizedParty),
            None if audiences.len() > 1 => return Err(ValidationError::AuthorizedParty),
            None => {}
        }
    }
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ValidationError::Claim("sub"));
    }
    let exp = number(claims, "exp")?.ok_or(ValidationError::Claim("exp"))?;
    if exp.saturating_add(checks.leeway) <= checks.now {
        return Err(ValidationError::Expired);
    }
    if let Some(iat) = number(claims, "iat")?
        && iat > checks.now.saturating_add(checks.leeway)
    {
        return Err(ValidationError::IssuedInFuture);
    }
    if let Some(nbf) = number(claims, "nbf")?
        && nbf > checks.now.saturating_add(checks.leeway)
    {
        return Err(ValidationError::NotYetValid);
    }
    if let Some(expected) = checks.nonce {
        match claims.get("nonce").and_then(Value::as_str) {
            Some(nonce) if expected.ct_eq(nonce) => {}
            _ => return Err(ValidationError::Nonce),
        }
    }
    Ok(())
}

/// Seconds since the Unix epoch.
#[must_use]
pub fn now_epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
