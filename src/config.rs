//! Client configuration, validated on construction.
//!
//! The reserved scopes `openid`, `offline_access` and `profile` are always requested, and the
//! organizations resource is added whenever the organizations scope is asked for, as every
//! official Logto SDK does (compared as strings, so a scope given as text behaves like the enum).

use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};
use crate::http::{HttpClient, transport_allowed};
use crate::secret::ClientSecret;

/// Scopes every sign-in requests.
pub const RESERVED_SCOPES: [&str; 3] = ["openid", "offline_access", "profile"];
/// The scope that grants organization membership claims and organization tokens.
pub const ORGANIZATIONS_SCOPE: &str = "urn:logto:scope:organizations";
/// The resource that must be requested to obtain organization tokens.
pub const ORGANIZATIONS_RESOURCE: &str = "urn:logto:resource:organizations";
/// The `aud` prefix of organization tokens, also their cache-key prefix.
pub const ORGANIZATION_AUDIENCE_PREFIX: &str = "urn:logto:organization:";

const PROMPT_VALUES: [&str; 4] = ["none", "login", "consent", "select_account"];

/// A validated client configuration. Build it with [`LogtoConfig::builder`].
#[derive(Debug, Clone)]
pub struct LogtoConfig {
    pub(crate) endpoint: Url,
    pub(crate) app_id: String,
    pub(crate) app_secret: Option<ClientSecret>,
    pub(crate) scopes: Vec<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) prompt: String,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) clock_tolerance: Duration,
    pub(crate) jwks_refetch_cooldown: Duration,
    pub(crate) allow_insecure_http: bool,
    pub(crate) access_token_margin: Duration,
}

/// What a client and an [`AccessTokenVerifier`](crate::verifier::AccessTokenVerifier) share:
/// timeouts, clock tolerance, the JWKS refetch pace and the transport policy. Set it on either
/// builder with `settings(...)`; every field has a default (`Settings::default()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Total time allowed for one HTTP request (default 10 s).
    pub request_timeout: Duration,
    /// Time allowed to open a connection (default 5 s).
    pub connect_timeout: Duration,
    /// Clock skew tolerated when checking `exp`, `iat` and `nbf` (default 60 s).
    pub clock_tolerance: Duration,
    /// Paces JWKS refetches caused by unknown key ids (a burst of two, then one per cooldown)
    /// and is the shortest time fetched keys are kept (default 30 s).
    pub jwks_refetch_cooldown: Duration,
    /// Allow plain `http://` to hosts other than loopback (the endpoint and every URL discovery
    /// returns). Off by default: only `https://`, or `http://` to `localhost`, `127.0.0.0/8`
    /// and `[::1]`, is used. For development against a provider on another machine only.
    pub allow_insecure_http: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            clock_tolerance: Duration::from_secs(60),
            jwks_refetch_cooldown: Duration::from_secs(30),
            allow_insecure_http: false,
        }
    }
}

impl Settings {
    /// Checks the values.
    pub(crate) fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("requestTimeout", self.request_timeout),
            ("connectTimeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::config(format!("{name} must be positive")));
            }
        }
        Ok(())
    }

    /// Checks the values and builds the HTTP client they describe.
    pub(crate) fn http_client(&self) -> Result<HttpClient> {
        self.validate()?;
        Ok(HttpClient::new(self.request_timeout, self.connect_timeout)?
            .allow_insecure_http(self.allow_insecure_http))
    }
}

impl LogtoConfig {
    /// Starts a configuration for the Logto tenant at `endpoint` and the application `app_id`.
    #[must_use]
    pub fn builder(endpoint: impl Into<String>, app_id: impl Into<String>) -> LogtoConfigBuilder {
        LogtoConfigBuilder {
            endpoint: endpoint.into(),
            app_id: app_id.into(),
            app_secret: None,
            scopes: Vec::new(),
            resources: Vec::new(),
            prompt: "consent".into(),
            settings: Settings::default(),
            access_token_margin: Duration::from_secs(60),
        }
    }

