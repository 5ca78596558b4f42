//! The JWT verification matrix, with keys generated per test run.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::*;
use crate::jwk::ALLOWED_ALGORITHMS;
use crate::jwks::KeySet;
use crate::secret::Nonce;

pub(crate) const ISSUER: &str = "https://tenant.logto.app/oidc";
const APP: &str = "app-id";
pub(crate) const NOW: u64 = 1_800_000_000;

/// Cases per property test: `LOGTO_PROPERTY_CASES` (the long run sets 250000+), else 25000
/// (CI: four properties make 10^5 cases in a few seconds).
pub(crate) fn property_cases() -> u32 {
    std::env::var("LOGTO_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25_000)
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl Signer {
    pub(crate) fn ec() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        Self::Ec(EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).unwrap())
    }

    pub(crate) fn rsa() -> Self {
        Self::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    pub(crate) fn jwk(&self, kid: Option<&str>) -> Value {
        let mut jwk = match self {
            Self::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-384", "x": b64(&point[1..49]), "y": b64(&point[49..97]), "use": "sig"})
            }
            Self::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
        };
        if let Some(kid) = kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    pub(crate) fn alg(&self) -> &'static str {
        match self {
            Self::Ec(_) => "ES384",
            Self::Rsa(_) => "RS256",
        }
    }

    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let signature = match self {
            Self::Ec(pair) => pair.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Self::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
        };
        format!("{input}.{}", b64(&signature))
    }

    pub(crate) fn token(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": self.alg(), "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        self.sign(&header, claims)
    }
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": APP, "sub": "user-1", "iat": NOW - 5, "exp": NOW + 3600, "nonce": "n-1"})
}

fn with(overrides: &Value) -> Value {
    overridden(claims(), overrides)
}

