//! Token-endpoint requests: each grant's form parameters (pure) and the one function that sends
//! them with the application's client authentication.

use serde::Deserialize;

use crate::config::LogtoConfig;
use crate::error::{Endpoint, Result};
use crate::http::{ClientAuth, HttpClient};
use crate::secret::{AccessToken, AuthorizationCode, CodeVerifier, IdToken, RefreshToken};

/// A successful token response (RFC 6749 §5.1). Its `Debug` redacts every token.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token.
    pub access_token: AccessToken,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Lifetime in seconds.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// A refresh token (rotated or unchanged) when one is issued.
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// An ID token when `openid` is in scope.
    #[serde(default)]
    pub id_token: Option<IdToken>,
    /// The granted scopes, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
}

/// A grant sent to the token endpoint.
#[derive(Debug)]
#[non_exhaustive]
pub enum Grant<'a> {
    /// `authorization_code` with the PKCE verifier.
    AuthorizationCode {
        /// The code from the callback.
        code: &'a AuthorizationCode,
        /// The verifier of the sign-in's challenge.
        code_verifier: &'a CodeVerifier,
        /// The redirect URI of the authorization request.
        redirect_uri: &'a str,
    },
    /// `refresh_token`, optionally for a resource or an organization.
    RefreshToken {
        /// The refresh token.
        refresh_token: &'a RefreshToken,
        /// The API resource indicator.
        resource: Option<&'a str>,
        /// Logto's organization id.
        organization_id: Option<&'a str>,
    },
}

impl Grant<'_> {
    /// The form parameters of this grant (client authentication is added when sending).
    #[must_use]
    pub fn params(&self) -> Vec<(&'static str, &str)> {
        match self {
            Self::AuthorizationCode {
                code,
                code_verifier,
                redirect_uri,
            } => vec![
                ("grant_type", "authorization_code"),
                ("code", code.secret()),
                ("code_verifier", code_verifier.secret()),
                ("redirect_uri", redirect_uri),
            ],
            Self::RefreshToken {
                refresh_token,
                resource,
                organization_id,
            } => {
                let mut params = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token.secret()),
                ];
                if let Some(resource) = resource.filter(|r| !r.is_empty()) {
                    params.push(("resource", resource));
                }
                if let Some(organization_id) = organization_id {
                    params.push(("organization_id", organization_id));
                }
                params
            }
        }
    }
}

/// Sends `grant` to the token endpoint, authenticating as the configured application.
///
/// # Errors
/// Network, timeout, OAuth and unexpected-response errors.
pub async fn request_token(
    http: &HttpClient,
    token_endpoint: &str,
    config: &LogtoConfig,
    grant: &Grant<'_>,
) -> Result<TokenResponse> {
    let auth = ClientAuth::for_client(config.app_id(), config.app_secret.as_ref());
    http.post_form(Endpoint::Token, token_endpoint, &grant.params(), auth)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_params_skip_empty_resource() {
        let token = RefreshToken::new("rt");
        let grant = Grant::RefreshToken {
            refresh_token: &token,
            resource: Some(""),
            organization_id: Some("org"),
        };
        assert_eq!(
            grant.params(),
            [
                ("grant_type", "refresh_token"),
                ("refresh_token", "rt"),
                ("organization_id", "org")
            ]
        );
    }

    #[test]
    fn token_response_debug_redacts() {
        let response: TokenResponse = serde_json::from_str(
            r#"{"access_token":"at-secret","refresh_token":"rt-secret","id_token":"id-secret","expires_in":3600}"#,
        )
        .unwrap();
        let debug = format!("{response:?}");
        assert!(!debug.contains("secret\""), "{debug}");
        assert!(!debug.contains("at-secret") && !debug.contains("rt-secret") && !debug.contains("id-secret"));
    }
}
