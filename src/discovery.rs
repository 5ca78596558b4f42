//! OpenID Provider metadata (OIDC Discovery 1.0), fetched once per client and cached.

use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::error::{Endpoint, Error, Result};
use crate::http::HttpClient;

/// The fields of the discovery document this client uses.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// The issuer identifier (`{endpoint}/oidc` for Logto).
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The userinfo endpoint.
    pub userinfo_endpoint: Option<String>,
    /// The end-session (RP-initiated logout) endpoint.
    pub end_session_endpoint: Option<String>,
    /// The token revocation endpoint.
    pub revocation_endpoint: Option<String>,
    /// The JWKS URL.
    pub jwks_uri: String,
    /// Whether the provider puts `iss` in every authorization response (RFC 9207); then a
    /// callback without it is refused.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl ProviderMetadata {
    /// Checks the document against the issuer the client expects (OIDC Discovery §4.3: the
    /// issuer must be identical to the URL the document was fetched under).
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] when the issuer differs or an endpoint is not a URL.
    pub fn validate(self, expected_issuer: &str) -> Result<Self> {
        let bad = |reason: String| Error::UnexpectedResponse {
            endpoint: Endpoint::Discovery,
            status: 200,
            reason,
        };
        if self.issuer != expected_issuer {
            return Err(bad(format!(
                "the issuer {:?} differs from the expected {expected_issuer:?}",
                self.issuer
            )));
        }
        let endpoints = [
            Some(&self.authorization_endpoint),
            Some(&self.token_endpoint),
            Some(&self.jwks_uri),
            self.userinfo_endpoint.as_ref(),
            self.end_session_endpoint.as_ref(),
            self.revocation_endpoint.as_ref(),
        ];
        for url in endpoints.into_iter().flatten() {
            if url::Url::parse(url).is_err() {
                return Err(bad(format!("endpoint {url:?} is not a URL")));
            }
        }
        Ok(self)
    }
}

/// The discovery document, fetched on first use and kept for the client's lifetime.
/// A failed fetch is not cached: the next call tries again.
#[derive(Debug, Default)]
pub struct DiscoveryCache {
    metadata: OnceCell<ProviderMetadata>,
}

impl DiscoveryCache {
    /// The metadata, fetching it once (concurrent callers share one request).
    ///
    /// # Errors
    /// The fetch's error.
    pub async fn get(
        &self,
        http: &HttpClient,
        url: &str,
        expected_issuer: &str,
    ) -> Result<&ProviderMetadata> {
        self.metadata
            .get_or_try_init(|| async {
                let metadata: ProviderMetadata = http.get_json(Endpoint::Discovery, url).await?;
                metadata.validate(expected_issuer)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(issuer: &str) -> ProviderMetadata {
        serde_json::from_value(serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": "https://t.logto.app/oidc/auth",
            "token_endpoint": "https://t.logto.app/oidc/token",
            "userinfo_endpoint": "https://t.logto.app/oidc/me",
            "end_session_endpoint": "https://t.logto.app/oidc/session/end",
            "jwks_uri": "https://t.logto.app/oidc/jwks",
            "extra": true
        }))
        .unwrap()
    }

    #[test]
    fn issuer_must_match() {
        assert!(
            document("https://t.logto.app/oidc")
                .validate("https://t.logto.app/oidc")
                .is_ok()
        );
        assert!(matches!(
            document("https://evil.example/oidc").validate("https://t.logto.app/oidc"),
            Err(Error::UnexpectedResponse { .. })
        ));
    }
}
