//! Client configuration, validated on construction.
//!
//! The reserved scopes `openid`, `offline_access` and `profile` are always requested, and the
//! organizations resource is added whenever the organizations scope is asked for, as every
//! official Logto SDK does (compared as strings, so a scope given as text behaves like the enum).

use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};
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
    pub(crate) access_token_margin: Duration,
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
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            clock_tolerance: Duration::from_secs(60),
            jwks_refetch_cooldown: Duration::from_secs(30),
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
    request_timeout: Duration,
    connect_timeout: Duration,
    clock_tolerance: Duration,
    jwks_refetch_cooldown: Duration,
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

    /// Total time allowed for one HTTP request (default 10 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Time allowed to open a connection (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Clock skew tolerated when checking `exp`, `iat` and `nbf` (default 60 s).
    #[must_use]
    pub fn clock_tolerance(mut self, tolerance: Duration) -> Self {
        self.clock_tolerance = tolerance;
        self
    }

    /// Minimum time between two JWKS fetches caused by unknown key ids (default 30 s).
    #[must_use]
    pub fn jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.jwks_refetch_cooldown = cooldown;
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
        let endpoint = parse_endpoint(&self.endpoint)?;
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
        for (name, value) in [
            ("requestTimeout", self.request_timeout),
            ("connectTimeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::config(format!("{name} must be positive")));
            }
        }

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
            request_timeout: self.request_timeout,
            connect_timeout: self.connect_timeout,
            clock_tolerance: self.clock_tolerance,
            jwks_refetch_cooldown: self.jwks_refetch_cooldown,
            access_token_margin: self.access_token_margin,
        })
    }
}

pub(crate) fn parse_endpoint(raw: &str) -> Result<Url> {
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
}
