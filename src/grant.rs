//! Token-endpoint requests: each grant's form parameters (pure) and the one function that sends
//! them with the application's client authentication.

use serde::Deserialize;

use crate::config::LogtoConfig;
use crate::error::{Endpoint, Error, Result};
use crate::http::{ClientAuth, HttpClient};
use crate::secret::{
    AccessToken, AuthorizationCode, CodeVerifier, DeviceCode, Fingerprint, IdToken, PersonalAccessTokenValue,
    RefreshToken, SubjectTokenValue,
};

/// The `grant_type` of the device authorization grant (RFC 8628).
pub const DEVICE_CODE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The `grant_type` of RFC 8693 token exchange.
pub const TOKEN_EXCHANGE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Logto's `subject_token_type` for a personal access token.
pub const PERSONAL_ACCESS_TOKEN_TYPE: &str = "urn:logto:token-type:personal_access_token";
/// The RFC 8693 token type of an access token (what a token exchange issues, the type of a
/// delegated subject token and of an actor token).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Logto's `subject_token_type` for an impersonation subject token (`sub_…`).
pub const IMPERSONATION_TOKEN_TYPE: &str = "urn:logto:token-type:impersonation_token";

/// How an impersonation subject token is announced: Logto's own type, or the older RFC 8693
/// access-token type, which Logto still accepts for a `sub_…` token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImpersonationTokenType {
    /// `urn:logto:token-type:impersonation_token`.
    #[default]
    Impersonation,
    /// `urn:ietf:params:oauth:token-type:access_token`.
    AccessToken,
}

impl ImpersonationTokenType {
    /// The type named by its URN.
    ///
    /// # Errors
    /// [`Error::Config`] for any other value.
    pub fn from_urn(urn: &str) -> Result<Self> {
        match urn {
            IMPERSONATION_TOKEN_TYPE => Ok(Self::Impersonation),
            ACCESS_TOKEN_TYPE => Ok(Self::AccessToken),
            other => Err(Error::config(format!(
                "subject token type {other:?} is neither {IMPERSONATION_TOKEN_TYPE} nor {ACCESS_TOKEN_TYPE}"
            ))),
        }
    }

    /// The URN sent as `subject_token_type`.
    #[must_use]
    pub fn urn(self) -> &'static str {
        match self {
            Self::Impersonation => IMPERSONATION_TOKEN_TYPE,
            Self::AccessToken => ACCESS_TOKEN_TYPE,
        }
    }
}

/// The subject of an RFC 8693 token exchange: the user the new access token acts for, proved by
/// one of Logto's subject tokens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ExchangeSubject {
    /// A user's personal access token (reusable).
    PersonalAccessToken(PersonalAccessTokenValue),
    /// An access token the user presented to this service, exchanged for a token to another API
    /// (service-to-service delegation; reusable while it is valid).
    AccessToken(AccessToken),
    /// An impersonation subject token from the Management API (single-use).
    Impersonation(SubjectTokenValue, ImpersonationTokenType),
}

impl ExchangeSubject {
    /// The subject token.
    #[must_use]
    pub fn secret(&self) -> &str {
        match self {
            Self::PersonalAccessToken(token) => token.secret(),
            Self::AccessToken(token) => token.secret(),
            Self::Impersonation(token, _) => token.secret(),
        }
    }

    /// SHA-256 of the subject token: what a cache keys on instead of the token.
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        match self {
            Self::PersonalAccessToken(token) => token.fingerprint(),
            Self::AccessToken(token) => token.fingerprint(),
            Self::Impersonation(token, _) => token.fingerprint(),
        }
    }

    /// Its `subject_token_type`.
    #[must_use]
    pub fn token_type(&self) -> &'static str {
        match self {
            Self::PersonalAccessToken(_) => PERSONAL_ACCESS_TOKEN_TYPE,
            Self::AccessToken(_) => ACCESS_TOKEN_TYPE,
            Self::Impersonation(_, token_type) => token_type.urn(),
        }
    }
}

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
    /// RFC 8693: the type of the issued token (a token exchange's answer).
    #[serde(default)]
    pub issued_token_type: Option<String>,
}

/// What a machine token is for: an API resource, an organization, or both, and the scopes to
/// ask for (`client_credentials` and token exchange have no default scopes). Validated and
/// normalised on construction (scopes deduplicated and sorted), so two targets that ask for the
/// same thing are equal; it is part of the machine-token cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenTarget {
    resource: Option<String>,
    organization_id: Option<String>,
    scope: Option<String>,
}

