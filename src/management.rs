//! Logto's Management API, the parts that manage a user's personal access tokens and create
//! impersonation subject tokens, called with a `client_credentials` token of a machine-to-machine
//! app (resource: the Management API, scope `all`; cached like every machine token).
//!
//! Each personal-access-token call is a pure [`PatRequest`] (method, URL, JSON body) sent through
//! [`crate::http`]; errors in Logto's `{code, message}` format become [`Error::Api`].

use serde::{Deserialize, Serialize};
use url::Url;

use crate::api::{ApiCall, ApiResponse, RetryPolicy, api_url};
use crate::client::LogtoClient;
use crate::error::{Endpoint, Error, Result};
use crate::grant::TokenTarget;
use crate::jwt::now_epoch_seconds;
use crate::machine::MachineToken;
use crate::secret::{PersonalAccessTokenValue, SubjectTokenValue};

/// The scope that grants the whole Management API.
pub const MANAGEMENT_API_SCOPE: &str = "all";
/// The Management API's resource indicator on self-hosted Logto.
pub const DEFAULT_MANAGEMENT_API_RESOURCE: &str = "https://default.logto.app/api";

/// The Management API's resource indicator for the Logto at `endpoint`:
/// `https://<tenant>.logto.app/api` for a Logto Cloud tenant URL, otherwise the self-hosted
/// `https://default.logto.app/api` (a Cloud tenant behind a custom domain must give its own).
#[must_use]
pub fn management_api_resource(endpoint: &str) -> String {
    let tenant = Url::parse(endpoint).ok().and_then(|url| {
        let host = url.host_str()?.to_ascii_lowercase();
        let tenant = host.strip_suffix(".logto.app")?.to_owned();
        (!tenant.is_empty() && !tenant.contains('.')).then_some(tenant)
    });
    match tenant {
        Some(tenant) => format!("https://{tenant}.logto.app/api"),
        None => DEFAULT_MANAGEMENT_API_RESOURCE.to_owned(),
    }
}

/// A user's personal access token as the Management API returns it. Timestamps are epoch
/// milliseconds, as Logto sends them; `value` is a secret (redacted in `Debug`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PersonalAccessToken {
    /// The tenant.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The user it belongs to.
    pub user_id: String,
    /// Its name, unique per user.
    pub name: String,
    /// The token (`pat_…`).
    pub value: PersonalAccessTokenValue,
    /// Creation time, epoch milliseconds.
    pub created_at: i64,
    /// Expiry, epoch milliseconds; `None` never expires.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// An impersonation subject token (`POST /api/subject-tokens`): exchange it once, before it
/// expires, with [`LogtoClient::exchange_subject_token`](crate::client::LogtoClient::exchange_subject_token). Its `Debug` redacts the token; it
/// serialises (camelCase) into the JSON the Python model reads.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SubjectToken {
    /// The token (`sub_…`), single-use.
    pub subject_token: SubjectTokenValue,
    /// Its lifetime in seconds, as Logto sent it (600).
    pub expires_in: u64,
    /// Its expiry, seconds since the epoch.
    pub expires_at: u64,
}

/// Logto's answer to `POST /api/subject-tokens`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubjectTokenResponse {
    subject_token: SubjectTokenValue,
    expires_in: u64,
}

/// One personal-access-token call of the Management API (Logto's current routes).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PatRequest<'a> {
    /// `GET /api/users/{userId}/personal-access-tokens`.
    List {
        /// The user.
        user_id: &'a str,
    },
    /// `POST /api/users/{userId}/personal-access-tokens` `{name, expiresAt}` → 201.
    Create {
        /// The user.
        user_id: &'a str,
        /// The new token's name.
        name: &'a str,
        /// Expiry, epoch milliseconds (in the future); `None`: never.
        expires_at: Option<i64>,
    },
    /// `PATCH /api/users/{userId}/personal-access-tokens` `{name, currentName}`.
    Rename {
        /// The user.
        user_id: &'a str,
        /// The token's name now.
        current_name: &'a str,
        /// Its new name.
        name: &'a str,
    },
    /// `POST /api/users/{userId}/personal-access-tokens/delete` `{name}` → 204.
    Delete {
        /// The user.
        user_id: &'a str,
        /// The token's name.
        name: &'a str,
    },
}