    /// The tenant endpoint, without a trailing slash.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str().trim_end_matches('/')
    }

    /// The application (client) id.
    #[must_use]
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Whether the application authenticates with a secret (a confidential client).
    #[must_use]
    pub fn has_app_secret(&self) -> bool {
        self.app_secret.is_some()
    }

    /// Scopes requested at sign-in: the reserved ones first, then the configured ones, deduplicated.
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Resources requested at sign-in.
    #[must_use]
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// The default `prompt` of the authorization request.
    #[must_use]
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// The discovery document's URL: `{endpoint}/oidc/.well-known/openid-configuration`.
    #[must_use]
    pub fn discovery_url(&self) -> String {
        format!("{}/oidc/.well-known/openid-configuration", self.endpoint())
    }

    /// The issuer Logto uses for this endpoint: `{endpoint}/oidc`.
    #[must_use]
    pub fn expected_issuer(&self) -> String {
        format!("{}/oidc", self.endpoint())
    }

    /// The total time allowed for one HTTP request.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// An access token is refreshed once it has less than this much life left.
    #[must_use]
    pub fn access_token_margin(&self) -> Duration {
        self.access_token_margin
    }

    /// The HTTP client these settings describe (timeouts, the plain-HTTP policy).
    ///
    /// # Errors
    /// [`Error::Config`] if the TLS backend cannot be initialised.
    pub fn http_client(&self) -> Result<HttpClient> {
        Settings {
            request_timeout: self.request_timeout,
            connect_timeout: self.connect_timeout,
            clock_tolerance: self.clock_tolerance,
            jwks_refetch_cooldown: self.jwks_refetch_cooldown,
            allow_insecure_http: self.allow_insecure_http,
        }
        .http_client()
    }

    /// Whether the organizations scope is configured.
    #[must_use]
    pub fn has_organizations_scope(&self) -> bool {
        self.scopes.iter().any(|s| s == ORGANIZATIONS_SCOPE)
    }
}

/// Builder of a [`LogtoConfig`]; [`build`](Self::build) validates everything.
#[derive(Debug, Clone)]
pub struct LogtoConfigBuilder {
    endpoint: String,
    app_id: String,
    app_secret: Option<String>,
    scopes: Vec<String>,
    resources: Vec<String>,
    prompt: String,
    settings: Settings,
    access_token_margin: Duration,
}

impl LogtoConfigBuilder {
    /// The application secret of a confidential (traditional web / M2M) application.
    #[must_use]
    pub fn app_secret(mut self, secret: Option<String>) -> Self {
        self.app_secret = secret;
        self
    }

    /// Extra scopes (the reserved ones are always added).
    #[must_use]
    pub fn scopes(mut self, scopes: Vec<String>) -> Self {
        self.scopes = scopes;
        self
    }

    /// API resources (indicators) to request at sign-in.
    #[must_use]
    pub fn resources(mut self, resources: Vec<String>) -> Self {
        self.resources = resources;
        self
    }

    /// The default `prompt` (space-separated values of `none login consent select_account`).
    #[must_use]
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = prompt.into();
        self
    }

    /// Timeouts, clock tolerance, JWKS refetch pace and the plain-HTTP policy.
    #[must_use]
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// An access token is refreshed once it has less than this much life left (default 60 s).
    #[must_use]
    pub fn access_token_margin(mut self, margin: Duration) -> Self {
        self.access_token_margin = margin;
        self
    }

    /// Validates and normalises the configuration.
    ///
    /// # Errors
    /// [`Error::Config`] naming the invalid field.
    pub fn build(self) -> Result<LogtoConfig> {
        let settings = self.settings;
        let endpoint = parse_endpoint(&self.endpoint, settings.allow_insecure_http)?;
        settings.validate()?;
        let app_id = self.app_id.trim().to_owned();
        if app_id.is_empty() {
            return Err(Error::config("appId must not be empty"));
        }
        let app_secret = match self.app_secret {
            Some(secret) if secret.is_empty() => {
                return Err(Error::config(
                    "appSecret must not be empty (omit it for a public client)",
                ));
            }
            other => other.map(ClientSecret::new),
        };
        let prompt = normalise_prompt(&self.prompt)?;

        let mut scopes: Vec<String> = RESERVED_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        for scope in self.scopes {
            let scope = scope.trim();
            if scope.is_empty() || scope.contains(char::is_whitespace) {
                return Err(Error::config(format!("invalid scope {scope:?}")));
            }
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        let mut resources: Vec<String> = Vec::new();
        for resource in self.resources {
            if Url::parse(&resource).is_err() {
                return Err(Error::config(format!(
                    "resource {resource:?} is not an absolute URI"
                )));
            }
            if !resources.contains(&resource) {
                resources.push(resource);
            }
        }
        if scopes.iter().any(|s| s == ORGANIZATIONS_SCOPE)
            && !resources.iter().any(|r| r == ORGANIZATIONS_RESOURCE)
        {
            resources.push(ORGANIZATIONS_RESOURCE.to_owned());
        }

        Ok(LogtoConfig {
            endpoint,
            app_id,
            app_secret,
            scopes,
            resources,
            prompt,
            request_timeout: settings.request_timeout,
            connect_timeout: settings.connect_timeout,
            clock_tolerance: settings.clock_tolerance,
            jwks_refetch_cooldown: settings.jwks_refetch_cooldown,
            allow_insecure_http: settings.allow_insecure_http,
            access_token_margin: self.access_token_margin,
        })
    }
}