impl TokenTarget {
    /// A target; empty strings count as absent.
    ///
    /// # Errors
    /// [`Error::Config`] when the resource is not an absolute URI or a scope is blank or has
    /// whitespace in it.
    pub fn new(
        resource: Option<&str>,
        organization_id: Option<&str>,
        scopes: &[impl AsRef<str>],
    ) -> Result<Self> {
        let resource = resource.map(str::trim).filter(|r| !r.is_empty());
        if let Some(resource) = resource
            && url::Url::parse(resource).is_err()
        {
            return Err(Error::config(format!(
                "resource {resource:?} is not an absolute URI"
            )));
        }
        let organization_id = organization_id.map(str::trim).filter(|o| !o.is_empty());
        let mut sorted = Vec::with_capacity(scopes.len());
        for scope in scopes {
            let scope = scope.as_ref().trim();
            if scope.is_empty() || scope.contains(char::is_whitespace) {
                return Err(Error::config(format!("invalid scope {scope:?}")));
            }
            sorted.push(scope);
        }
        sorted.sort_unstable();
        sorted.dedup();
        Ok(Self {
            resource: resource.map(str::to_owned),
            organization_id: organization_id.map(str::to_owned),
            scope: (!sorted.is_empty()).then(|| sorted.join(" ")),
        })
    }

    /// The API resource indicator.
    #[must_use]
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// The organization id.
    #[must_use]
    pub fn organization_id(&self) -> Option<&str> {
        self.organization_id.as_deref()
    }

