use proptest::prelude::*;

use super::*;

const ISSUER: &str = "http://127.0.0.1:4000/oidc";

fn session() -> SignInSession {
    SignInSession::new("http://127.0.0.1:5000/callback".into(), None)
}

fn optional() -> ExpectedIssuer<'static> {
    ExpectedIssuer {
        issuer: ISSUER,
        required: false,
    }
}

fn required() -> ExpectedIssuer<'static> {
    ExpectedIssuer {
        issuer: ISSUER,
        required: true,
    }
}

#[test]
fn accepts_the_matching_callback() {
    let s = session();
    let url = format!(
        "http://127.0.0.1:5000/callback?code=abc&state={}&iss={ISSUER}",
        s.state.secret()
    );
    assert_eq!(parse_callback(&url, &s, required()).unwrap().secret(), "abc");
    let without_iss = format!(
        "http://127.0.0.1:5000/callback?code=abc&state={}",
        s.state.secret()
    );
    assert_eq!(
        parse_callback(&without_iss, &s, optional()).unwrap().secret(),
        "abc"
    );
}

#[test]
fn rejects_each_bad_callback() {
    let s = session();
    let state = s.state.secret().to_owned();
    let cases = [
        ("not a url".to_owned(), CallbackError::InvalidUrl),
        (
            format!("http://127.0.0.1:5000/other?code=a&state={state}"),
            CallbackError::RedirectUriMismatch,
        ),
        (
            format!("http://evil.example:5000/callback?code=a&state={state}"),
            CallbackError::RedirectUriMismatch,
        ),
        (
            format!("https://127.0.0.1:5000/callback?code=a&state={state}"),
            CallbackError::RedirectUriMismatch,
        ),
        (
            format!("http://127.0.0.1:5001/callback?code=a&state={state}"),
            CallbackError::RedirectUriMismatch,
        ),
        (
            "http://127.0.0.1:5000/callback?code=a".to_owned(),
            CallbackError::MissingState,
        ),
        (
            "http://127.0.0.1:5000/callback?code=a&state=forged".to_owned(),
            CallbackError::StateMismatch,
        ),
        (
            format!("http://127.0.0.1:5000/callback?state={state}"),
            CallbackError::MissingCode,
        ),
        (
            format!("http://127.0.0.1:5000/callback?code=&state={state}"),
            CallbackError::MissingCode,
        ),
        (
            format!("http://127.0.0.1:5000/callback?code=a&code=b&state={state}"),
            CallbackError::InvalidUrl,
        ),
        (
            format!("http://127.0.0.1:5000/callback?code=a&state={state}&iss=x&iss={ISSUER}"),
            CallbackError::InvalidUrl,
        ),
        (
            format!(
                "http://127.0.0.1:5000/callback?error=access_denied&error_description=denied&state={state}"
            ),
            CallbackError::Authorization {
                error: "access_denied".into(),
                description: Some("denied".into()),
            },
        ),
        // RFC 9207: a callback naming another issuer (a mix-up attack) is refused.
        (
            format!("http://127.0.0.1:5000/callback?code=a&state={state}&iss=https://evil.example/oidc"),
            CallbackError::IssuerMismatch,
        ),
        (
            format!(
                "http://127.0.0.1:5000/callback?error=access_denied&state={state}&iss=https://evil.example"
            ),
            CallbackError::IssuerMismatch,
        ),
    ];
    for (url, expected) in cases {
        assert_eq!(
            parse_callback(&url, &s, optional()).unwrap_err(),
            expected,
            "{url}"
        );
    }
}

#[test]
fn iss_is_required_when_discovery_advertises_it() {
    let s = session();
    let url = format!("http://127.0.0.1:5000/callback?code=a&state={}", s.state.secret());
    assert_eq!(
        parse_callback(&url, &s, required()).unwrap_err(),
        CallbackError::MissingIssuer
    );
}

#[test]
fn state_is_checked_before_error() {
    let s = session();
    let stateless =
        "http://127.0.0.1:5000/callback?error=access_denied&error_description=Call%20+1-555%0A%0DINFO%20fake";
    assert_eq!(
        parse_callback(stateless, &s, optional()).unwrap_err(),
        CallbackError::MissingState
    );
    let forged = "http://127.0.0.1:5000/callback?error=access_denied&error_description=x&state=forged";
    assert_eq!(
        parse_callback(forged, &s, optional()).unwrap_err(),
        CallbackError::StateMismatch
    );
}

#[test]
fn provider_error_text_is_reduced_to_what_rfc_6749_allows() {
    let s = session();
    let url = format!(
        "http://127.0.0.1:5000/callback?error=access%0Adenied&error_description=line%0D%0Abreak%22{}&state={}",
        "x".repeat(1000),
        s.state.secret()
    );
    let CallbackError::Authorization { error, description } =
        parse_callback(&url, &s, optional()).unwrap_err()
    else {
        panic!("expected the provider's error");
    };
    assert_eq!(error, "accessdenied");
    let description = description.unwrap();
    assert!(description.starts_with("linebreakxxx") && description.len() == MAX_DESCRIPTION_CHARS);
}

/// A query value: anything, including characters that need escaping.
fn value() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9_.~-]{0,12}", any::<String>(), Just(String::new()),]
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::jwt::tests::property_cases()))]

    /// Whatever the callback URL holds, parsing never panics, and a code comes out only when
    /// the URL carries the session's exact state, the right issuer, no error and a code.
    #[test]
    fn only_the_real_answer_yields_a_code(
        params in prop::collection::vec(
            (prop::sample::select(vec!["code", "state", "iss", "error", "error_description", "other"]), value()),
            0..6,
        ),
        real_state in any::<bool>(),
        real_iss in any::<bool>(),
        required_iss in any::<bool>(),
        path in prop::sample::select(vec!["/callback", "/callback/", "/other", ""]),
    ) {
        let s = session();
        let mut query: Vec<(String, String)> = params.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect();
        if real_state {
            query.push(("state".into(), s.state.secret().to_owned()));
        }
        if real_iss {
            query.push(("iss".into(), ISSUER.into()));
        }
        let encoded: Vec<String> = query.iter().map(|(n, v)| format!("{n}={}", encode(v))).collect();
        let url = format!("http://127.0.0.1:5000{path}?{}", encoded.join("&"));
        let issuer = ExpectedIssuer { issuer: ISSUER, required: required_iss };
        let outcome = parse_callback(&url, &s, issuer);
        let count = |name: &str| query.iter().filter(|(n, _)| n == name).count();
        let value_of = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        if let Ok(code) = &outcome {
            prop_assert_eq!(path, "/callback");
            prop_assert_eq!(count("state"), 1);
            prop_assert_eq!(value_of("state"), Some(s.state.secret()));
            prop_assert_eq!(count("error"), 0);
            prop_assert!(count("iss") == 1 && value_of("iss") == Some(ISSUER) || count("iss") == 0 && !required_iss);
            prop_assert_eq!(value_of("code"), Some(code.secret()));
            prop_assert!(!code.secret().is_empty());
        }
        if let Err(CallbackError::Authorization { error, description }) = &outcome {
            prop_assert_eq!(value_of("state"), Some(s.state.secret()));
            prop_assert!(error.chars().all(allowed_in_error) && error.len() <= MAX_ERROR_CHARS);
            prop_assert!(description.as_deref().unwrap_or("").chars().all(allowed_in_error));
        }
        if value_of("state") != Some(s.state.secret()) && path == "/callback" {
            let authorization = matches!(outcome, Err(CallbackError::Authorization { .. }));
            prop_assert!(!authorization, "an error without the real state was reported");
        }
    }
}
