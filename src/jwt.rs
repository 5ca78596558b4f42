//! JWT verification: an allow-list of asymmetric algorithms, the signature, then each claim
//! check (`iss`, `aud`, `azp`, `exp`, `iat`, `nbf`, `nonce`), each failing with the
//! [`ValidationError`] that names it.
//!
//! Parsing is strict and bounded: three base64url segments, a JSON object header with a string
//! `alg`, a JSON object payload, a non-empty signature, and at most [`MAX_TOKEN_BYTES`] bytes.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::jwk::{Algorithm, VerifyingKey, allowed_algorithm};

/// Largest token accepted; anything longer is rejected before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A JWT split and decoded, with its signature not yet checked.
#[derive(Debug)]
pub struct UnverifiedJwt<'a> {
    /// The header's algorithm (already on the allow-list).
    pub alg: Algorithm,
    /// The header's key id.
    pub kid: Option<String>,
    /// The header's `typ`.
    pub typ: Option<String>,
    /// The registered claims the checks read (the payload is parsed once, into these).
    pub claims: RegisteredClaims,
    payload: String,
    signing_input: &'a str,
    signature: &'a str,
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    kid: Option<String>,
    typ: Option<String>,
    /// Whether the header has `crit`, whatever its value (even `null`).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// A claim as the payload has it, typed loosely: a claim of the wrong type fails the check that
/// reads it (naming that claim), not the parsing of the whole payload.
#[derive(Debug, Default, Clone, PartialEq)]
enum Loose {
    #[default]
    Absent,
    Str(String),
    /// A number; `None` when it is negative.
    Num(Option<u64>),
    /// An array of strings only.
    List(Vec<String>),
    /// `null`.
    Null,
    /// A boolean, an object, or an array holding anything but strings.
    Other,
}

impl Loose {
    fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LooseVisitor;

