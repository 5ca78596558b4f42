//! Logto's Management API, called with a `client_credentials` token of a machine-to-machine app
//! (resource: the Management API, scope `all`; cached like every machine token). Any of its
//! operations is one [`ApiCall`] sent by [`ManagementApi::send_call`]; the typed Python client
//! (`logto_rs.management`, generated from Logto's OpenAPI document) names them all.

use url::Url;

use crate::api::{ApiCall, ApiResponse, RetryPolicy};
use crate::client::LogtoClient;
use crate::error::{Endpoint, Result};
use crate::grant::TokenTarget;
use crate::machine::MachineToken;

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
    /// [`Error::Config`](crate::Error::Config) when `resource` is not an absolute URI.
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

    /// Sends any call of the Management API with a Management API token (cached; concurrent
    /// callers share one token request), retrying 429 and 5xx answers of idempotent methods as
    /// `retry` says.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an invalid path;
    /// [`Error::Api`](crate::Error::Api) for Logto's refusals; token, network and response
    /// errors.
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
}
