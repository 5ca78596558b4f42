//! The sign-in callback: the URL must come back to the stored redirect URI (same origin and
//! path), carry the stored `state` (compared in constant time) before anything else is read,
//! name the provider as its `iss` (RFC 9207) when it says one or when discovery promises it,
//! and then carry either an `error` or a `code`.
//!
//! The `state` check comes first: a callback that is not the answer to this session's request is
//! a state failure, whatever else it says, so a forged `/callback?error=…&error_description=…`
//! never reaches the user's screen or the logs with its text.

use url::Url;

use crate::error::CallbackError;
use crate::secret::AuthorizationCode;
use crate::sign_in::SignInSession;

/// Longest `error` kept from a callback.
const MAX_ERROR_CHARS: usize = 64;
/// Longest `error_description` kept from a callback.
const MAX_DESCRIPTION_CHARS: usize = 256;

/// The provider's issuer as the callback must name it (RFC 9207).
#[derive(Debug, Clone, Copy)]
pub struct ExpectedIssuer<'a> {
    /// The issuer identifier from discovery.
    pub issuer: &'a str,
    /// Whether discovery advertises `authorization_response_iss_parameter_supported`: then the
    /// callback must carry `iss`.
    pub required: bool,
}

/// The characters RFC 6749 §4.1.2.1 allows in `error` and `error_description`
/// (`%x20-21 / %x23-5B / %x5D-7E`): printable ASCII except `"` and `\`.
fn allowed_in_error(c: char) -> bool {
    matches!(c, ' '..='~') && c != '"' && c != '\\'
}

/// `value` reduced to the characters RFC 6749 allows and at most `max` of them, so that what a
/// provider (or anyone) puts there cannot break a log line or a page.
fn sanitise(value: &str, max: usize) -> String {
    value.chars().filter(|c| allowed_in_error(*c)).take(max).collect()
}

/// Validates `callback_url` against `session` and the provider's `issuer`, and returns the
/// authorization code.
///
/// # Errors
/// The [`CallbackError`] naming the failed check.
pub fn parse_callback(
    callback_url: &str,
    session: &SignInSession,
    issuer: ExpectedIssuer<'_>,
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
    let mut iss = None;
    for (name, value) in url.query_pairs() {
        let slot = match name.as_ref() {
            "error" => &mut error,
            "error_description" => &mut description,
            "state" => &mut state,
            "code" => &mut code,
            "iss" => &mut iss,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            // A parameter given twice is ambiguous; refuse rather than pick one.
            return Err(CallbackError::InvalidUrl);
        }
    }
    let state = state.ok_or(CallbackError::MissingState)?;
    if !session.state.ct_eq(&state) {
        return Err(CallbackError::StateMismatch);
    }
    match iss {
        Some(iss) if iss != issuer.issuer => return Err(CallbackError::IssuerMismatch),
        None if issuer.required => return Err(CallbackError::MissingIssuer),
        _ => {}
    }
    if let Some(error) = error {
        return Err(CallbackError::Authorization {
            error: sanitise(&error, MAX_ERROR_CHARS),
            description: description.map(|d| sanitise(&d, MAX_DESCRIPTION_CHARS)),
        });
    }
    code.filter(|c| !c.is_empty())
        .map(AuthorizationCode::new)
        .ok_or(CallbackError::MissingCode)
}

#[cfg(test)]
mod tests;