/// `claims` with each member of `overrides` set, or removed where it is `null`.
pub(crate) fn overridden(mut claims: Value, overrides: &Value) -> Value {
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

pub(crate) fn keyset(keys: &[Value]) -> KeySet {
    KeySet::from_document(&json!({ "keys": keys })).unwrap()
}

/// Parses, finds the key, verifies the signature and the claims: the full ID-token path.
fn verify(token: &str, keys: &KeySet) -> Result<(), ValidationError> {
    let jwt = parse(token)?;
    let key = keys
        .find(jwt.kid.as_deref(), jwt.alg)
        .ok_or(ValidationError::UnknownKey)?;
    jwt.verify_signature(key)?;
    let nonce = Nonce::new("n-1");
    check_claims(
        &jwt.claims,
        &ClaimChecks {
            issuer: ISSUER,
            audience: APP,
            authorized_party: Some(APP),
            nonce: Some(&nonce),
            now: NOW,
            leeway: 60,
        },
    )
}

#[test]
fn valid_es384_and_rs256_tokens_verify() {
    for signer in [Signer::ec(), Signer::rsa()] {
        let keys = keyset(&[signer.jwk(Some("k1"))]);
        assert_eq!(verify(&signer.token(Some("k1"), &claims()), &keys), Ok(()));
    }
}

#[test]
fn single_key_without_kid_is_used_for_a_token_without_kid() {
    let signer = Signer::ec();
    let keys = keyset(&[signer.jwk(None)]);
    assert_eq!(verify(&signer.token(None, &claims()), &keys), Ok(()));
    // With two candidate keys a token without kid is ambiguous.
    let other = Signer::ec();
    let keys = keyset(&[signer.jwk(None), other.jwk(None)]);
    assert_eq!(
        verify(&signer.token(None, &claims()), &keys),
        Err(ValidationError::UnknownKey)
    );
}

#[test]
fn claim_checks_name_the_failed_check() {
    let signer = Signer::ec();
    let keys = keyset(&[signer.jwk(Some("k1"))]);
    let cases = [
        (
            json!({"iss": "https://evil.example/oidc"}),
            ValidationError::Issuer,
        ),
        (json!({"aud": "another-app"}), ValidationError::Audience),
        (
            json!({"aud": ["another-app", APP]}),
            ValidationError::AuthorizedParty,
        ),
        (
            json!({"aud": [APP, "x"], "azp": "x"}),
            ValidationError::AuthorizedParty,
        ),
        (json!({"exp": NOW - 61}), ValidationError::Expired),
        (json!({"iat": NOW + 61}), ValidationError::IssuedInFuture),
        (json!({"nbf": NOW + 61}), ValidationError::NotYetValid),
        (json!({"nonce": "n-2"}), ValidationError::Nonce),
        (json!({"nonce": null}), ValidationError::Nonce),
        (json!({"sub": null}), ValidationError::Claim("sub")),
        (json!({"exp": null}), ValidationError::Claim("exp")),
        (json!({"exp": "soon"}), ValidationError::Claim("exp")),
    ];
    for (overrides, expected) in cases {
        assert_eq!(
            verify(&signer.token(Some("k1"), &with(&overrides)), &keys),
            Err(expected),
            "{overrides}"
        );
    }
    // Within the leeway, and aud as a list with the right azp, pass.
    for ok in [
        json!({"exp": NOW - 30}),
        json!({"iat": NOW + 30}),
        json!({"aud": [APP, "x"], "azp": APP}),
    ] {
        assert_eq!(
            verify(&signer.token(Some("k1"), &with(&ok)), &keys),
            Ok(()),
            "{ok}"
        );
    }
}

#[test]
fn forged_signatures_and_algorithms_are_rejected() {
    let signer = Signer::ec();
    let attacker = Signer::ec();
    let keys = keyset(&[signer.jwk(Some("k1"))]);

    // Signed by another key under the provider's kid.
    assert_eq!(
        verify(&attacker.token(Some("k1"), &claims()), &keys),
        Err(ValidationError::Signature)
    );

    // A tampered payload keeps the original signature.
    let token = signer.token(Some("k1"), &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(with(&json!({"sub": "admin"})).to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(verify(&tampered, &keys), Err(ValidationError::Signature));

    // alg none, with and without a signature segment.
    let none_header = b64(json!({"alg": "none", "kid": "k1"}).to_string().as_bytes());
    let body = b64(claims().to_string().as_bytes());
    assert_eq!(
        verify(&format!("{none_header}.{body}."), &keys),
        Err(ValidationError::Algorithm("none".into()))
    );
    assert_eq!(
        verify(&format!("{none_header}.{body}.c2ln"), &keys),
        Err(ValidationError::Algorithm("none".into()))
    );

    // HS256 with the provider's public key (as JWK JSON) as the HMAC secret.
    let secret = signer.jwk(Some("k1")).to_string();
    let hs_input = format!(
        "{}.{body}",
        b64(json!({"alg": "HS256", "kid": "k1"}).to_string().as_bytes())
    );
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes()),
        hs_input.as_bytes(),
    );
    let hs = format!("{hs_input}.{}", b64(mac.as_ref()));
    assert_eq!(
        verify(&hs, &keys),
        Err(ValidationError::Algorithm("HS256".into()))
    );

    // An RS256 header over an EC key set finds no usable key.
    let rsa = Signer::rsa();
    assert_eq!(
        verify(&rsa.token(Some("k1"), &claims()), &keys),
        Err(ValidationError::UnknownKey)
    );
    // An unknown kid.
    assert_eq!(
        verify(&signer.token(Some("k2"), &claims()), &keys),
        Err(ValidationError::UnknownKey)
    );
}

#[test]
fn a_jwk_pinned_to_another_algorithm_is_not_used() {
    let signer = Signer::rsa();
    let mut jwk = signer.jwk(Some("k1"));
    jwk["alg"] = json!("PS256");
    let keys = keyset(&[jwk]);
    assert_eq!(
        verify(&signer.token(Some("k1"), &claims()), &keys),
        Err(ValidationError::UnknownKey)
    );
}

#[test]
fn malformed_tokens_are_rejected_without_panicking() {
    let keys = keyset(&[Signer::ec().jwk(Some("k1"))]);
    let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
    for token in [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        "e30.e30.sig",
        "bnVsbA.e30.sig",
        huge.as_str(),
    ] {
        assert!(
            matches!(
                verify(token, &keys),
                Err(ValidationError::Malformed(_) | ValidationError::Algorithm(_))
            ),
            "{token:.20}"
        );
    }
    let header = b64(br#"{"alg":"ES384","kid":"k1"}"#);
    assert!(matches!(
        verify(&format!("{header}.{}.sig", b64(b"[1]")), &keys),
        Err(ValidationError::Malformed(_))
    ));
    assert!(matches!(
        verify(&format!("{header}.e30."), &keys),
        Err(ValidationError::Malformed(_))
    ));
}

#[test]
fn unverified_decoding_reads_the_payload() {
    let token = Signer::ec().token(Some("k1"), &claims());
    assert_eq!(decode_claims_unverified(&token).unwrap()["sub"], "user-1");
    assert!(decode_claims_unverified("opaque-token").is_err());
}

#[test]
fn unusable_jwks_entries_are_skipped_and_keys_are_parsed_once() {
    let ec = Signer::ec();
    let mut short = ec.jwk(Some("short"));
    short["x"] = json!(b64(&[1; 47]));
    let mut pinned_elsewhere = ec.jwk(Some("pinned"));
    pinned_elsewhere["alg"] = json!("ES256");
    let mut encryption = ec.jwk(Some("enc"));
    encryption["use"] = json!("enc");
    let hmac = json!({"kty": "oct", "k": b64(b"secret"), "kid": "hmac"});
    let mut off_curve = ec.jwk(Some("off"));
    let mut y = URL_SAFE_NO_PAD.decode(off_curve["y"].as_str().unwrap()).unwrap();
    y[47] ^= 1;
    off_curve["y"] = json!(b64(&y));
    let rsa = Signer::rsa();
    let mut rs256_only = rsa.jwk(Some("rsa"));
    rs256_only["alg"] = json!("RS256");
    let keys = keyset(&[
        short,
        pinned_elsewhere,
        encryption,
        hmac,
        off_curve,
        ec.jwk(Some("good")),
        rs256_only,
    ]);
    assert_eq!(keys.len(), 2);
    let rsa_key = keys.find(Some("rsa"), Algorithm::RS256).unwrap();
    assert!(rsa_key.supports(Algorithm::RS256) && !rsa_key.supports(Algorithm::PS256));
    assert_eq!(verify(&ec.token(Some("good"), &claims()), &keys), Ok(()));
    assert_eq!(verify(&rsa.token(Some("rsa"), &claims()), &keys), Ok(()));
}

#[test]
fn es512_tokens_verify_with_a_p521_key() {
    use aws_lc_rs::signature::ECDSA_P521_SHA512_FIXED_SIGNING;
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P521_SHA512_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P521_SHA512_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-521", "alg": "ES512", "kid": "p521",
        "x": b64(&point[1..67]), "y": b64(&point[67..133]),
    });
    let keys = keyset(&[jwk]);
    let sign = |header: &Value, claims: &Value| {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = pair.sign(&rng, input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature.as_ref()))
    };
    let token = sign(&json!({"alg": "ES512", "kid": "p521"}), &claims());
    assert_eq!(verify(&token, &keys), Ok(()));
    let tampered = sign(
        &json!({"alg": "ES512", "kid": "p521"}),
        &with(&json!({"sub": "x"})),
    );
    let (head, _) = token.rsplit_once('.').unwrap();
    let (_, tampered_sig) = tampered.rsplit_once('.').unwrap();
    assert_eq!(
        verify(&format!("{head}.{tampered_sig}"), &keys),
        Err(ValidationError::Signature)
    );
    // A P-521 key never serves ES384.
    let es384 = sign(&json!({"alg": "ES384", "kid": "p521"}), &claims());
    assert_eq!(verify(&es384, &keys), Err(ValidationError::UnknownKey));
}

