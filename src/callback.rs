//! The sign-in callback: the URL must come back to the stored redirect URI (same origin and
//! path), carry no `error`, carry the stored `state` (compared in constant time), and a `code`.

use url::Url;

use crate::error::CallbackError;
use crate::secret::AuthorizationCode;
use crate::sign_in::SignInSession;

/// Validates `callback_url` against `session` and returns the authorization code.
///
/// # Errors
/// The [`CallbackError`] naming the failed check.
pub fn parse_callback(
    callback_url: &str,
    session: &SignInSession,
) -> Result<AuthorizationCode, CallbackError> {
    let url = Url::parse(callback_url).map_err(|_| CallbackError::InvalidUrl)?;
    let expected = Url::parse(&session.redirect_uri).map_err(|_| CallbackError::CorruptSession)?;
    if url.origin() != expected.origin() || url.path() != expected.path() {
        return Err(CallbackError::RedirectUriMismatch);
    }
    let mut error = None;
    let mut description = None;
    let mut state = None;
    let mut code = None;
    for (name, value) in url.query_pairs() {
        let slot = match name.as_ref() {
            "error" => &mut error,
            "error_description" => &mut description,
            "state" => &mut state,
            "code" => &mut code,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            // A parameter given twice is ambiguous; refuse rather than pick one.
            return Err(CallbackError::InvalidUrl);
        }
    }
    if let Some(error) = error {
        return Err(CallbackError::Authorization { error, description });
    }
    let state = state.ok_or(CallbackError::MissingState)?;
    if !session.state.ct_eq(&state) {
        return Err(CallbackError::StateMismatch);
    }
    code.filter(|c| !c.is_empty())
        .map(AuthorizationCode::new)
        .ok_or(CallbackError::MissingCode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> SignInSession {
        SignInSession::new("http://127.0.0.1:5000/callback".into(), None)
    }

    #[test]
    fn accepts_the_matching_callback() {
        let s = session();
        let url = format!(
            "http://127.0.0.1:5000/callback?code=abc&state={}&iss=x",
            s.state.secret()
        );
        assert_eq!(parse_callback(&url, &s).unwrap().secret(), "abc");
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
                format!(
                    "http://127.0.0.1:5000/callback?error=access_denied&error_description=denied&state={state}"
                ),
                CallbackError::Authorization {
                    error: "access_denied".into(),
                    description: Some("denied".into()),
                },
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(parse_callback(&url, &s).unwrap_err(), expected, "{url}");
        }
    }
}
