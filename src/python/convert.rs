//! Python values in: the `LogtoConfig` model (read by attribute, with the seed's field names).

use std::time::Duration;

use pyo3::prelude::*;

use crate::config::{LogtoConfig, Settings};
use crate::error::{Error, Result};

/// The fields of `logto_rs.LogtoConfig`, mirrored one to one.
#[derive(FromPyObject)]
pub(crate) struct ConfigInput {
    #[pyo3(attribute("endpoint"))]
    endpoint: String,
    #[pyo3(attribute("appId"))]
    app_id: String,
    #[pyo3(attribute("appSecret"))]
    app_secret: Option<String>,
    #[pyo3(attribute("scopes"))]
    scopes: Vec<String>,
    #[pyo3(attribute("resources"))]
    resources: Vec<String>,
    #[pyo3(attribute("prompt"))]
    prompt: String,
    #[pyo3(attribute("requestTimeout"))]
    request_timeout: f64,
    #[pyo3(attribute("connectTimeout"))]
    connect_timeout: f64,
    #[pyo3(attribute("clockTolerance"))]
    clock_tolerance: f64,
    #[pyo3(attribute("jwksRefetchCooldown"))]
    jwks_refetch_cooldown: f64,
    #[pyo3(attribute("allowInsecureHttp"))]
    allow_insecure_http: bool,
    #[pyo3(attribute("accessTokenMargin"))]
    access_token_margin: f64,
}

pub(crate) fn seconds(name: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| Error::Config(format!("{name} must be a non-negative number of seconds")))
}

/// The [`Settings`] of Python keyword values in seconds (the names in errors are Python's).
pub(crate) fn settings(
    request_timeout: f64,
    connect_timeout: f64,
    clock_tolerance: f64,
    jwks_refetch_cooldown: f64,
    allow_insecure_http: bool,
) -> Result<Settings> {
    Ok(Settings {
        request_timeout: seconds("requestTimeout", request_timeout)?,
        connect_timeout: seconds("connectTimeout", connect_timeout)?,
        clock_tolerance: seconds("clockTolerance", clock_tolerance)?,
        jwks_refetch_cooldown: seconds("jwksRefetchCooldown", jwks_refetch_cooldown)?,
        allow_insecure_http,
    })
}

impl ConfigInput {
    pub(crate) fn into_config(self) -> Result<LogtoConfig> {
        LogtoConfig::builder(self.endpoint, self.app_id)
            .app_secret(self.app_secret)
            .scopes(self.scopes)
            .resources(self.resources)
            .prompt(self.prompt)
            .settings(settings(
                self.request_timeout,
                self.connect_timeout,
                self.clock_tolerance,
                self.jwks_refetch_cooldown,
                self.allow_insecure_http,
            )?)
            .access_token_margin(seconds("accessTokenMargin", self.access_token_margin)?)
            .build()
    }
}

// Machine tokens.

/// The fields of `logto_rs.LogtoM2MConfig`, mirrored one to one.
#[derive(FromPyObject)]
pub(crate) struct MachineConfigInput {
    #[pyo3(attribute("endpoint"))]
    endpoint: String,
    #[pyo3(attribute("appId"))]
    app_id: String,
    #[pyo3(attribute("appSecret"))]
    app_secret: String,
    #[pyo3(attribute("managementApiResource"))]
    pub(crate) management_api_resource: Option<String>,
    #[pyo3(attribute("requestTimeout"))]
    request_timeout: f64,
    #[pyo3(attribute("connectTimeout"))]
    connect_timeout: f64,
    #[pyo3(attribute("accessTokenMargin"))]
    access_token_margin: f64,
    #[pyo3(attribute("allowInsecureHttp"))]
    allow_insecure_http: bool,
}

impl MachineConfigInput {
    /// The client configuration of the machine-to-machine app (its secret is required).
    pub(crate) fn to_config(&self) -> Result<LogtoConfig> {
        if self.app_secret.is_empty() {
            return Err(Error::config("appSecret must not be empty"));
        }
        LogtoConfig::builder(self.endpoint.clone(), self.app_id.clone())
            .app_secret(Some(self.app_secret.clone()))
            .settings(Settings {
                request_timeout: seconds("requestTimeout", self.request_timeout)?,
                connect_timeout: seconds("connectTimeout", self.connect_timeout)?,
                allow_insecure_http: self.allow_insecure_http,
                ..Settings::default()
            })
            .access_token_margin(seconds("accessTokenMargin", self.access_token_margin)?)
            .build()
    }
}

/// A device authorization for Python: a JSON object with the device code (kept private by the
/// Python wrapper), the user code, the URIs, `expires_at` (epoch seconds) and `interval`.
pub(crate) fn device_authorization_json(authorization: &crate::device::DeviceAuthorization) -> String {
    serde_json::json!({
        "device_code": authorization.device_code.secret(),
        "user_code": authorization.user_code,
        "verification_uri": authorization.verification_uri,
        "verification_uri_complete": authorization.verification_uri_complete,
        "expires_at": authorization.expires_at,
        "interval": authorization.interval,
    })
    .to_string()
}

/// The part of a device authorization that polling needs, back from Python.
pub(crate) fn device_authorization(
    device_code: String,
    expires_at: u64,
    interval: u64,
) -> crate::device::DeviceAuthorization {
    crate::device::DeviceAuthorization {
        device_code: crate::secret::DeviceCode::new(device_code),
        user_code: String::new(),
        verification_uri: String::new(),
        verification_uri_complete: None,
        expires_at,
        interval: interval.max(1),
    }
}