impl PatRequest<'_> {
    /// The HTTP method.
    #[must_use]
    pub fn method(&self) -> reqwest::Method {
        match self {
            Self::List { .. } => reqwest::Method::GET,
            Self::Create { .. } | Self::Delete { .. } => reqwest::Method::POST,
            Self::Rename { .. } => reqwest::Method::PATCH,
        }
    }

    /// The URL under the Logto `endpoint` (the user id is one percent-encoded path segment).
    ///
    /// # Errors
    /// [`Error::Config`] for an empty user id or name, or an endpoint that is not a base URL.
    pub fn url(&self, endpoint: &str) -> Result<String> {
        let (user_id, names) = match self {
            Self::List { user_id } => (*user_id, vec![]),
            Self::Create { user_id, name, .. } | Self::Delete { user_id, name } => (*user_id, vec![*name]),
            Self::Rename {
                user_id,
                current_name,
                name,
            } => (*user_id, vec![*current_name, *name]),
        };
        if user_id.is_empty() || user_id == "." || user_id == ".." {
            return Err(Error::config("userId must not be empty, \".\" or \"..\""));
        }
        if names.iter().any(|n| n.is_empty()) {
            return Err(Error::config("a personal access token name must not be empty"));
        }
        let delete = matches!(self, Self::Delete { .. }).then_some("delete");
        api_url(
            endpoint,
            ["users", user_id, "personal-access-tokens"]
                .into_iter()
                .chain(delete),
        )
        .map(String::from)
    }

    /// The JSON body, if the call has one.
    #[must_use]
    pub fn body(&self) -> Option<serde_json::Value> {
        match self {
            Self::List { .. } => None,
            Self::Create { name, expires_at, .. } => {
                Some(serde_json::json!({"name": name, "expiresAt": expires_at}))
            }
            Self::Rename {
                current_name, name, ..
            } => Some(serde_json::json!({"name": name, "currentName": current_name})),
            Self::Delete { name, .. } => Some(serde_json::json!({"name": name})),
        }
    }
}

/// The Management API of one Logto, through a machine-to-machine app's [`LogtoClient`].
#[derive(Debug, Clone)]
pub struct ManagementApi {
    client: LogtoClient,
    target: TokenTarget,
}

impl ManagementApi {
    /// The Management API for `client` (a machine-to-machine app with its secret), whose
    /// resource indicator is `resource`, or the one [`management_api_resource`] derives from the
    /// endpoint.
    ///
    /// # Errors
    /// [`Error::Config`] when `resource` is not an absolute URI.
    pub fn new(client: LogtoClient, resource: Option<&str>) -> Result<Self> {
        let resource = match resource.map(str::trim).filter(|r| !r.is_empty()) {
            Some(resource) => resource.to_owned(),
            None => management_api_resource(client.config().endpoint()),
        };
        let target = TokenTarget::new(Some(&resource), None, &[MANAGEMENT_API_SCOPE])?;
        Ok(Self { client, target })
    }

    /// The resource indicator the tokens are requested for.
    #[must_use]
    pub fn resource(&self) -> &str {
        self.target.resource().unwrap_or(DEFAULT_MANAGEMENT_API_RESOURCE)
    }

    /// A Management API token (scope `all`), cached like every machine token.
    ///
    /// # Errors
    /// As [`LogtoClient::client_credentials_token`].
    pub async fn token(&self) -> Result<MachineToken> {
        self.client.client_credentials_token(&self.target).await
    }

    /// Sends `request` with a Management API token.
    ///
    /// # Errors
    /// [`Error::Api`] for Logto's answers (404 unknown user or token, 422 name taken, 400 past
    /// expiry, 401/403 without access); token, network and response errors.
    pub async fn send<T: serde::de::DeserializeOwned>(&self, request: &PatRequest<'_>) -> Result<T> {
        let url = request.url(self.client.config().endpoint())?;
        self.call(request.method(), &url, request.body().as_ref()).await
    }