        impl<'de> Visitor<'de> for LooseVisitor {
            type Value = Loose;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Loose, E> {
                Ok(Loose::Other)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
                Ok(Loose::Num(Some(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
                Ok(Loose::Num(u64::try_from(v).ok()))
            }

            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "NumericDate may be fractional; whole seconds are what the checks compare"
            )]
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose, E> {
                Ok(Loose::Num((v >= 0.0).then_some(v as u64)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
                Ok(Loose::Str(v.to_owned()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Loose, E> {
                Ok(Loose::Str(v))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
                Ok(Loose::Null)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
                let mut strings = Vec::new();
                let mut only_strings = true;
                while let Some(item) = seq.next_element::<Loose>()? {
                    match item {
                        Loose::Str(s) => strings.push(s),
                        _ => only_strings = false,
                    }
                }
                Ok(if only_strings {
                    Loose::List(strings)
                } else {
                    Loose::Other
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
        }

        deserializer.deserialize_any(LooseVisitor)
    }
}

/// The claims the checks read, parsed once from the payload; every other claim is skipped
/// (the payload text keeps them all, see [`UnverifiedJwt::payload`]).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RegisteredClaims {
    #[serde(default)]
    iss: Loose,
    #[serde(default)]
    sub: Loose,
    #[serde(default)]
    aud: Loose,
    #[serde(default)]
    azp: Loose,
    #[serde(default)]
    exp: Loose,
    #[serde(default)]
    iat: Loose,
    #[serde(default)]
    nbf: Loose,
    #[serde(default)]
    nonce: Loose,
    #[serde(default)]
    scope: Loose,
    #[serde(default)]
    organization_id: Loose,
    #[serde(default)]
    jti: Loose,
    #[serde(default)]
    client_id: Loose,
    /// The actor of an impersonated or delegated token (RFC 8693 §4.1), kept whole: it nests.
    #[serde(default)]
    act: Option<Value>,
}

impl RegisteredClaims {
    /// `sub`, when it is a string.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.sub.as_str()
    }

    /// `scope` (space-separated), when it is a string.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_str()
    }

    /// `client_id` (the app the token was issued to), when it is a string.
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_str()
    }

    /// `organization_id`, when it is a string.
    #[must_use]
    pub fn organization_id(&self) -> Option<&str> {
        self.organization_id.as_str()
    }

    /// `exp` (seconds since the epoch), when it is a non-negative number.
    #[must_use]
    pub fn expires_at(&self) -> Option<u64> {
        match self.exp {
            Loose::Num(exp) => exp,
            _ => None,
        }
    }

    /// The actor (`act`, RFC 8693 §4.1) of an impersonated or delegated token; `None` when the
    /// claim is absent or `null`.
    #[must_use]
    pub fn actor(&self) -> Option<&Value> {
        self.act.as_ref()
    }

    /// The audiences: `aud` as a string, or the strings of `aud` as a list.
    ///
    /// # Errors
    /// [`ValidationError::Claim`] (`aud`) when `aud` is missing or neither.
    pub fn audiences(&self) -> Result<Vec<&str>, ValidationError> {
        match &self.aud {
            Loose::Str(aud) => Ok(vec![aud.as_str()]),
            Loose::List(list) => Ok(list.iter().map(String::as_str).collect()),
            _ => Err(ValidationError::Claim("aud")),
        }
    }
}

fn decode_segment(segment: &str) -> Result<Vec<u8>, ValidationError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| ValidationError::Malformed("a segment is not base64url"))
}

/// Parses `json` into `T` if it is a JSON object (a struct would also accept an array).
fn json_object<'a, T: Deserialize<'a>>(json: &'a str) -> Option<T> {
    if !json.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// Deepest nesting of arrays and objects accepted in a payload. Real tokens nest two or three
/// levels; the Python models' JSON parser stops at 200, so anything the checks accept fits them.
pub const MAX_JSON_DEPTH: usize = 64;

/// Whether `json` nests arrays/objects deeper than [`MAX_JSON_DEPTH`] (a linear scan that
/// skips strings).
fn nested_too_deeply(json: &str) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
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
    let header = String::from_utf8(decode_segment(header)?).ok();
    let header: RawHeader<'_> = header
        .as_deref()
        .and_then(json_object)
        .ok_or(ValidationError::Malformed(
            "the header is not a JSON object with an alg",
        ))?;
    let alg = allowed_algorithm(&header.alg)
        .ok_or_else(|| ValidationError::Algorithm(header.alg.chars().take(16).collect()))?;
    if header.crit {
        // RFC 7515 §4.1.11: a recipient must reject a JWS whose `crit` lists an extension it
        // does not understand. This client understands none (and `crit` may not be empty).
        return Err(ValidationError::CriticalHeader);
    }
    if signature.is_empty() {
        return Err(ValidationError::Malformed("the signature is empty"));
    }
    let payload = String::from_utf8(decode_segment(payload)?)
        .map_err(|_| ValidationError::Malformed("the payload is not a JSON object"))?;
    if nested_too_deeply(&payload) {
        return Err(ValidationError::Malformed("the payload is nested too deeply"));
    }
    let claims =
        json_object(&payload).ok_or(ValidationError::Malformed("the payload is not a JSON object"))?;
    let signing_input = &token[..token.len() - signature.len() - 1];
    Ok(UnverifiedJwt {
        alg,
        kid: header.kid,
        typ: header.typ,
        claims,
        payload,
        signing_input,
        signature,
    })
}

/// Whether a JWS `typ` names a JWT access token (RFC 9068 §2.1: `at+jwt`, or the full media type
/// `application/at+jwt`; media types compare case-insensitively).
#[must_use]
pub fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        let typ = typ.strip_prefix("application/").unwrap_or(typ);
        typ.eq_ignore_ascii_case("at+jwt")
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
        let signature = decode_segment(self.signature).map_err(|_| ValidationError::Signature)?;
        if key.verify(self.alg, self.signing_input.as_bytes(), &signature) {
            Ok(())
        } else {
            Err(ValidationError::Signature)
        }
    }

    /// The payload as JSON text (every claim, as the provider wrote it).
    #[must_use]
    pub fn payload(&self) -> &str {
        &self.payload
    }

    /// The payload as JSON text, taken out of the token.
    #[must_use]
    pub fn into_payload(self) -> String {
        self.payload
    }

