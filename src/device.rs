//! Device sign-in (RFC 8628, Logto 1.38+): a person signs in on another device (a phone, a
//! laptop's browser) while a command line or a headless script waits for the tokens.
//!
//! [`LogtoClient::start_device_sign_in`](crate::LogtoClient::start_device_sign_in) asks the device
//! authorization endpoint for a user code and a verification URI to show the person;
//! [`LogtoClient::complete_device_sign_in`](crate::LogtoClient::complete_device_sign_in) then polls
//! the token endpoint with the `device_code` grant until the person approved or denied, or the code
//! expired, and stores the tokens in the session's [`Storage`](crate::Storage) exactly as a browser
//! callback does (ID token verified first, one commit). Every other call of the client (access
//! tokens, organization tokens, userinfo, refresh with rotation, sign-out) then works on that
//! storage unchanged.
//!
//! Polling follows RFC 8628 §3.5: wait `interval` seconds between requests (5 when the provider
//! names none), add 5 seconds at every `slow_down`, keep waiting on `authorization_pending`, stop
//! at `access_denied` and `expired_token` ([`Error::DeviceSignIn`]), and at the code's expiry.
//! The wait is a plain future: dropping it stops the polling, and nothing is written until the
//! tokens have arrived and passed their checks.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Endpoint, Error, OAuthError, Result};
use crate::grant::TokenResponse;
use crate::secret::DeviceCode;

/// The polling interval when the provider names none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL: u64 = 5;
/// What every `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: u64 = 5;

/// A device sign-in in progress: what to show the person, and what to poll with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The code the client polls with (secret: never shown).
    pub device_code: DeviceCode,
    /// The code the person enters on the verification page (e.g. `WDJB-MJHT`).
    pub user_code: String,
    /// Where the person goes to enter the user code.
    pub verification_uri: String,
    /// The verification URI with the user code in it (for a link or a QR code), when given.
    pub verification_uri_complete: Option<String>,
    /// When the codes expire, in seconds since the epoch.
    pub expires_at: u64,
    /// Seconds to wait between two polls (at least 1).
    pub interval: u64,
}

#[derive(Deserialize)]
struct AuthorizationResponse {
    device_code: DeviceCode,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

fn unexpected(reason: &str) -> Error {
    Error::UnexpectedResponse {
        endpoint: Endpoint::DeviceAuthorization,
        status: 200,
        reason: reason.to_owned(),
    }
}

/// A value shown on a terminal: printable, no control characters (no escape sequence can reach
/// the person's terminal through it).
fn printable(value: &str) -> bool {
    !value.is_empty() && !value.chars().any(char::is_control)
}

fn web_url(value: &str) -> bool {
    printable(value) && url::Url::parse(value).is_ok_and(|url| matches!(url.scheme(), "https" | "http"))
}

impl DeviceAuthorization {
    /// The form of the device authorization request: the configuration's scopes and resources
    /// (as a sign-in asks for them) and, when given, Logto's `organization_id`.
    #[must_use]
    pub fn request_params<'a>(
        scope: &'a str,
        resources: &'a [String],
        organization_id: Option<&'a str>,
    ) -> Vec<(&'static str, &'a str)> {
        let mut params = vec![("scope", scope)];
        params.extend(resources.iter().map(|r| ("resource", r.as_str())));
        if let Some(organization_id) = organization_id {
            params.push(("organization_id", organization_id));
        }
        params
    }

    /// Parses the device authorization response received at `now` (seconds since the epoch).
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] for a missing field, a user code or URI that is not
    /// printable, a verification URI that is not an http(s) URL, or an expiry of zero.
    pub fn from_response(body: serde_json::Value, now: u64) -> Result<Self> {
        let response: AuthorizationResponse =
            serde_json::from_value(body).map_err(|e| unexpected(&format!("{e}")))?;
        if !printable(&response.user_code) {
            return Err(unexpected("the user_code is empty or not printable"));
        }
        if !web_url(&response.verification_uri) {
            return Err(unexpected("the verification_uri is not an http(s) URL"));
        }
        if let Some(complete) = &response.verification_uri_complete
            && !web_url(complete)
        {
            return Err(unexpected("the verification_uri_complete is not an http(s) URL"));
        }
        if response.expires_in == 0 {
            return Err(unexpected("expires_in is 0"));
        }
        Ok(Self {
            device_code: response.device_code,
            user_code: response.user_code,
            verification_uri: response.verification_uri,
            verification_uri_complete: response.verification_uri_complete,
            expires_at: now.saturating_add(response.expires_in),
            interval: response.interval.unwrap_or(DEFAULT_INTERVAL).max(1),
        })
    }
}

/// What one poll of the token endpoint answered, short of an error that ends the sign-in.
#[derive(Debug)]
#[non_exhaustive]
pub enum PollOutcome {
    /// The person approved: the tokens.
    Tokens(Box<TokenResponse>),
    /// `authorization_pending`: ask again after the interval.
    Pending,
    /// `slow_down`: ask again after the interval plus [`SLOW_DOWN_STEP`] seconds, from now on.
    SlowDown,
}

impl PollOutcome {
    /// Sorts the token endpoint's answer to a `device_code` grant.
    ///
    /// # Errors
    /// [`Error::DeviceSignIn`] for `access_denied` and `expired_token`; any other error as it is.
    pub fn classify(answer: Result<TokenResponse>) -> Result<Self> {
        match answer {
            Ok(tokens) => Ok(Self::Tokens(Box::new(tokens))),
            Err(Error::OAuth(e)) => match e.error.as_str() {
                "authorization_pending" => Ok(Self::Pending),
                "slow_down" => Ok(Self::SlowDown),
                "access_denied" | "expired_token" => Err(Error::DeviceSignIn(e)),
                _ => Err(Error::OAuth(e)),
            },
            Err(other) => Err(other),
        }
    }
}

