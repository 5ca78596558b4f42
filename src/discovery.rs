//! OpenID Provider metadata (OIDC Discovery 1.0), fetched once per client and cached.

use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::error::{Endpoint, Error, Result};
use crate::http::{HttpClient, transport_allowed};
use crate::process::PerProcess;

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
    /// The device authorization endpoint (RFC 8628; Logto 1.38+: `{endpoint}/oidc/device/auth`).
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// The JWKS URL.
    pub jwks_uri: String,
    /// The token introspection endpoint (RFC 7662).
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    /// Whether the provider puts `iss` in every authorization response (RFC 9207); then a
    /// callback without it is refused.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl ProviderMetadata {
    /// Checks the document against the issuer the client expects (OIDC Discovery §4.3: the
    /// issuer must be identical to the URL the document was fetched under), and every endpoint:
    /// an absolute URL, `https` (plain `http` only to loopback, or with `allow_insecure_http`),
    /// on the issuer's origin. Logto serves all of them under `{endpoint}/oidc`; a document
    /// pointing elsewhere would send codes, secrets and tokens to a host the configuration
    /// never named.
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] naming the first endpoint that fails.
    pub fn validate(self, expected_issuer: &str, allow_insecure_http: bool) -> Result<Self> {
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
        let issuer = url::Url::parse(&self.issuer).map_err(|_| bad("the issuer is not a URL".into()))?;
        let endpoints = [
            ("authorization_endpoint", Some(&self.authorization_endpoint)),
            ("token_endpoint", Some(&self.token_endpoint)),
            ("jwks_uri", Some(&self.jwks_uri)),
            ("userinfo_endpoint", self.userinfo_endpoint.as_ref()),
            ("end_session_endpoint", self.end_session_endpoint.as_ref()),
            ("revocation_endpoint", self.revocation_endpoint.as_ref()),
            (
                "device_authorization_endpoint",
                self.device_authorization_endpoint.as_ref(),
            ),
            ("introspection_endpoint", self.introspection_endpoint.as_ref()),
        ];
        for (name, url) in endpoints {
            let Some(url) = url else { continue };
            let Ok(parsed) = url::Url::parse(url) else {
                return Err(bad(format!("{name} is not a URL")));
            };
            if !transport_allowed(&parsed, allow_insecure_http) {
                return Err(bad(format!(
                    "{name} is not https (plain http only to loopback or with allowInsecureHttp)"
                )));
            }
            if parsed.origin() != issuer.origin() {
                return Err(bad(format!("{name} is not on the issuer's origin")));
            }
        }
        Ok(self)
    }
}

/// The discovery document, fetched on first use and kept for the client's lifetime.
/// A failed fetch is not cached: the next call tries again. Callers that were already waiting
/// for that fetch share its error instead of each trying in turn (during an outage, N callers
/// would otherwise wait N timeouts). A forked child keeps the document its parent fetched, with
/// a fetch lock of its own (the parent's may be held by a task that does not exist in the child).
#[derive(Debug, Default)]
pub struct DiscoveryCache {
    state: PerProcess<DiscoveryState>,
}

#[derive(Debug, Default)]
struct DiscoveryState {
    metadata: OnceCell<Arc<ProviderMetadata>>,
    fetch_lock: tokio::sync::Mutex<()>,
    last_failure: std::sync::Mutex<Option<(std::time::Instant, Error)>>,
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
    ) -> Result<Arc<ProviderMetadata>> {
        let state = self.state.get(|parent| DiscoveryState {
            metadata: OnceCell::new_with(parent.and_then(|p| p.metadata.get().cloned())),
            ..DiscoveryState::default()
        });
        if let Some(metadata) = state.metadata.get() {
            return Ok(metadata.clone());
        }
        let asked = std::time::Instant::now();
        let _guard = state.fetch_lock.lock().await;
        if let Some(metadata) = state.metadata.get() {
            return Ok(metadata.clone());
        }
        let failures = || {
            state
                .last_failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((at, error)) = failures().as_ref()
            && *at >= asked
        {
            return Err(error.replay());
        }
        let fetched = async {
            let metadata: ProviderMetadata = http.get_json(Endpoint::Discovery, url).await?;
            metadata.validate(expected_issuer, http.allows_insecure_http())
        }
        .await;
        match fetched {
            Ok(metadata) => {
                *failures() = None;
                Ok(state
                    .metadata
                    .get_or_init(|| async { Arc::new(metadata) })
                    .await
                    .clone())
            }
            Err(error) => {
                *failures() = Some((std::time::Instant::now(), error.replay()));
                Err(error)
            }
        }
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
                .validate("https://t.logto.app/oidc", false)
                .is_ok()
        );
        assert!(matches!(
            document("https://evil.example/oidc").validate("https://t.logto.app/oidc", false),
            Err(Error::UnexpectedResponse { .. })
        ));
    }

    #[test]
    fn endpoints_must_be_https_on_the_issuers_origin() {
        let issuer = "https://t.logto.app/oidc";
        for (field, url) in [
            ("token_endpoint", "http://t.logto.app/oidc/token"),
            ("token_endpoint", "https://evil.example/oidc/token"),
            ("jwks_uri", "https://t.logto.app:8443/oidc/jwks"),
            ("userinfo_endpoint", "not a url"),
            ("authorization_endpoint", "javascript:alert(1)"),
        ] {
            let mut doc = serde_json::json!({
                "issuer": issuer,
                "authorization_endpoint": "https://t.logto.app/oidc/auth",
                "token_endpoint": "https://t.logto.app/oidc/token",
                "userinfo_endpoint": "https://t.logto.app/oidc/me",
                "jwks_uri": "https://t.logto.app/oidc/jwks",
            });
            doc[field] = serde_json::json!(url);
            let metadata: ProviderMetadata = serde_json::from_value(doc).unwrap();
            let error = metadata.validate(issuer, true).unwrap_err().to_string();
            assert!(
                error.contains(field) || url.starts_with("http://"),
                "{field}: {error}"
            );
        }
        // Plain http: only to loopback, or when allowed.
        let local = "http://127.0.0.1:3001/oidc";
        let doc = serde_json::json!({
            "issuer": local,
            "authorization_endpoint": "http://127.0.0.1:3001/oidc/auth",
            "token_endpoint": "http://127.0.0.1:3001/oidc/token",
            "jwks_uri": "http://127.0.0.1:3001/oidc/jwks",
        });
        let metadata: ProviderMetadata = serde_json::from_value(doc.clone()).unwrap();
        assert!(metadata.validate(local, false).is_ok());
        let remote = "http://logto.internal/oidc";
        let doc = serde_json::json!({
            "issuer": remote,
            "authorization_endpoint": "http://logto.internal/oidc/auth",
            "token_endpoint": "http://logto.internal/oidc/token",
            "jwks_uri": "http://logto.internal/oidc/jwks",
        });
        let metadata: ProviderMetadata = serde_json::from_value(doc).unwrap();
        assert!(metadata.clone().validate(remote, false).is_err());
        assert!(metadata.validate(remote, true).is_ok());
    }
}
