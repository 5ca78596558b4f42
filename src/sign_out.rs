//! RP-initiated logout: the end-session URL.

use url::Url;

use crate::error::{Error, Result};
use crate::secret::IdToken;

/// The end-session URL with `client_id`, and `post_logout_redirect_uri` and `id_token_hint` when
/// given (Logto drops the redirect unless `client_id` or `id_token_hint` is sent; both are).
///
/// # Errors
/// [`Error::Config`] when the endpoint or the redirect URI is not a URL.
pub fn end_session_url(
    end_session_endpoint: &str,
    client_id: &str,
    post_logout_redirect_uri: Option<&str>,
    id_token_hint: Option<&IdToken>,
) -> Result<String> {
    let mut url = Url::parse(end_session_endpoint)
        .map_err(|_| Error::config("the end-session endpoint is not a URL"))?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("client_id", client_id);
        if let Some(uri) = post_logout_redirect_uri {
            crate::sign_in::validate_redirect_uri("postLogoutRedirectUri", uri)?;
            query.append_pair("post_logout_redirect_uri", uri);
        }
        if let Some(hint) = id_token_hint {
            query.append_pair("id_token_hint", hint.secret());
        }
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_end_session_url() {
        let url = end_session_url(
            "https://t/oidc/session/end",
            "app",
            Some("https://app/bye"),
            Some(&IdToken::new("a.b.c")),
        )
        .unwrap();
        assert_eq!(
            url,
            "https://t/oidc/session/end?client_id=app&post_logout_redirect_uri=https%3A%2F%2Fapp%2Fbye&id_token_hint=a.b.c"
        );
        assert_eq!(
            end_session_url("https://t/oidc/session/end", "app", None, None).unwrap(),
            "https://t/oidc/session/end?client_id=app"
        );
        assert!(end_session_url("https://t/e", "app", Some("/bye"), None).is_err());
    }
}