/// The polling schedule of one device sign-in: the current interval and the deadline.
#[derive(Debug, Clone)]
pub struct PollSchedule {
    interval: u64,
    expires_at: u64,
}

impl PollSchedule {
    /// The schedule of `authorization`.
    #[must_use]
    pub fn new(authorization: &DeviceAuthorization) -> Self {
        Self {
            interval: authorization.interval.max(1),
            expires_at: authorization.expires_at,
        }
    }

    /// The wait before the next poll.
    #[must_use]
    pub fn delay(&self) -> Duration {
        Duration::from_secs(self.interval)
    }

    /// The current interval in seconds.
    #[must_use]
    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// Takes a `slow_down` into account: every later wait is 5 seconds longer.
    pub fn slow_down(&mut self) {
        self.interval = self.interval.saturating_add(SLOW_DOWN_STEP);
    }

    /// After an `authorization_pending` at `now`: an error once the code has expired.
    ///
    /// # Errors
    /// [`Error::DeviceSignIn`] (`expired_token`) when `now` is past the code's expiry.
    pub fn check_expiry(&self, now: u64) -> Result<()> {
        if now < self.expires_at {
            return Ok(());
        }
        Err(Error::DeviceSignIn(OAuthError {
            endpoint: Endpoint::Token,
            status: 400,
            error: "expired_token".into(),
            description: Some("the device code expired before the sign-in was approved".into()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response() -> serde_json::Value {
        json!({
            "device_code": "dc-secret",
            "user_code": "WDJB-MJHT",
            "verification_uri": "https://tenant.logto.app/oidc/device",
            "verification_uri_complete": "https://tenant.logto.app/oidc/device?user_code=WDJB-MJHT",
            "expires_in": 600,
            "interval": 5
        })
    }

    #[test]
    fn parses_the_authorization_response() {
        let authorization = DeviceAuthorization::from_response(response(), 1000).unwrap();
        assert_eq!(authorization.user_code, "WDJB-MJHT");
        assert_eq!(authorization.expires_at, 1600);
        assert_eq!(authorization.interval, 5);
        assert!(!format!("{authorization:?}").contains("dc-secret"));
        let mut bare = response();
        bare.as_object_mut().unwrap().remove("interval");
        bare.as_object_mut().unwrap().remove("verification_uri_complete");
        let authorization = DeviceAuthorization::from_response(bare, 0).unwrap();
        assert_eq!(authorization.interval, DEFAULT_INTERVAL);
        assert_eq!(authorization.verification_uri_complete, None);
        let mut zero = response();
        zero["interval"] = json!(0);
        assert_eq!(DeviceAuthorization::from_response(zero, 0).unwrap().interval, 1);
    }

    #[test]
    fn refuses_what_must_not_reach_a_terminal() {
        for (field, value) in [
            ("user_code", json!("AB\u{1b}[2J")),
            ("user_code", json!("")),
            ("verification_uri", json!("javascript:alert(1)")),
            ("verification_uri", json!("https://t/\u{7}")),
            ("verification_uri_complete", json!("file:///etc/passwd")),
            ("expires_in", json!(0)),
            ("device_code", json!(null)),
        ] {
            let mut body = response();
            body[field] = value;
            let error = DeviceAuthorization::from_response(body, 0).unwrap_err();
            assert_eq!(error.code(), "response.unexpected", "{field}");
            assert!(!error.to_string().contains("dc-secret"));
        }
    }

    fn refusal(error: &str) -> Result<TokenResponse> {
        Err(Error::OAuth(OAuthError {
            endpoint: Endpoint::Token,
            status: 400,
            error: error.into(),
            description: None,
        }))
    }

    #[test]
    fn classifies_the_poll_answers() {
        assert!(matches!(
            PollOutcome::classify(refusal("authorization_pending")),
            Ok(PollOutcome::Pending)
        ));
        assert!(matches!(
            PollOutcome::classify(refusal("slow_down")),
            Ok(PollOutcome::SlowDown)
        ));
        for ending in ["access_denied", "expired_token"] {
            let error = PollOutcome::classify(refusal(ending)).unwrap_err();
            assert!(matches!(error, Error::DeviceSignIn(_)));
            assert_eq!(error.code(), format!("oauth.{ending}"));
        }
        assert!(matches!(
            PollOutcome::classify(refusal("invalid_grant")),
            Err(Error::OAuth(_))
        ));
    }

    #[test]
    fn the_schedule_backs_off_and_expires() {
        let authorization = DeviceAuthorization::from_response(response(), 1000).unwrap();
        let mut schedule = PollSchedule::new(&authorization);
        assert_eq!(schedule.delay(), Duration::from_secs(5));
        schedule.slow_down();
        schedule.slow_down();
        assert_eq!(schedule.interval(), 15);
        assert!(schedule.check_expiry(1599).is_ok());
        let expired = schedule.check_expiry(1600).unwrap_err();
        assert_eq!(expired.code(), "oauth.expired_token");
    }

    #[test]
    fn request_params() {
        let resources = vec![
            "https://api".to_owned(),
            "urn:logto:resource:organizations".to_owned(),
        ];
        assert_eq!(
            DeviceAuthorization::request_params("openid offline_access", &resources, Some("org-1")),
            [
                ("scope", "openid offline_access"),
                ("resource", "https://api"),
                ("resource", "urn:logto:resource:organizations"),
                ("organization_id", "org-1"),
            ]
        );
    }
}