    /// Sends any call of the Management API with a Management API token (cached; concurrent
    /// callers share one token request), retrying 429 and 5xx answers of idempotent methods as
    /// `retry` says.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid path; [`Error::Api`] for Logto's refusals; token,
    /// network and response errors.
    pub async fn send_call(&self, call: &ApiCall, retry: &RetryPolicy) -> Result<ApiResponse> {
        let url = call.url(self.client.config().endpoint())?;
        let token = self.token().await?;
        self.client
            .http()
            .send_api(
                Endpoint::ManagementApi,
                call,
                url,
                token.access_token.secret(),
                retry,
            )
            .await
    }

    /// Sends one call with a Management API token.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        let token = self.token().await?;
        self.client
            .http()
            .send_json_bearer(
                Endpoint::ManagementApi,
                method,
                url,
                token.access_token.secret(),
                body,
            )
            .await
    }

    /// Creates an impersonation subject token for `user_id` (`POST /api/subject-tokens`), with
    /// an optional `context` object (Logto hands it to the JWT customizer of the exchanged
    /// token). Logto 1.19+; on Logto Cloud a plan quota applies.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty user id or a context that is not a JSON object;
    /// [`Error::Api`] 404 for an unknown user, 401/403 without Management API access; token,
    /// network and response errors.
    pub async fn create_subject_token(
        &self,
        user_id: &str,
        context: Option<&serde_json::Value>,
    ) -> Result<SubjectToken> {
        if user_id.is_empty() {
            return Err(Error::config("userId must not be empty"));
        }
        let mut body = serde_json::json!({ "userId": user_id });
        if let Some(context) = context {
            if !context.is_object() {
                return Err(Error::config("the subject token's context must be a JSON object"));
            }
            body["context"] = context.clone();
        }
        let url = String::from(api_url(self.client.config().endpoint(), ["subject-tokens"])?);
        let created: SubjectTokenResponse = self.call(reqwest::Method::POST, &url, Some(&body)).await?;
        if created.subject_token.secret().is_empty() {
            return Err(Error::UnexpectedResponse {
                endpoint: Endpoint::ManagementApi,
                status: 201,
                reason: "the subject token is empty".into(),
            });
        }
        Ok(SubjectToken {
            subject_token: created.subject_token,
            expires_in: created.expires_in,
            expires_at: now_epoch_seconds().saturating_add(created.expires_in),
        })
    }

    /// The user's personal access tokens.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn list_personal_access_tokens(&self, user_id: &str) -> Result<Vec<PersonalAccessToken>> {
        self.send(&PatRequest::List { user_id }).await
    }

    /// Creates a personal access token; `expires_at` in epoch milliseconds (`None`: never).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn create_personal_access_token(
        &self,
        user_id: &str,
        name: &str,
        expires_at: Option<i64>,
    ) -> Result<PersonalAccessToken> {
        self.send(&PatRequest::Create {
            user_id,
            name,
            expires_at,
        })
        .await
    }

    /// Renames a personal access token.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn rename_personal_access_token(
        &self,
        user_id: &str,
        current_name: &str,
        name: &str,
    ) -> Result<PersonalAccessToken> {
        self.send(&PatRequest::Rename {
            user_id,
            current_name,
            name,
        })
        .await
    }

    /// Deletes a personal access token.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn delete_personal_access_token(&self, user_id: &str, name: &str) -> Result<()> {
        self.send(&PatRequest::Delete { user_id, name }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_indicators() {
        assert_eq!(
            management_api_resource("https://abc123.logto.app"),
            "https://abc123.logto.app/api"
        );
        assert_eq!(
            management_api_resource("https://ABC123.Logto.app/"),
            "https://abc123.logto.app/api"
        );
        for self_hosted in [
            "http://127.0.0.1:3001",
            "https://auth.example.com",
            "https://a.b.logto.app",
            "https://logto.app",
            "not a url",
        ] {
            assert_eq!(
                management_api_resource(self_hosted),
                DEFAULT_MANAGEMENT_API_RESOURCE
            );
        }
    }

    #[test]
    fn requests() {
        let list = PatRequest::List { user_id: "user-1" };
        assert_eq!(list.method(), reqwest::Method::GET);
        assert_eq!(
            list.url("http://127.0.0.1:3001").unwrap(),
            "http://127.0.0.1:3001/api/users/user-1/personal-access-tokens"
        );
        assert_eq!(list.body(), None);

        let create = PatRequest::Create {
            user_id: "user/../x y",
            name: "ci",
            expires_at: None,
        };
        assert_eq!(
            create.url("https://tenant.example/logto/").unwrap(),
            "https://tenant.example/logto/api/users/user%2F..%2Fx%20y/personal-access-tokens"
        );
        assert_eq!(
            create.body().unwrap(),
            serde_json::json!({"name": "ci", "expiresAt": null})
        );

        let rename = PatRequest::Rename {
            user_id: "u",
            current_name: "old",
            name: "new",
        };
        assert_eq!(rename.method(), reqwest::Method::PATCH);
        assert_eq!(
            rename.body().unwrap(),
            serde_json::json!({"name": "new", "currentName": "old"})
        );

        let delete = PatRequest::Delete {
            user_id: "u",
            name: "a/b",
        };
        assert_eq!(delete.method(), reqwest::Method::POST);
        assert_eq!(
            delete.url("https://x").unwrap(),
            "https://x/api/users/u/personal-access-tokens/delete"
        );
        assert_eq!(delete.body().unwrap(), serde_json::json!({"name": "a/b"}));

        // A user id cannot climb out of /api/users/.
        for dots in [".", ".."] {
            assert!(matches!(
                PatRequest::List { user_id: dots }.url("https://x"),
                Err(Error::Config(_))
            ));
        }
        for encoded in [".%2e", "%2E%2E", "%2e."] {
            let url = PatRequest::List { user_id: encoded }.url("https://x").unwrap();
            assert!(
                url.starts_with("https://x/api/users/%25") || url.starts_with("https://x/api/users/.%25"),
                "{url}"
            );
            assert!(url.ends_with("/personal-access-tokens"), "{url}");
        }
        assert!(matches!(
            PatRequest::List { user_id: "" }.url("https://x"),
            Err(Error::Config(_))
        ));
        assert!(
            PatRequest::Delete {
                user_id: "u",
                name: ""
            }
            .url("https://x")
            .is_err()
        );
    }

    #[test]
    fn the_subject_token_route_sits_under_api() {
        assert_eq!(
            api_url("https://tenant.example/logto/", ["subject-tokens"])
                .unwrap()
                .as_str(),
            "https://tenant.example/logto/api/subject-tokens"
        );
        let created: SubjectTokenResponse =
            serde_json::from_str(r#"{"subjectToken":"sub_secret","expiresIn":600}"#).unwrap();
        let token = SubjectToken {
            subject_token: created.subject_token,
            expires_in: created.expires_in,
            expires_at: 1600,
        };
        assert!(!format!("{token:?}").contains("sub_secret"));
        assert_eq!(
            serde_json::to_value(&token).unwrap(),
            serde_json::json!({"subjectToken": "sub_secret", "expiresIn": 600, "expiresAt": 1600})
        );
    }

    #[test]
    fn tokens_parse_and_redact() {
        let token: PersonalAccessToken = serde_json::from_str(
            r#"{"tenantId":"default","userId":"user-1","name":"ci","value":"pat_secret_value",
                "createdAt":1700000000000,"expiresAt":null}"#,
        )
        .unwrap();
        assert_eq!((token.created_at, token.expires_at), (1_700_000_000_000, None));
        assert!(!format!("{token:?}").contains("pat_secret_value"));
        assert_eq!(serde_json::to_value(&token).unwrap()["value"], "pat_secret_value");
    }
}