    /// The requested scopes, space-separated and sorted.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// `resource`, `organization_id` and `scope`, each when present.
    fn push_params<'s>(&'s self, params: &mut Vec<(&'static str, &'s str)>) {
        for (name, value) in [
            ("resource", &self.resource),
            ("organization_id", &self.organization_id),
            ("scope", &self.scope),
        ] {
            if let Some(value) = value {
                params.push((name, value));
            }
        }
    }
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
    /// `device_code` (RFC 8628): one poll for the tokens of a device sign-in.
    DeviceCode {
        /// The device code of the device authorization.
        device_code: &'a DeviceCode,
    },
    /// `client_credentials` (machine-to-machine): a token of the application itself.
    ClientCredentials {
        /// The resource and/or organization, and the scopes.
        target: &'a TokenTarget,
    },
    /// RFC 8693 token exchange of a subject token for an access token of its user.
    TokenExchange {
        /// The subject token and its type.
        subject: &'a ExchangeSubject,
        /// An access token (with `openid`) of the user acting for the subject: the issued token
        /// names them in its `act` claim.
        actor_token: Option<&'a AccessToken>,
        /// The resource and/or organization, and the scopes.
        target: &'a TokenTarget,
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
            Self::DeviceCode { device_code } => vec![
                ("grant_type", DEVICE_CODE_GRANT_TYPE),
                ("device_code", device_code.secret()),
            ],
            Self::ClientCredentials { target } => {
                let mut params = vec![("grant_type", "client_credentials")];
                target.push_params(&mut params);
                params
            }
            Self::TokenExchange {
                subject,
                actor_token,
                target,
            } => {
                let mut params = vec![
                    ("grant_type", TOKEN_EXCHANGE_GRANT_TYPE),
                    ("subject_token", subject.secret()),
                    ("subject_token_type", subject.token_type()),
                ];
                if let Some(actor) = actor_token {
                    params.push(("actor_token", actor.secret()));
                    params.push(("actor_token_type", ACCESS_TOKEN_TYPE));
                }
                target.push_params(&mut params);
                params
            }
        }
    }

    /// For a grant an application must be allowed to use: its name and what to change in Logto.
    fn permission(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::TokenExchange { .. } => Some((
                "token_exchange",
                "enable token exchange for the app (Logto Console > Applications > the app > \
                 \"Allow token exchange\"; a third-party app can never have it)",
            )),
            Self::ClientCredentials { .. } => Some((
                "client_credentials",
                "use the id and secret of a machine-to-machine app",
            )),
            _ => None,
        }
    }

    /// The provider's refusal of a grant the application is not allowed to use becomes
    /// [`Error::GrantNotAllowed`], which says what to change; other errors are kept.
    #[must_use]
    pub fn explain_error(&self, error: Error) -> Error {
        match (self.permission(), error) {
            (Some((grant, hint)), Error::OAuth(e))
                if e.error == "unauthorized_client"
                    || (e.error == "invalid_request"
                        && e.description
                            .as_deref()
                            .is_some_and(|d| d.contains("grant type is not allowed"))) =>
            {
                Error::GrantNotAllowed {
                    grant,
                    hint,
                    error: e,
                }
            }
            (_, other) => other,
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
        .map_err(|e| grant.explain_error(e))
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
    fn targets_are_normalised_and_validated() {
        let a = TokenTarget::new(Some(" https://api "), Some(""), &["write", "read", "read"]).unwrap();
        let b = TokenTarget::new(Some("https://api"), None, &["read", "write"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.scope(), Some("read write"));
        assert_eq!(a.organization_id(), None);
        let none = TokenTarget::new(None, None, &[] as &[&str]).unwrap();
        assert_eq!((none.resource(), none.scope()), (None, None));
        assert!(matches!(
            TokenTarget::new(Some("api"), None, &[] as &[&str]),
            Err(Error::Config(_))
        ));
        assert!(TokenTarget::new(None, None, &["read write"]).is_err());
        assert!(TokenTarget::new(None, None, &[" "]).is_err());
    }

    #[test]
    fn machine_grant_params() {
        let target = TokenTarget::new(Some("https://api"), Some("org-1"), &["b", "a"]).unwrap();
        assert_eq!(
            Grant::ClientCredentials { target: &target }.params(),
            [
                ("grant_type", "client_credentials"),
                ("resource", "https://api"),
                ("organization_id", "org-1"),
                ("scope", "a b")
            ]
        );
        let pat = ExchangeSubject::PersonalAccessToken(PersonalAccessTokenValue::new("pat_x"));
        let bare = TokenTarget::new(None, None, &[] as &[&str]).unwrap();
        assert_eq!(
            Grant::TokenExchange {
                subject: &pat,
                actor_token: None,
                target: &bare
            }
            .params(),
            [
                ("grant_type", TOKEN_EXCHANGE_GRANT_TYPE),
                ("subject_token", "pat_x"),
                ("subject_token_type", PERSONAL_ACCESS_TOKEN_TYPE),
            ]
        );
    }

    #[test]
    fn delegation_and_impersonation_params() {
        let target = TokenTarget::new(Some("https://downstream"), None, &["read"]).unwrap();
        let delegated = ExchangeSubject::AccessToken(AccessToken::new("eyJ.user.token"));
        assert_eq!(
            Grant::TokenExchange {
                subject: &delegated,
                actor_token: None,
                target: &target
            }
            .params(),
            [
                ("grant_type", TOKEN_EXCHANGE_GRANT_TYPE),
                ("subject_token", "eyJ.user.token"),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("resource", "https://downstream"),
                ("scope", "read"),
            ]
        );
        let actor = AccessToken::new("opaque-actor");
        for (token_type, urn) in [
            (ImpersonationTokenType::Impersonation, IMPERSONATION_TOKEN_TYPE),
            (ImpersonationTokenType::AccessToken, ACCESS_TOKEN_TYPE),
        ] {
            assert_eq!(ImpersonationTokenType::from_urn(urn).unwrap(), token_type);
            let subject = ExchangeSubject::Impersonation(SubjectTokenValue::new("sub_1"), token_type);
            let grant = Grant::TokenExchange {
                subject: &subject,
                actor_token: Some(&actor),
                target: &target,
            };
            assert_eq!(
                grant.params()[1..5],
                [
                    ("subject_token", "sub_1"),
                    ("subject_token_type", urn),
                    ("actor_token", "opaque-actor"),
                    ("actor_token_type", ACCESS_TOKEN_TYPE),
                ]
            );
        }
        assert!(matches!(
            ImpersonationTokenType::from_urn(PERSONAL_ACCESS_TOKEN_TYPE),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn refusals_of_a_grant_type_say_what_to_enable() {
        let pat = ExchangeSubject::PersonalAccessToken(PersonalAccessTokenValue::new("pat_x"));
        let target = TokenTarget::new(None, None, &[] as &[&str]).unwrap();
        let exchange = Grant::TokenExchange {
            subject: &pat,
            actor_token: None,
            target: &target,
        };
        let refusal = |error: &str, description: &str| {
            Error::OAuth(crate::error::OAuthError {
                endpoint: Endpoint::Token,
                status: 400,
                error: error.into(),
                description: Some(description.into()),
            })
        };
        let explained = exchange.explain_error(refusal(
            "invalid_request",
            "requested grant type is not allowed for this client",
        ));
        assert_eq!(explained.code(), "token_exchange.not_allowed");
        assert!(
            explained
                .to_string()
                .starts_with("token exchange is not allowed for this application: enable token exchange"),
            "{explained}"
        );
        let kept = exchange.explain_error(refusal("invalid_grant", "grant request is invalid"));
        assert_eq!(kept.code(), "oauth.invalid_grant");
        let m2m = Grant::ClientCredentials { target: &target };
        assert_eq!(
            m2m.explain_error(refusal("unauthorized_client", "x")).code(),
            "client_credentials.not_allowed"
        );
        let token = RefreshToken::new("rt");
        let refresh = Grant::RefreshToken {
            refresh_token: &token,
            resource: None,
            organization_id: None,
        };
        assert_eq!(
            refresh.explain_error(refusal("unauthorized_client", "x")).code(),
            "oauth.unauthorized_client"
        );
        // A device sign-in's poll sorts the provider's answers itself (pending, slow down,
        // denied): they stay OAuth errors.
        let code = DeviceCode::new("dc");
        let device = Grant::DeviceCode { device_code: &code };
        assert_eq!(
            device.explain_error(refusal("authorization_pending", "x")).code(),
            "oauth.authorization_pending"
        );
    }

    #[test]
    fn the_device_grant_polls_with_its_device_code() {
        let code = DeviceCode::new("device-code");
        assert_eq!(
            Grant::DeviceCode { device_code: &code }.params(),
            [
                ("grant_type", DEVICE_CODE_GRANT_TYPE),
                ("device_code", "device-code")
            ]
        );
        assert_eq!(
            DEVICE_CODE_GRANT_TYPE,
            "urn:ietf:params:oauth:grant-type:device_code"
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