#[test]
fn a_critical_header_extension_is_rejected() {
    let signer = Signer::ec();
    let keys = keyset(&[signer.jwk(Some("k1"))]);
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!(null), json!("x")] {
        let header = json!({"alg": "ES384", "kid": "k1", "crit": crit, "exp": 1, "b64": true});
        let token = signer.sign(&header, &claims());
        assert_eq!(
            verify(&token, &keys),
            Err(ValidationError::CriticalHeader),
            "{crit}"
        );
        assert_eq!(ValidationError::CriticalHeader.check(), "crit");
    }
}

mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e20f64..1e20).prop_map(|f| json!(f)),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                prop::collection::btree_map(".{0,4}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn numeric_date() -> impl Strategy<Value = Value> {
        prop_oneof![
            (NOW - 120..NOW + 7200).prop_map(Value::from),
            (0.0f64..4e9).prop_map(|f| json!(f)),
            any::<i64>().prop_map(Value::from),
            json_value(),
        ]
    }

    /// Claims close to a real token's, each sometimes absent, null or anything at all.
    fn claims() -> impl Strategy<Value = Map<String, Value>> {
        let plausible = (
            prop_oneof![Just(json!(ISSUER)), json_value()],
            prop_oneof![
                Just(json!(APP)),
                Just(json!([APP, "other"])),
                Just(json!([APP, 7])),
                json_value()
            ],
            prop_oneof![Just(json!("user-1")), Just(json!("")), json_value()],
            numeric_date(),
            numeric_date(),
            numeric_date(),
            prop_oneof![Just(json!(APP)), json_value()],
            prop_oneof![Just(json!("n-1")), json_value()],
            prop_oneof![Just(json!("read write")), json_value()],
            prop_oneof![Just(json!(["admin"])), json_value()],
        );
        let absent = prop::collection::vec(any::<bool>(), 10);
        (plausible, absent).prop_map(|(values, absent)| {
            let (iss, aud, sub, exp, iat, nbf, azp, nonce, scope, roles) = values;
            let names = [
                "iss", "aud", "sub", "exp", "iat", "nbf", "azp", "nonce", "scope", "roles",
            ];
            let values = [iss, aud, sub, exp, iat, nbf, azp, nonce, scope, roles];
            names
                .into_iter()
                .zip(values)
                .zip(absent)
                .filter(|(_, absent)| !absent)
                .map(|((name, value), _)| (name.to_owned(), value))
                .collect()
        })
    }

    fn as_seconds(value: Option<&Value>) -> Option<u64> {
        match value? {
            Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            _ => None,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(property_cases()))]

        /// Whatever the string, parsing never panics; what it accepts has three segments, an
        /// allowed alg, no crit, and a payload that is a JSON object.
        #[test]
        fn parsing_any_string(text in prop_oneof![
            ".{0,200}",
            "[A-Za-z0-9_=-]{0,40}(\\.[A-Za-z0-9_=-]{0,40}){0,4}",
        ]) {
            if let Ok(jwt) = parse(&text) {
                prop_assert_eq!(text.split('.').count(), 3);
                prop_assert!(ALLOWED_ALGORITHMS.contains(&jwt.alg));
                prop_assert!(matches!(serde_json::from_str::<Value>(jwt.payload()), Ok(Value::Object(_))));
            }
        }

        /// Headers of any shape: only an allowed alg without crit is parsed.
        #[test]
        fn parsing_any_header(header in prop::collection::btree_map(
            prop_oneof![Just("alg".to_owned()), Just("crit".to_owned()), Just("kid".to_owned()), ".{0,4}"],
            prop_oneof![Just(json!("ES384")), Just(json!("none")), Just(json!("HS256")), json_value()],
            0..4,
        )) {
            let header = Value::Object(header.into_iter().collect());
            let token = format!("{}.{}.c2ln", b64(header.to_string().as_bytes()), b64(b"{}"));
            if let Ok(jwt) = parse(&token) {
                prop_assert_eq!(Some(jwt.alg.name()), header["alg"].as_str());
                prop_assert!(header.get("crit").is_none());
            }
        }

        /// The claim checks accept a payload only when every registered claim is what the
        /// contract says, and then it has the types both models declare.
        #[test]
        fn claim_checks_accept_only_valid_claims(claims in claims(), id_token in any::<bool>()) {
            let payload = Value::Object(claims.clone()).to_string();
            let checks = ClaimChecks {
                issuer: ISSUER,
                audience: APP,
                authorized_party: id_token.then_some(APP),
                nonce: None,
                now: NOW,
                leeway: 60,
            };
            let kind = if id_token { TokenKind::IdToken } else { TokenKind::AccessToken };
            if check_payload(&payload, &checks, kind).is_ok() {
                prop_assert_eq!(claims.get("iss"), Some(&json!(ISSUER)));
                let audiences: Vec<&str> = match &claims["aud"] {
                    Value::String(aud) => vec![aud.as_str()],
                    Value::Array(list) => list.iter().map(|v| v.as_str()).collect::<Option<_>>().unwrap_or_default(),
                    _ => vec![],
                };
                prop_assert!(audiences.contains(&APP));
                prop_assert!(claims["aud"].as_array().is_none_or(|l| l.iter().all(Value::is_string)));
                prop_assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
                let exp = as_seconds(claims.get("exp"));
                prop_assert!(exp.is_some_and(|exp| exp + 60 > NOW));
                let iat = as_seconds(claims.get("iat"));
                prop_assert!(iat.is_some_and(|iat| iat <= NOW + 60));
                if let Some(nbf) = claims.get("nbf").filter(|v| !v.is_null()) {
                    prop_assert!(as_seconds(Some(nbf)).is_some_and(|nbf| nbf <= NOW + 60));
                }
                if id_token {
                    prop_assert!(claims.get("roles").is_none_or(|r| r.is_null()
                        || r.as_array().is_some_and(|l| l.iter().all(Value::is_string))));
                    prop_assert!(claims.get("nonce").is_none_or(|n| n.is_null() || n.is_string()));
                    if audiences.len() > 1 {
                        prop_assert_eq!(claims.get("azp"), Some(&json!(APP)));
                    }
                } else {
                    prop_assert!(claims.get("scope").is_none_or(|s| s.is_null() || s.is_string()));
                }
            }
        }

        /// A real token with any one character changed, cut, or extended never verifies.
        #[test]
        fn a_changed_token_never_verifies(position in any::<prop::sample::Index>(), byte in 0x20u8..0x7f, cut in any::<prop::sample::Index>()) {
            thread_local! {
                static FIXTURE: (String, KeySet) = {
                    let signer = Signer::ec();
                    (signer.token(Some("k1"), &super::claims()), keyset(&[signer.jwk(Some("k1"))]))
                };
            }
            FIXTURE.with(|(token, keys)| {
                let index = position.index(token.len());
                let mut changed = token.clone().into_bytes();
                if changed[index] == byte {
                    return Ok(());
                }
                changed[index] = byte;
                let changed = String::from_utf8(changed).unwrap_or_default();
                let cut = &token[..cut.index(token.len())];
                for candidate in [changed.as_str(), cut] {
                    let outcome = verify(candidate, keys);
                    // The base64url decoder ignores nothing: any change is refused, except one
                    // in the unused low bits of the last character of a segment.
                    if outcome.is_ok() {
                        let original = parse(token).map(|j| (j.payload().to_owned(), j.kid.clone()));
                        let altered = parse(candidate).map(|j| (j.payload().to_owned(), j.kid.clone()));
                        prop_assert_eq!(original, altered);
                    }
                }
                Ok(())
            })?;
        }
    }
}