    /// The registered claims and the payload's JSON text, taken out of the token.
    #[must_use]
    pub fn into_parts(self) -> (RegisteredClaims, String) {
        (self.claims, self.payload)
    }

    /// Every claim of the payload, parsed into a JSON map.
    ///
    /// # Errors
    /// [`ValidationError::Malformed`] (not reached for a payload [`parse`] accepted).
    pub fn claims_map(&self) -> Result<Map<String, Value>, ValidationError> {
        parse_json(&self.payload)
    }
}

fn parse_json<T: DeserializeOwned>(json: &str) -> Result<T, ValidationError> {
    serde_json::from_str(json).map_err(|_| ValidationError::Malformed("the payload is not a JSON object"))
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

fn number(claim: &Loose, name: &'static str) -> Result<Option<u64>, ValidationError> {
    match claim {
        Loose::Absent => Ok(None),
        Loose::Num(Some(value)) => Ok(Some(*value)),
        _ => Err(ValidationError::Claim(name)),
    }
}

/// Checks the registered claims of a verified token, in a fixed order.
///
/// # Errors
/// The first failing check.
pub fn check_claims(claims: &RegisteredClaims, checks: &ClaimChecks<'_>) -> Result<(), ValidationError> {
    check_claims_with(claims, checks, true)
}

/// [`check_claims`], where `require_audience` false accepts a token without `aud` (an opaque
/// access token's introspection answer: the token was issued for no API resource).
pub(crate) fn check_claims_with(
    claims: &RegisteredClaims,
    checks: &ClaimChecks<'_>,
    require_audience: bool,
) -> Result<(), ValidationError> {
    match &claims.iss {
        Loose::Str(iss) if iss == checks.issuer => {}
        Loose::Str(_) => return Err(ValidationError::Issuer),
        _ => return Err(ValidationError::Claim("iss")),
    }
    let audiences = match (&claims.aud, require_audience) {
        (Loose::Absent | Loose::Null, false) => Vec::new(),
        _ => claims.audiences()?,
    };
    if (require_audience || !audiences.is_empty()) && !audiences.contains(&checks.audience) {
        return Err(ValidationError::Audience);
    }
    if let Some(party) = checks.authorized_party {
        match claims.azp.as_str() {
            Some(azp) if azp == party => {}
            Some(_) => return Err(ValidationError::AuthorizedParty),
            None if audiences.len() > 1 => return Err(ValidationError::AuthorizedParty),
            None => {}
        }
    }
    if claims.sub.as_str().is_none_or(str::is_empty) {
        return Err(ValidationError::Claim("sub"));
    }
    let exp = number(&claims.exp, "exp")?.ok_or(ValidationError::Claim("exp"))?;
    if exp.saturating_add(checks.leeway) <= checks.now {
        return Err(ValidationError::Expired);
    }
    // `iat` is required in ID tokens (OIDC Core §2) and JWT access tokens (RFC 9068 §2.2).
    let iat = number(&claims.iat, "iat")?.ok_or(ValidationError::Claim("iat"))?;
    if iat > checks.now.saturating_add(checks.leeway) {
        return Err(ValidationError::IssuedInFuture);
    }
    if let Some(nbf) = number(&claims.nbf, "nbf")?
        && nbf > checks.now.saturating_add(checks.leeway)
    {
        return Err(ValidationError::NotYetValid);
    }
    if let Some(expected) = checks.nonce {
        match claims.nonce.as_str() {
            Some(nonce) if expected.ct_eq(nonce) => {}
            _ => return Err(ValidationError::Nonce),
        }
    }
    Ok(())
}

fn optional_string(claim: &Loose, name: &'static str) -> Result<(), ValidationError> {
    match claim {
        Loose::Absent | Loose::Null | Loose::Str(_) => Ok(()),
        _ => Err(ValidationError::Claim(name)),
    }
}

/// Checks the types of the optional claims `AccessTokenClaims` declares (`jti`, `scope`,
/// `client_id`, `organization_id`: strings or null; `act`: an actor with a string `sub`), so that every access token that passes
/// the checks fits the model. Other claims (custom JWT claims) may have any type.
///
/// # Errors
/// [`ValidationError::Claim`] naming the claim.
pub fn check_access_token_claim_types(claims: &RegisteredClaims) -> Result<(), ValidationError> {
    optional_string(&claims.jti, "jti")?;
    optional_string(&claims.scope, "scope")?;
    optional_string(&claims.client_id, "client_id")?;
    optional_string(&claims.organization_id, "organization_id")?;
    match &claims.act {
        Some(actor) if !fits_actor(actor) => Err(ValidationError::Claim("act")),
        _ => Ok(()),
    }
}

/// Whether `act` fits `ActorClaims`: an object with a string `sub`, whose own `act`, if any, is
/// `null` or fits too (the nesting is bounded by [`MAX_JSON_DEPTH`]).
fn fits_actor(act: &Value) -> bool {
    let Value::Object(actor) = act else {
        return false;
    };
    actor.get("sub").is_some_and(Value::is_string)
        && actor
            .get("act")
            .is_none_or(|inner| inner.is_null() || fits_actor(inner))
}

/// The JSON type an ID-token claim must have when present (or be `null`).
#[derive(Debug, Clone, Copy)]
enum Shape {
    Str,
    Bool,
    Number,
    StrList,
    Object,
}

/// The optional claims `IdTokenClaims` declares, with their types (the registered ones are
/// checked by [`check_claims`]).
const ID_TOKEN_CLAIM_SHAPES: [(&str, Shape); 18] = [
    ("name", Shape::Str),
    ("username", Shape::Str),
    ("picture", Shape::Str),
    ("email", Shape::Str),
    ("email_verified", Shape::Bool),
    ("phone_number", Shape::Str),
    ("phone_number_verified", Shape::Bool),
    ("created_at", Shape::Number),
    ("updated_at", Shape::Number),
    ("identities", Shape::Object),
    ("roles", Shape::StrList),
    ("organizations", Shape::StrList),
    ("organization_roles", Shape::StrList),
    ("at_hash", Shape::Str),
    ("nonce", Shape::Str),
    ("azp", Shape::Str),
    ("sid", Shape::Str),
    ("auth_time", Shape::Number),
];

/// Checks the types of the optional claims `IdTokenClaims` declares, so that every ID token
/// that passes the checks fits the model. Unknown claims may have any type.
///
/// # Errors
/// [`ValidationError::Claim`] naming the first claim of the wrong type.
pub fn check_id_token_claim_types(claims: &Map<String, Value>) -> Result<(), ValidationError> {
    for (name, shape) in ID_TOKEN_CLAIM_SHAPES {
        let fits = match (claims.get(name), shape) {
            (None | Some(Value::Null), _)
            | (Some(Value::String(_)), Shape::Str)
            | (Some(Value::Bool(_)), Shape::Bool)
            | (Some(Value::Number(_)), Shape::Number)
            | (Some(Value::Object(_)), Shape::Object) => true,
            (Some(Value::Array(items)), Shape::StrList) => items.iter().all(Value::is_string),
            _ => false,
        };
        if !fits {
            return Err(ValidationError::Claim(name));
        }
    }
    Ok(())
}

/// Which model a token's claims must fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An ID token (`IdTokenClaims`).
    IdToken,
    /// A JWT access token (`AccessTokenClaims`).
    AccessToken,
}

/// Every claim check a verified token's payload goes through: [`check_claims`], then the claim
/// types of its model. The same functions the verification paths call, on a payload alone.
///
/// # Errors
/// The first failing check.
pub fn check_payload(
    payload: &str,
    checks: &ClaimChecks<'_>,
    kind: TokenKind,
) -> Result<(), ValidationError> {
    if nested_too_deeply(payload) {
        return Err(ValidationError::Malformed("the payload is nested too deeply"));
    }
    let claims: RegisteredClaims =
        json_object(payload).ok_or(ValidationError::Malformed("the payload is not a JSON object"))?;
    check_claims(&claims, checks)?;
    match kind {
        TokenKind::AccessToken => check_access_token_claim_types(&claims),
        TokenKind::IdToken => check_id_token_claim_types(&parse_json(payload)?),
    }
}

/// Seconds since the Unix epoch.
#[must_use]
pub fn now_epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
pub(crate) mod tests;
