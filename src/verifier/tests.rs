//! The access-token checks and the RFC 6750 challenges, with keys generated per test run.

use serde_json::{Value, json};

use super::*;
use crate::jwt::tests::{ISSUER, NOW, Signer, b64, keyset};

const API: &str = "https://api.example.com";

fn verifier(audience: Option<&str>) -> AccessTokenVerifier {
    AccessTokenVerifier::builder("https://tenant.logto.app/", audience.map(str::to_owned))
        .scopes(vec!["read:products".into()])
        .build()
        .unwrap()
}

fn claims(overrides: &Value) -> Value {
    let mut claims = json!({
        "jti": "j-1", "iss": ISSUER, "aud": API, "sub": "user-1", "client_id": "app",
        "iat": NOW - 5, "exp": NOW + 3600, "scope": "read:products write:products",
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn access_token(signer: &Signer, typ: Option<&str>, overrides: &Value) -> String {
    let mut header = json!({"alg": signer.alg(), "kid": "k1"});
    if let Some(typ) = typ {
        header["typ"] = json!(typ);
    }
    signer.sign(&header, &claims(overrides))
}

/// Runs the synchronous path with the given keys at the fixed test time.
fn check(
    verifier: &AccessTokenVerifier,
    token: &str,
    requirements: &Requirements<'_>,
    keys: Option<&KeySet>,
    final_attempt: bool,
) -> Option<Result<VerifiedAccessToken>> {
    let audience = match verifier.audience_for(requirements) {
        Ok(audience) => audience,
        Err(error) => return Some(Err(error)),
    };
    let mut expectations = verifier.expectations(requirements, &audience);
    expectations.now = NOW;
    verifier.verify_with(token, &expectations, requirements, keys, final_attempt)
}

fn rejection(outcome: Option<Result<VerifiedAccessToken>>) -> ValidationError {
    match outcome {
        Some(Err(Error::AccessTokenRejected(e))) => e,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_logto_access_token_verifies_and_keeps_its_payload() {
    for signer in [Signer::ec(), Signer::rsa()] {
        let keys = keyset(&[signer.jwk(Some("k1"))]);
        let verifier = verifier(Some(API));
        for typ in ["at+jwt", "application/at+jwt", "AT+JWT"] {
            let token = access_token(&signer, Some(typ), &json!({"custom": {"tier": "gold"}}));
            let verified = check(&verifier, &token, &Requirements::default(), Some(&keys), false)
                .unwrap()
                .unwrap();
            assert_eq!(verified.claims().subject(), Some("user-1"));
            let payload: Value = serde_json::from_str(verified.payload()).unwrap();
            assert_eq!(payload["custom"]["tier"], "gold");
        }
    }
}

#[test]
fn the_type_must_be_at_jwt() {
    let signer = Signer::ec();
    let keys = keyset(&[signer.jwk(Some("k1"))]);
    let verifier = verifier(Some(API));
    for typ in [None, Some("JWT"), Some("id_token+jwt")] {
        let token = access_token(&signer, typ, &json!({}));
        assert_eq!(
            rejection(check(
                &verifier,
                &token,
                &Requirements::default(),
                Some(&keys),
                false
            )),
            ValidationError::TokenType
        );
    }
}

#[test]
fn claims_scopes_and_organizations_name_the_failed_check() {
    let signer = Signer::ec();
    let keys = keyset(&[signer.jwk(Some("k1"))]);
    let verifier = verifier(Some(API));
    let more = ["write:products".to_owned(), "delete:products".to_owned()];
    let cases: [(Value, Requirements<'_>, ValidationError); 7] = [
        (
            json!({"aud": "https://other.example.com"}),
            Requirements::default(),
            ValidationError::Audience,
        ),
        (
            json!({"exp": NOW - 61}),
            Requirements::default(),
            ValidationError::Expired,
        ),
        (
            json!({"nbf": NOW + 61}),
            Requirements::default(),
            ValidationError::NotYetValid,
        ),
        (
            json!({"iss": "https://evil.example/oidc"}),
            Requirements::default(),
            ValidationError::Issuer,
        ),
        (
            json!({"scope": null}),
            Requirements::default(),
            ValidationError::Scope("read:products".into()),
        ),
        (
            json!({}),
            Requirements {
                scopes: &more,
                organization_id: None,
                ..Requirements::default()
            },
            ValidationError::Scope("read:products write:products delete:products".into()),
        ),
        (
            json!({"organization_id": "org-globex"}),
            Requirements {
                scopes: &[],
                organization_id: Some("org-acme"),
                ..Requirements::default()
            },
            ValidationError::Organization,
        ),
    ];
    for (overrides, requirements, expected) in cases {
        let token = access_token(&signer, Some("at+jwt"), &overrides);
        assert_eq!(
            rejection(check(&verifier, &token, &requirements, Some(&keys), false)),
            expected,
            "{overrides}"
        );
    }
    // A scope granted as a substring of another does not count.
    let token = access_token(&signer, Some("at+jwt"), &json!({"scope": "read:products:all"}));
    assert!(matches!(
        rejection(check(
            &verifier,
            &token,
            &Requirements::default(),
            Some(&keys),
            false
        )),
        ValidationError::Scope(_)
    ));
    // An organization-scoped resource token for the right organization passes.
    let token = access_token(&signer, Some("at+jwt"), &json!({"organization_id": "org-acme"}));
    let requirements = Requirements {
        scopes: &[],
        organization_id: Some("org-acme"),
        ..Requirements::default()
    };
    assert!(matches!(
        check(&verifier, &token, &requirements, Some(&keys), false),
        Some(Ok(_))
    ));
}

#[test]
fn organization_tokens_take_their_audience_from_the_organization() {
    let signer = Signer::ec();
    let keys = keyset(&[signer.jwk(Some("k1"))]);
    let verifier = verifier(None);
    let token = access_token(
        &signer,
        Some("at+jwt"),
        &json!({"aud": "urn:logto:organization:org-acme", "scope": "read:products read:members"}),
    );
    let acme = Requirements {
        scopes: &[],
        organization_id: Some("org-acme"),
        ..Requirements::default()
    };
    assert!(matches!(
        check(&verifier, &token, &acme, Some(&keys), false),
        Some(Ok(_))
    ));
    let globex = Requirements {
        scopes: &[],
        organization_id: Some("org-globex"),
        ..Requirements::default()
    };
    assert_eq!(
        rejection(check(&verifier, &token, &globex, Some(&keys), false)),
        ValidationError::Audience
    );
    assert!(matches!(
        check(&verifier, &token, &Requirements::default(), Some(&keys), false),
        Some(Err(Error::Config(_)))
    ));
    // A verifier pinned to one organization's audience checks it as the organization too.
    let pinned = verifier_for_org("org-acme");
    assert!(matches!(
        check(&pinned, &token, &Requirements::default(), Some(&keys), false),
        Some(Ok(_))
    ));
}

fn verifier_for_org(org: &str) -> AccessTokenVerifier {
    AccessTokenVerifier::builder(
        "https://tenant.logto.app",
        Some(format!("urn:logto:organization:{org}")),
    )
    .organization_id(Some(org.into()))
    .build()
    .unwrap()
}

#[test]
fn missing_keys_ask_for_a_load_and_unknown_kids_are_rejected_after_it() {
    let signer = Signer::ec();
    let verifier = verifier(Some(API));
    let token = access_token(&signer, Some("at+jwt"), &json!({}));
    // No keys yet: load them first.
    assert!(check(&verifier, &token, &Requirements::default(), None, false).is_none());
    // Another kid in the set: a refetch is allowed (none happened yet), so load first too.
    let other = keyset(&[Signer::ec().jwk(Some("k2"))]);
    assert!(check(&verifier, &token, &Requirements::default(), Some(&other), false).is_none());
    // After loading, an unknown kid is final.
    for keys in [None, Some(&other)] {
        assert_eq!(
            rejection(check(&verifier, &token, &Requirements::default(), keys, true)),
            ValidationError::UnknownKey
        );
    }
    // Malformed tokens and forbidden algorithms never ask for keys.
    for token in [
        "",
        "a.b.c",
        &format!("{}.e30.c2ln", b64(br#"{"alg":"HS256","typ":"at+jwt"}"#)),
    ] {
        assert!(check(&verifier, token, &Requirements::default(), None, false).is_some());
    }
}

#[test]
fn a_batch_keeps_the_order_of_its_tokens() {
    let signer = Signer::rsa();
    let verifier = verifier(Some(API));
    // Real time here: the batch checks with the clock.
    let live = json!({"iat": 0, "exp": u64::MAX / 2});
    let good = access_token(&signer, Some("at+jwt"), &live);
    let bad = access_token(
        &signer,
        Some("at+jwt"),
        &json!({"aud": "nope", "iat": 0, "exp": u64::MAX / 2}),
    );
    let tokens: Vec<&str> = (0..40)
        .map(|i| if i % 3 == 0 { bad.as_str() } else { &good })
        .collect();

    // Without cached keys every entry asks for a load, in place; after it, an unknown kid.
    let pending = verifier.verify_many_cached(&tokens, &Requirements::default());
    assert_eq!(pending.len(), 40);
    assert!(pending.iter().all(Option::is_none));
    let rejected = verifier.verify_many_loaded(&tokens, &Requirements::default());
    assert!(
        rejected
            .iter()
            .all(|r| matches!(r, Err(Error::AccessTokenRejected(ValidationError::UnknownKey))))
    );

    // With the keys cached, the batch (spread over threads) answers every token in order.
    verifier
        .inner
        .jwks
        .insert_for_tests(keyset(&[signer.jwk(Some("k1"))]));
    let results = verifier.verify_many_cached(&tokens, &Requirements::default());
    assert_eq!(results.len(), 40);
    for (i, result) in results.iter().enumerate() {
        match result {
            Some(Ok(_)) => assert!(i % 3 != 0, "token {i} should fail"),
            Some(Err(Error::AccessTokenRejected(ValidationError::Audience))) => {
                assert!(i % 3 == 0, "token {i} should pass");
            }
            other => panic!("token {i}: {other:?}"),
        }
    }
    let single = verifier.verify_cached(&good, &Requirements::default());
    assert!(matches!(single, Some(Ok(_))));
}

#[test]
fn invalid_configuration_and_requirements_are_refused() {
    let build = |scopes: Vec<String>| {
        AccessTokenVerifier::builder("https://tenant.logto.app", Some(API.into()))
            .scopes(scopes)
            .build()
    };
    for scopes in [
        vec![String::new()],
        vec!["a b".into()],
        vec!["a\"b".into()],
        vec!["é".into()],
    ] {
        assert!(matches!(build(scopes), Err(Error::Config(_))));
    }
    assert!(AccessTokenVerifier::builder("not a url", None).build().is_err());
    assert!(
        AccessTokenVerifier::builder("https://t.example", Some(String::new()))
            .build()
            .is_err()
    );
    let verifier = verifier(Some(API));
    let bad = ["read products".to_owned()];
    let requirements = Requirements {
        scopes: &bad,
        organization_id: None,
        ..Requirements::default()
    };
    assert!(matches!(
        check(&verifier, "a.b.c", &requirements, None, false),
        Some(Err(Error::Config(_)))
    ));
    assert_eq!(verifier.issuer(), "https://tenant.logto.app/oidc");
}

#[test]
fn challenges_follow_rfc_6750() {
    let expired = Challenge::new(&ValidationError::Expired);
    assert_eq!((expired.status, expired.error), (401, "invalid_token"));
    assert_eq!(
        expired.www_authenticate(),
        r#"Bearer error="invalid_token", error_description="the token has expired (exp)""#
    );
    let scope = Challenge::new(&ValidationError::Scope("read:products write:products".into()));
    assert_eq!(scope.status, 403);
    assert_eq!(
        scope.www_authenticate(),
        "Bearer error=\"insufficient_scope\", error_description=\"the token lacks the required \
         scope(s): read:products write:products\", scope=\"read:products write:products\""
    );
    let organization = Challenge::new(&ValidationError::Organization);
    assert_eq!(
        (organization.status, organization.error),
        (403, "insufficient_scope")
    );
    // Attacker-controlled text (the header's alg) cannot break out of the quoted string.
    let alg = Challenge::new(&ValidationError::Algorithm("x\"\\\r\nSet-Cookie: a".into()));
    let header = alg.www_authenticate();
    assert!(!header.contains(['\r', '\n', '\\']), "{header}");
    assert_eq!(header.matches('"').count(), 4, "{header}");
}

/// Runs the synchronous path with the verifier's own key cache (as in production, where the
/// verified-token cache is used) at `now`.
fn check_cached(
    verifier: &AccessTokenVerifier,
    token: &str,
    requirements: &Requirements<'_>,
    now: u64,
) -> Result<VerifiedAccessToken> {
    let audience = verifier.audience_for(requirements)?;
    let mut expectations = verifier.expectations(requirements, &audience);
    expectations.now = now;
    let keys = verifier.inner.jwks.cached();
    verifier
        .verify_with(token, &expectations, requirements, keys.as_deref(), true)
        .unwrap()
}

#[test]
fn a_cached_token_is_checked_again_on_every_use_and_forgotten_when_the_keys_change() {
    let signer = Signer::ec();
    let verifier = verifier(Some(API));
    verifier
        .inner
        .jwks
        .insert_for_tests(keyset(&[signer.jwk(Some("k1"))]));
    let token = access_token(&signer, Some("at+jwt"), &json!({"exp": NOW + 100}));
    let none = Requirements::default();
    assert!(check_cached(&verifier, &token, &none, NOW).is_ok());
    assert_eq!(verifier.inner.cache.len(), 1);
    // A hit: the time, the audience and the requirements are checked again.
    let more = ["delete:products".to_owned()];
    let requirements = Requirements {
        scopes: &more,
        organization_id: None,
        ..Requirements::default()
    };
    let rejected = |outcome: Result<VerifiedAccessToken>| match outcome {
        Err(Error::AccessTokenRejected(e)) => e,
        other => panic!("expected a rejection, got {other:?}"),
    };
    assert_eq!(
        rejected(check_cached(&verifier, &token, &requirements, NOW)),
        ValidationError::Scope("read:products delete:products".into())
    );
    assert_eq!(
        rejected(check_cached(&verifier, &token, &none, NOW + 161)),
        ValidationError::Expired
    );
    assert!(check_cached(&verifier, &token, &none, NOW + 159).is_ok());
    // The same keys fetched again keep the entry; other keys drop it, and the token's key is gone.
    verifier
        .inner
        .jwks
        .insert_for_tests(keyset(&[signer.jwk(Some("k1"))]));
    assert!(check_cached(&verifier, &token, &none, NOW).is_ok());
    assert_eq!(verifier.inner.cache.len(), 1);
    verifier
        .inner
        .jwks
        .insert_for_tests(keyset(&[Signer::ec().jwk(Some("k2"))]));
    assert_eq!(
        rejected(check_cached(&verifier, &token, &none, NOW)),
        ValidationError::UnknownKey
    );
    assert_eq!(verifier.inner.cache.len(), 0);
}

#[test]
fn impersonated_tokens_are_accepted_unless_refused() {
    let signer = Signer::ec();
    let token = access_token(&signer, Some("at+jwt"), &json!({"act": {"sub": "admin-1"}}));
    let keys = keyset(&[signer.jwk(Some("k1"))]);
    let accepting = verifier(Some(API));
    let verified = check(&accepting, &token, &Requirements::default(), Some(&keys), true)
        .unwrap()
        .unwrap();
    assert_eq!(verified.claims().actor(), Some(&json!({"sub": "admin-1"})));
    let refusing = AccessTokenVerifier::builder("https://tenant.logto.app/", Some(API.into()))
        .allow_impersonation(false)
        .build()
        .unwrap();
    assert_eq!(
        rejection(check(
            &refusing,
            &token,
            &Requirements::default(),
            Some(&keys),
            true
        )),
        ValidationError::Impersonated
    );
    assert_eq!(Challenge::new(&ValidationError::Impersonated).status, 401);
    let malformed = access_token(&signer, Some("at+jwt"), &json!({"act": {"sub": 7}}));
    assert_eq!(
        rejection(check(
            &accepting,
            &malformed,
            &Requirements::default(),
            Some(&keys),
            true
        )),
        ValidationError::Claim("act")
    );
}

#[test]
fn an_opaque_token_is_for_this_api_by_its_audience_or_an_accepted_app() {
    let build = |clients: Vec<String>| {
        AccessTokenVerifier::builder("https://tenant.logto.app/", Some(API.into()))
            .introspection(
                "api-app".into(),
                ClientSecret::new("s"),
                DEFAULT_INTROSPECTION_TTL,
            )
            .introspection_clients(clients)
            .build()
            .unwrap()
    };
    let answer = |overrides: &Value| {
        let payload = claims(overrides).to_string();
        Introspected::Active(Arc::new(Verified {
            claims: serde_json::from_str(&payload).unwrap(),
            payload,
            key_generation: 0,
        }))
    };
    let decide = |verifier: &AccessTokenVerifier, answer: &Introspected| {
        let requirements = Requirements::default();
        let mut expectations = verifier.expectations(&requirements, API);
        expectations.now = NOW;
        let introspection = verifier.inner.introspection.as_ref().unwrap();
        verifier
            .decide_introspected(introspection, answer, &expectations, &requirements)
            .map(|v| v.claims().subject().map(str::to_owned))
    };
    let own = answer(&json!({"aud": [], "client_id": "api-app"}));
    let other = answer(&json!({"aud": [], "client_id": "third-party"}));
    let anonymous = answer(&json!({"aud": [], "client_id": null}));
    let for_this_api = answer(&json!({"aud": [API], "client_id": "third-party"}));
    let for_another_api = answer(&json!({"aud": ["https://other"], "client_id": "api-app"}));

    let default = build(Vec::new()); // the introspecting app alone
    assert!(decide(&default, &own).is_ok());
    assert!(decide(&default, &for_this_api).is_ok());
    for (refused, check) in [
        (&other, "client_id"),
        (&anonymous, "client_id"),
        (&for_another_api, "aud"),
    ] {
        match decide(&default, refused) {
            Err(Error::AccessTokenRejected(e)) => assert_eq!(e.check(), check),
            outcome => panic!("expected a rejection, got {outcome:?}"),
        }
    }
    let listed = build(vec!["third-party".into()]);
    assert!(decide(&listed, &other).is_ok());
    assert!(matches!(
        decide(&listed, &own),
        Err(Error::AccessTokenRejected(ValidationError::Client))
    ));
    assert_eq!(
        Challenge::new(&ValidationError::Client).status,
        Challenge::new(&ValidationError::IntrospectionRate).status
    );
}

fn requiring<'a>(roles: &'a [String], roles_claim: &'a str) -> Requirements<'a> {
    Requirements {
        roles,
        roles_claim,
        ..Requirements::default()
    }
}

#[test]
fn roles_are_required_from_the_named_claim() {
    let signer = Signer::ec();
    let keys = keyset(&[signer.jwk(Some("k1"))]);
    let verifier = verifier(Some(API));
    let admin = ["admin".to_owned()];
    let admin_and_owner = ["admin".to_owned(), "owner".to_owned()];
    let token = access_token(&signer, Some("at+jwt"), &json!({"roles": ["admin", "editor"]}));
    // Verified without roles first: the cached token is checked for roles on every use.
    assert!(matches!(
        check(&verifier, &token, &Requirements::default(), Some(&keys), false),
        Some(Ok(_))
    ));
    assert!(matches!(
        check(&verifier, &token, &requiring(&admin, "roles"), Some(&keys), false),
        Some(Ok(_))
    ));
    assert_eq!(
        rejection(check(
            &verifier,
            &token,
            &requiring(&admin_and_owner, "roles"),
            Some(&keys),
            false
        )),
        ValidationError::Roles("owner".into())
    );
    // Another claim name; a claim that is absent, or not a list of names, holds no role.
    assert_eq!(
        rejection(check(
            &verifier,
            &token,
            &requiring(&admin, "app_roles"),
            Some(&keys),
            false
        )),
        ValidationError::Roles("admin".into())
    );
    let custom = access_token(&signer, Some("at+jwt"), &json!({"app_roles": ["admin"]}));
    assert!(matches!(
        check(
            &verifier,
            &custom,
            &requiring(&admin, "app_roles"),
            Some(&keys),
            false
        ),
        Some(Ok(_))
    ));
    for held in [json!("admin"), json!([["admin"]]), json!({"admin": true})] {
        let token = access_token(&signer, Some("at+jwt"), &json!({ "roles": held }));
        assert_eq!(
            rejection(check(
                &verifier,
                &token,
                &requiring(&admin, "roles"),
                Some(&keys),
                false
            )),
            ValidationError::Roles("admin".into()),
            "{held}"
        );
    }
}

#[test]
fn missing_tokens_and_roles_have_their_challenges() {
    let missing = Challenge::new(&ValidationError::MissingToken);
    assert_eq!((missing.status, missing.error), (401, "invalid_token"));
    assert_eq!(missing.www_authenticate(), "Bearer");
    assert_eq!(
        Error::AccessTokenRejected(ValidationError::MissingToken).code(),
        "token.missing"
    );
    let roles = Challenge::new(&ValidationError::Roles("admin owner".into()));
    assert_eq!((roles.status, roles.error), (403, "insufficient_scope"));
    assert_eq!(
        roles.www_authenticate(),
        r#"Bearer error="insufficient_scope", error_description="the token lacks the required role(s): admin owner""#
    );
    assert_eq!(
        Error::AccessTokenRejected(ValidationError::Roles("admin".into())).code(),
        "token.roles"
    );
}

#[tokio::test]
async fn a_batch_shares_one_key_loading_failure() {
    // Nothing listens on the discard port: discovery fails for the whole batch at once.
    let verifier = AccessTokenVerifier::builder("http://127.0.0.1:9", Some(API.to_owned()))
        .build()
        .unwrap();
    let signer = Signer::ec();
    let tokens = [
        access_token(&signer, Some("at+jwt"), &json!({})),
        "not a token".to_owned(),
        access_token(&signer, Some("at+jwt"), &json!({"sub": "user-2"})),
    ];
    let outcomes = verifier.verify_many(&tokens, &Requirements::default()).await;
    assert_eq!(outcomes.len(), 3);
    assert!(
        matches!(outcomes[0], Err(Error::Network { .. })),
        "{:?}",
        outcomes[0]
    );
    assert!(
        matches!(
            outcomes[1],
            Err(Error::AccessTokenRejected(ValidationError::Malformed(_)))
        ),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(outcomes[2], Err(Error::Network { .. })),
        "{:?}",
        outcomes[2]
    );
    // The single-token verification is the same sequence.
    assert!(matches!(
        verifier.verify(&tokens[0], &Requirements::default()).await,
        Err(Error::Network { .. })
    ));
}