pub(crate) fn parse_endpoint(raw: &str, allow_insecure_http: bool) -> Result<Url> {
    let url =
        Url::parse(raw.trim()).map_err(|e| Error::config(format!("endpoint is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config("endpoint must be an http(s) URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config("endpoint has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config("endpoint must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config("endpoint must not have a query or fragment"));
    }
    if !transport_allowed(&url, allow_insecure_http) {
        return Err(Error::config(
            "endpoint must be https (plain http only for localhost, 127.0.0.1 or [::1], \
             unless allowInsecureHttp is set for development)",
        ));
    }
    Ok(url)
}

/// Validates a space-separated prompt and returns it normalised (single spaces).
pub(crate) fn normalise_prompt(prompt: &str) -> Result<String> {
    let values: Vec<&str> = prompt.split_whitespace().collect();
    if let Some(bad) = values.iter().find(|v| !PROMPT_VALUES.contains(v)) {
        return Err(Error::config(format!(
            "prompt value {bad:?} is not one of none, login, consent, select_account"
        )));
    }
    if values.contains(&"none") && values.len() > 1 {
        return Err(Error::config("prompt=none cannot be combined with other values"));
    }
    Ok(values.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_scopes_and_organizations_resource_are_added() {
        let config = LogtoConfig::builder("https://tenant.logto.app/", "app")
            .scopes(vec!["email".into(), "openid".into(), ORGANIZATIONS_SCOPE.into()])
            .build()
            .unwrap();
        assert_eq!(
            config.scopes(),
            [
                "openid",
                "offline_access",
                "profile",
                "email",
                ORGANIZATIONS_SCOPE
            ]
        );
        assert_eq!(config.resources(), [ORGANIZATIONS_RESOURCE]);
        assert_eq!(config.endpoint(), "https://tenant.logto.app");
        assert_eq!(
            config.discovery_url(),
            "https://tenant.logto.app/oidc/.well-known/openid-configuration"
        );
    }

    #[test]
    fn invalid_values_are_rejected() {
        for endpoint in [
            "not a url",
            "ftp://x",
            "https://u:p@x",
            "https://x?a=1",
            "mailto:x",
            "http://tenant.logto.app",
            "http://10.0.0.1:3001",
            "http://127.0.0.1.evil.example",
        ] {
            assert!(matches!(
                LogtoConfig::builder(endpoint, "app").build(),
                Err(Error::Config(_))
            ));
        }
        assert!(LogtoConfig::builder("https://x", " ").build().is_err());
        assert!(
            LogtoConfig::builder("https://x", "a")
                .prompt("bogus")
                .build()
                .is_err()
        );
        assert!(
            LogtoConfig::builder("https://x", "a")
                .prompt("none login")
                .build()
                .is_err()
        );
        assert!(
            LogtoConfig::builder("https://x", "a")
                .app_secret(Some(String::new()))
                .build()
                .is_err()
        );
        assert!(
            LogtoConfig::builder("https://x", "a")
                .resources(vec!["api".into()])
                .build()
                .is_err()
        );
        let ok = LogtoConfig::builder("https://x", "a")
            .prompt(" login  consent ")
            .build()
            .unwrap();
        assert_eq!(ok.prompt(), "login consent");
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for endpoint in [
            "http://localhost:3001",
            "http://127.0.0.1:3001",
            "http://127.8.9.10",
            "http://[::1]:3001",
            "http://app.localhost",
        ] {
            assert!(LogtoConfig::builder(endpoint, "a").build().is_ok(), "{endpoint}");
        }
        let insecure = Settings {
            allow_insecure_http: true,
            ..Settings::default()
        };
        assert!(
            LogtoConfig::builder("http://logto.internal:3001", "a")
                .settings(insecure)
                .build()
                .is_ok()
        );
        let zero = Settings {
            request_timeout: Duration::ZERO,
            ..Settings::default()
        };
        assert!(
            LogtoConfig::builder("https://x", "a")
                .settings(zero)
                .build()
                .is_err()
        );
    }
}
