//! The logout token checks, each failing alone, and the in-memory replay store.

use serde_json::{Value, json};

use super::*;
use crate::jwt::tests::{ISSUER, NOW, Signer, keyset, overridden};

const APP: &str = "app-id";

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": APP, "iat": NOW - 5, "jti": "jti-1", "sub": "user-1", "sid": "sid-1",
        "events": {LOGOUT_EVENT: {}},
    })
}

fn with(overrides: &Value) -> Value {
    overridden(claims(), overrides)
}

fn expected() -> LogoutExpectations<'static> {
    LogoutExpectations {
        issuer: ISSUER,
        audience: APP,
        now: NOW,
        leeway: 60,
    }
}

fn sign(signer: &Signer, typ: Option<&str>, claims: &Value) -> String {
    let mut header = json!({"alg": signer.alg(), "kid": "k1"});
    if let Some(typ) = typ {
        header["typ"] = json!(typ);
    }
    signer.sign(&header, claims)
}

fn check(token: &str, signer: &Signer) -> Result<LogoutToken, ValidationError> {
    let keys = keyset(&[signer.jwk(Some("k1"))]);
    check_logout_token(&jwt::parse(token)?, &keys, &expected())
}

#[test]
fn a_logout_token_from_the_provider_passes() {
    let signer = Signer::ec();
    let token = check(&sign(&signer, Some("logout+jwt"), &claims()), &signer).unwrap();
    assert_eq!(token.subject.as_deref(), Some("user-1"));
    assert_eq!(token.session_id.as_deref(), Some("sid-1"));
    assert_eq!(token.issued_at, NOW - 5);
    assert_eq!(token.expires_at, NOW - 5 + MAX_AGE + 60);
    assert_eq!(token.jti, "jti-1");
    // `exp`, when present, bounds the token instead of the age; `aud` may be a list.
    let listed = with(&json!({"exp": NOW + 30, "aud": ["other", APP], "sid": null}));
    let token = check(&sign(&signer, Some("logout+jwt"), &listed), &signer).unwrap();
    assert_eq!((token.expires_at, token.session_id), (NOW + 90, None));
}

#[test]
fn the_media_type_is_accepted_in_any_case() {
    let signer = Signer::rsa();
    for typ in ["application/logout+jwt", "Application/Logout+JWT", "LOGOUT+JWT"] {
        assert!(
            check(&sign(&signer, Some(typ), &claims()), &signer).is_ok(),
            "{typ}"
        );
    }
    for typ in [
        None,
        Some("JWT"),
        Some("at+jwt"),
        Some("logout"),
        Some("application/jwt"),
    ] {
        assert_eq!(
            check(&sign(&signer, typ, &claims()), &signer),
            Err(ValidationError::LogoutTokenType),
            "{typ:?}"
        );
    }
}

#[test]
fn each_check_refuses_alone() {
    let signer = Signer::ec();
    let cases = [
        (
            json!({"iss": "https://evil.example/oidc"}),
            ValidationError::Issuer,
        ),
        (json!({"iss": null}), ValidationError::Claim("iss")),
        (json!({"aud": "another-app"}), ValidationError::Audience),
        (json!({"aud": null}), ValidationError::Claim("aud")),
        (json!({"iat": null}), ValidationError::Claim("iat")),
        (json!({"iat": "now"}), ValidationError::Claim("iat")),
        (json!({"iat": NOW + 61}), ValidationError::IssuedInFuture),
        (json!({"exp": NOW - 61}), ValidationError::Expired),
        (json!({"iat": NOW - MAX_AGE - 61}), ValidationError::Expired),
        (json!({"events": null}), ValidationError::LogoutEvent),
        (json!({"events": {}}), ValidationError::LogoutEvent),
        (
            json!({"events": {LOGOUT_EVENT: true}}),
            ValidationError::LogoutEvent,
        ),
        (json!({"events": [LOGOUT_EVENT]}), ValidationError::LogoutEvent),
        (json!({"sub": null, "sid": null}), ValidationError::Claim("sub")),
        (json!({"sub": 7}), ValidationError::Claim("sub")),
        (json!({"sid": ""}), ValidationError::Claim("sid")),
        (json!({"nonce": "n-1"}), ValidationError::NonceInLogoutToken),
        (json!({"jti": null}), ValidationError::Claim("jti")),
    ];
    for (overrides, error) in cases {
        let token = sign(&signer, Some("logout+jwt"), &with(&overrides));
        assert_eq!(check(&token, &signer), Err(error), "{overrides}");
    }
    // Within the clock tolerance, iat and exp still pass; a token with only `sid` passes.
    for overrides in [
        json!({"iat": NOW + 59}),
        json!({"exp": NOW - 59}),
        json!({"sub": null}),
    ] {
        let token = sign(&signer, Some("logout+jwt"), &with(&overrides));
        assert!(check(&token, &signer).is_ok(), "{overrides}");
    }
}

#[test]
fn a_forged_signature_or_key_is_refused() {
    let (provider, attacker) = (Signer::ec(), Signer::ec());
    let forged = sign(&attacker, Some("logout+jwt"), &claims());
    assert_eq!(check(&forged, &provider), Err(ValidationError::Signature));
    let mut header = json!({"alg": attacker.alg(), "kid": "other", "typ": "logout+jwt"});
    let unknown = attacker.sign(&header, &claims());
    assert_eq!(check(&unknown, &provider), Err(ValidationError::UnknownKey));
    header["alg"] = json!("none");
    let none = attacker.sign(&header, &claims());
    assert!(matches!(
        check(&none, &provider),
        Err(ValidationError::Algorithm(_))
    ));
}

#[test]
fn the_memory_store_accepts_a_jti_once_until_it_expires() {
    let store = MemoryReplayStore::default();
    assert!(store.claim_at("a", NOW + 10, NOW));
    assert!(!store.claim_at("a", NOW + 10, NOW + 9));
    assert!(store.claim_at("b", NOW + 10, NOW));
    // Expired, it may come again (the token itself is refused by then).
    assert!(store.claim_at("a", NOW + 30, NOW + 10));
    assert_eq!(store.len(), 1, "\"b\" expired with it");
}

#[test]
fn the_memory_store_is_bounded() {
    let store = MemoryReplayStore::with_capacity(3);
    for (i, jti) in ["a", "b", "c", "d"].iter().enumerate() {
        assert!(store.claim_at(jti, NOW + 100 + i as u64, NOW));
    }
    assert_eq!(store.len(), 3);
    // The one closest to expiry made room; the others are still refused.
    assert!(store.claim_at("a", NOW + 200, NOW));
    assert!(!store.claim_at("d", NOW + 200, NOW));
}

#[test]
fn concurrent_claims_of_one_jti_have_one_winner() {
    let store = std::sync::Arc::new(MemoryReplayStore::default());
    let wins: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                scope.spawn(move || usize::from(store.claim_at("same", NOW + 10, NOW)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
}
