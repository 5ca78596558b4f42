//! The one HTTP client (rustls on aws-lc-rs, pooled connections, timeouts, no redirects), the
//! transport policy every URL it is given must pass (`https`, or plain `http` to this machine),
//! and the classification of every response: success JSON (or 204 No Content), OAuth error,
//! Logto's `{code, message}` error, or an unexpected answer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER,
};
use serde::de::DeserializeOwned;
use url::{Url, form_urlencoded};

use crate::api::{ApiCall, ApiResponse, RetryPolicy, is_retryable_status, jitter, parse_retry_after};
use crate::error::{ApiError, Endpoint, Error, OAuthError, Result};
use crate::process::PerProcess;
use crate::secret::ClientSecret;

/// How long an idle pooled connection is kept for reuse.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Largest response body read from the provider.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Whether `url`'s host is this machine: `localhost` (and `*.localhost`), `127.0.0.0/8`, `[::1]`.
#[must_use]
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `url` may be used: `https`, or `http` to a loopback host, or any `http` when
/// `allow_insecure_http` says so.
#[must_use]
pub fn transport_allowed(url: &Url, allow_insecure_http: bool) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => allow_insecure_http || is_loopback(url),
        _ => false,
    }
}

/// How a request to the token endpoint authenticates the client.
#[derive(Debug, Clone, Copy)]
pub enum ClientAuth<'a> {
    /// A public client: `client_id` in the form, no secret.
    None {
        /// The client id.
        client_id: &'a str,
    },
    /// `client_secret_basic`: an `Authorization: Basic` header, no `client_id` in the form.
    Basic {
        /// The client id.
        client_id: &'a str,
        /// The client secret.
        secret: &'a ClientSecret,
    },
}

impl<'a> ClientAuth<'a> {
    /// Basic authentication when a secret is given, otherwise a public client.
    #[must_use]
    pub fn for_client(client_id: &'a str, secret: Option<&'a ClientSecret>) -> Self {
        match secret {
            Some(secret) => Self::Basic { client_id, secret },
            None => Self::None { client_id },
        }
    }
}

/// A pooled HTTP client with the configured timeouts.
///
/// The pool belongs to the process that built it: a forked child builds its own on first use
/// (see [`crate::process`]).
#[derive(Debug, Clone)]
pub struct HttpClient {
    pool: Arc<PerProcess<reqwest::Client>>,
    timeout: Duration,
    connect_timeout: Duration,
    allow_insecure_http: bool,
}

impl HttpClient {
    /// Builds the client: rustls (aws-lc-rs), redirects never followed, the given timeouts.
    ///
    /// # Errors
    /// [`Error::Config`] if the TLS backend cannot be initialised.
    pub fn new(request_timeout: Duration, connect_timeout: Duration) -> Result<Self> {
        let http = Self {
            pool: Arc::new(PerProcess::new()),
            timeout: request_timeout,
            connect_timeout,
            allow_insecure_http: false,
        };
        http.client()?;
        Ok(http)
    }

    /// This process's pooled `reqwest` client.
    fn client(&self) -> Result<Arc<reqwest::Client>> {
        self.pool.try_get(|_| {
            reqwest::Client::builder()
                .user_agent(concat!("logto-rs/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                .timeout(self.timeout)
                .connect_timeout(self.connect_timeout)
                // Below Node's 5 s keep-alive (Logto runs on Node): a connection the server is
                // closing, or has closed without the pool noticing, is never reused.
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .build()
                .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))
        })
    }

    /// Whether plain `http://` may be used to hosts other than loopback (off by default: every
    /// request to such a URL is refused before it is sent).
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Whether plain `http://` to non-loopback hosts is allowed.
    #[must_use]
    pub fn allows_insecure_http(&self) -> bool {
        self.allow_insecure_http
    }

    /// `GET url` and parse a JSON success body.
    ///
    /// # Errors
    /// Network/timeout errors, OAuth errors, or [`Error::UnexpectedResponse`].
    pub async fn get_json<T: DeserializeOwned>(&self, endpoint: Endpoint, url: &str) -> Result<T> {
        let request = self.client()?.get(url).header(ACCEPT, "application/json");
        self.send(endpoint, request).await
    }

    /// `GET url` with a bearer token and parse a JSON success body.
    ///
    /// # Errors
    /// As [`get_json`](Self::get_json).
    pub async fn get_json_bearer<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        url: &str,
        token: &str,
    ) -> Result<T> {
        let request = self
            .client()?
            .get(url)
            .header(ACCEPT, "application/json")
            .bearer_auth(token);
        self.send(endpoint, request).await
    }

    /// `method url` with a bearer token and, when given, a JSON body; parses a JSON success body
    /// (`()` reads a 204 No Content). Logto's `{code, message}` errors become [`Error::Api`].
    ///
    /// # Errors
    /// As [`get_json`](Self::get_json).
    pub async fn send_json_bearer<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        method: reqwest::Method,
        url: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        let mut request = self
            .client()?
            .request(method, url)
            .header(ACCEPT, "application/json")
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(endpoint, request).await
    }

    /// `POST url` with an `application/x-www-form-urlencoded` body and client authentication.
    ///
    /// # Errors
    /// As [`get_json`](Self::get_json).
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        url: &str,
        params: &[(&str, &str)],
        auth: ClientAuth<'_>,
    ) -> Result<T> {
        let mut request = self.client()?.post(url).header(ACCEPT, "application/json");
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            match auth {
                ClientAuth::None { client_id } => {
                    form.append_pair("client_id", client_id);
                }
                ClientAuth::Basic { client_id, secret } => {
                    request = request.header(AUTHORIZATION, basic_auth_header(client_id, secret)?);
                }
            }
            for (name, value) in params {
                form.append_pair(name, value);
            }
            form.finish()
        };
        let request = request
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        self.send(endpoint, request).await
    }

    /// `POST url` with a form body whose response body is ignored (revocation).
    ///
    /// # Errors
    /// Network/timeout errors and non-2xx statuses.
    pub async fn post_form_no_content(
        &self,
        endpoint: Endpoint,
        url: &str,
        params: &[(&str, &str)],
        auth: ClientAuth<'_>,
    ) -> Result<()> {
        let _: serde_json::Value = match self.post_form(endpoint, url, params, auth).await {
            Ok(value) => value,
            // Revocation answers 200 with an empty body.
            Err(Error::UnexpectedResponse { status, .. }) if (200..300).contains(&status) => {
                serde_json::Value::Null
            }
            Err(e) => return Err(e),
        };
        Ok(())
    }

    async fn send<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        request: reqwest::RequestBuilder,
    ) -> Result<T> {
        Ok(self.send_with_max_age(endpoint, request).await?.0)
    }

    /// `GET url` and parse a JSON success body, with the response's `Cache-Control: max-age`
    /// (`None` when absent, or when `no-store`/`no-cache` say not to keep it: `Some(0)`).
    ///
    /// # Errors
    /// As [`get_json`](Self::get_json).
    pub async fn get_json_cacheable<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        url: &str,
    ) -> Result<(T, Option<Duration>)> {
        let request = self.client()?.get(url).header(ACCEPT, "application/json");
        self.send_with_max_age(endpoint, request).await
    }

    async fn send_with_max_age<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        request: reqwest::RequestBuilder,
    ) -> Result<(T, Option<Duration>)> {
        let request = request.build().map_err(|e| self.transport_error(endpoint, e))?;
        let answer = self.fetch(endpoint, request).await?;
        let max_age = answer
            .headers
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .fold(None, |found, value| found.or(cache_max_age(value)));
        Ok((answer.classify(endpoint)?, max_age))
    }

    /// One call of a Logto REST API with a bearer token (see [`crate::api`]): 429 and 5xx
    /// answers of an idempotent method are retried as `retry` says (honouring `Retry-After`);
    /// Logto's `{code, message}` errors become [`Error::Api`].
    ///
    /// # Errors
    /// As [`get_json`](Self::get_json), after the last attempt.
    pub async fn send_api(
        &self,
        endpoint: Endpoint,
        call: &ApiCall,
        url: url::Url,
        token: &str,
        retry: &RetryPolicy,
    ) -> Result<ApiResponse> {
        let mut request = self
            .client()?
            .request(call.method.clone(), url)
            .header(ACCEPT, "application/json")
            .bearer_auth(token);
        for (name, value) in &call.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::config("an extra header has an invalid name"))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| Error::config("an extra header has an invalid value"))?;
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let request = request.build().map_err(|e| self.transport_error(endpoint, e))?;
        let mut retries = 0;
        let answer = loop {
            let attempt = request
                .try_clone()
                .ok_or_else(|| Error::config("the request cannot be repeated"))?;
            let answer = self.fetch(endpoint, attempt).await?;
            let wait = (call.is_idempotent() && is_retryable_status(answer.status))
                .then(|| {
                    let retry_after = answer
                        .headers
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    retry.delay(retries, retry_after, jitter())
                })
                .flatten();
            match wait {
                Some(wait) => {
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
                None => break answer,
            }
        };
        let total_number = answer
            .headers
            .get("total-number")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let status = answer.status;
        // No content: 204, a success with an empty body, or with Koa's status text (Logto 1.37
        // answers some 201s with `text/plain` "Created").
        let body = if (200..300).contains(&status) && (answer.body.is_empty() || answer.is_plain_text()) {
            String::new()
        } else {
            answer
                .classify::<Box<serde_json::value::RawValue>>(endpoint)?
                .get()
                .to_owned()
        };
        Ok(ApiResponse {
            status,
            total_number,
            body,
        })
    }

    /// Sends `request` and reads the answer (at most [`MAX_BODY_BYTES`] of body).
    async fn fetch(&self, endpoint: Endpoint, request: reqwest::Request) -> Result<Answer> {
        if !transport_allowed(request.url(), self.allow_insecure_http) {
            // Defence in depth: configuration and discovery already refuse such URLs.
            return Err(Error::config(format!(
                "refusing to send a {endpoint} request over plain http to a host that is not \
                 loopback (set allowInsecureHttp for development)"
            )));
        }
        let mut response = self
            .client()?
            .execute(request)
            .await
            .map_err(|e| self.transport_error(endpoint, e))?;
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(unexpected(endpoint, status, "the response body is too large"));
        }
        // Read chunk by chunk and stop at the limit: a chunked (or lying) body is never buffered
        // beyond it.
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(endpoint, e))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(unexpected(endpoint, status, "the response body is too large"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers: std::mem::take(response.headers_mut()),
            body,
        })
    }

    fn transport_error(&self, endpoint: Endpoint, error: reqwest::Error) -> Error {
        if error.is_timeout() {
            return Error::Timeout {
                endpoint,
                timeout: self.timeout,
            };
        }
        let message = if error.is_connect() {
            "could not connect"
        } else if error.is_body() || error.is_decode() {
            "could not read the response"
        } else {
            "could not send the request"
        };
        // reqwest's messages include the URL, never a body or header, so the source is safe to keep.
        Error::Network {
            endpoint,
            message: message.into(),
            source: Some(Box::new(error.without_url())),
        }
    }
}

/// A response read in full: status, headers, body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    }

    fn is_plain_text(&self) -> bool {
        self.content_type().starts_with("text/plain")
    }

    fn classify<T: DeserializeOwned>(&self, endpoint: Endpoint) -> Result<T> {
        classify(endpoint, self.status, &self.content_type(), &self.body)
    }
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
fn basic_auth_header(client_id: &str, secret: &ClientSecret) -> Result<HeaderValue> {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = format!("{}:{}", encode(client_id), encode(secret.secret()));
    let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(credentials)))
        .map_err(|_| Error::config("appId or appSecret cannot be sent in a header"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The freshness lifetime a `Cache-Control` value gives (RFC 9111 §5.2.2): `max-age=N`, or zero
/// for `no-store`/`no-cache`; `None` when it says neither.
pub(crate) fn cache_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, argument) = directive.split_once('=').unwrap_or((directive, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" => return Some(Duration::ZERO),
            "max-age" => {
                max_age = argument
                    .trim()
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs)
                    .or(max_age);
            }
            _ => {}
        }
    }
    max_age
}

fn unexpected(endpoint: Endpoint, status: u16, reason: impl Into<String>) -> Error {
    Error::UnexpectedResponse {
        endpoint,
        status,
        reason: reason.into(),
    }
}

fn is_json(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime == "application/json" || mime.ends_with("+json")
}

/// Turns a status, content type and body into the parsed success value or the right error.
/// Pure, so every branch is unit-tested without a server.
pub(crate) fn classify<T: DeserializeOwned>(
    endpoint: Endpoint,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<T> {
    let success = (200..300).contains(&status);
    if status == 204 {
        // No Content: only a caller that expects nothing (`()`) accepts it.
        return serde_json::from_slice(b"null")
            .map_err(|_| unexpected(endpoint, status, "expected JSON, got no content"));
    }
    let document = matches!(endpoint, Endpoint::Discovery | Endpoint::Jwks);
    // Logto's REST APIs answer 501 Not Implemented for what this Logto is not set up to do (no
    // email connector): a definite refusal with Logto's code, not an outage.
    let not_implemented = status == 501 && matches!(endpoint, Endpoint::ManagementApi | Endpoint::AccountApi);
    if (!success && document) || (status >= 500 && !not_implemented) {
        // Discovery and the JWKS are plain documents, not OAuth endpoints: any error answer from
        // them is the provider failing. So is a 5xx from any endpoint, an OAuth-looking body
        // (`server_error`) included: OAuth's refusals are 4xx, and a failing provider must never
        // read as a refusal (a refusal may end the session; an outage never does).
        let reason = if status >= 500 {
            "the provider is failing (server error)"
        } else {
            "the provider refused the request"
        };
        return Err(unexpected(endpoint, status, reason));
    }
    if !is_json(content_type) {
        let what = if content_type.starts_with("text/html") {
            "HTML"
        } else {
            "a non-JSON body"
        };
        let reason = if success {
            format!("expected JSON, got {what}")
        } else {
            format!("error status with {what}")
        };
        return Err(unexpected(endpoint, status, reason));
    }
    if success {
        let deserializer = &mut serde_json::Deserializer::from_slice(body);
        return serde_path_to_error(deserializer).map_err(|reason| unexpected(endpoint, status, reason));
    }
    // OAuth's `{error, error_description}` (Logto's OIDC routes add `code` and `message` to it),
    // or Logto's own `{code, message}`.
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: Option<String>,
        error_description: Option<String>,
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            error: Some(error),
            error_description,
            ..
        }) => Err(Error::OAuth(OAuthError {
            endpoint,
            status,
            error,
            description: error_description,
        })),
        Ok(ErrorBody {
            code: Some(code),
            message,
            ..
        }) => Err(Error::Api(ApiError {
            endpoint,
            status,
            code,
            message: message.unwrap_or_default(),
        })),
        _ => Err(unexpected(
            endpoint,
            status,
            "error status without an OAuth or Logto error body",
        )),
    }
}

/// Deserialises and, on failure, names the JSON path and the problem (never the value).
fn serde_path_to_error<'de, T: DeserializeOwned>(
    deserializer: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> std::result::Result<T, String> {
    T::deserialize(deserializer).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "invalid JSON",
            serde_json::error::Category::Data => "a field is missing or has the wrong type",
            serde_json::error::Category::Io => "could not read the body",
        };
        format!("{kind} at line {} column {}", e.line(), e.column())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Tokens {
        access_token: String,
    }

    #[test]
    fn classification() {
        let ok: Tokens = classify(
            Endpoint::Token,
            200,
            "application/json; charset=utf-8",
            br#"{"access_token":"a"}"#,
        )
        .unwrap();
        assert_eq!(ok.access_token, "a");

        let html = classify::<Tokens>(Endpoint::Token, 200, "text/html", b"<html>").unwrap_err();
        assert!(
            matches!(html, Error::UnexpectedResponse { status: 200, ref reason, .. } if reason.contains("HTML"))
        );

        let e500 = classify::<Tokens>(Endpoint::Token, 500, "text/plain", b"oops").unwrap_err();
        assert!(matches!(e500, Error::UnexpectedResponse { status: 500, .. }));

        let garbage = classify::<Tokens>(Endpoint::Token, 200, "application/json", b"{not json").unwrap_err();
        assert!(
            matches!(garbage, Error::UnexpectedResponse { ref reason, .. } if reason.contains("invalid JSON"))
        );

        let missing = classify::<Tokens>(Endpoint::Token, 200, "application/json", b"{}").unwrap_err();
        assert!(
            matches!(missing, Error::UnexpectedResponse { ref reason, .. } if reason.contains("missing"))
        );

        let oauth = classify::<Tokens>(
            Endpoint::Token,
            400,
            "application/json",
            br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(oauth, Error::OAuth(OAuthError { status: 400, ref error, .. }) if error == "invalid_grant")
        );
    }

    #[test]
    fn logto_error_bodies_and_no_content() {
        // The OIDC routes send both shapes at once: the OAuth error wins.
        let oidc = classify::<Tokens>(
            Endpoint::Token,
            400,
            "application/json",
            br#"{"code":"oidc.invalid_grant","message":"m","error":"invalid_grant","error_description":"d"}"#,
        )
        .unwrap_err();
        assert!(matches!(oidc, Error::OAuth(OAuthError { ref error, .. }) if error == "invalid_grant"));

        let api = classify::<Tokens>(
            Endpoint::ManagementApi,
            422,
            "application/json; charset=utf-8",
            br#"{"code":"entity.unique_integrity_violation","message":"The name is already in use."}"#,
        )
        .unwrap_err();
        assert_eq!(api.code(), "api.entity.unique_integrity_violation", "{api}");
        assert!(
            matches!(api, Error::Api(ApiError { status: 422, ref message, .. }) if message == "The name is already in use.")
        );

        let neither =
            classify::<Tokens>(Endpoint::ManagementApi, 404, "application/json", br#"{"x":1}"#).unwrap_err();
        assert!(matches!(neither, Error::UnexpectedResponse { status: 404, .. }));

        let deleted: () = classify(Endpoint::ManagementApi, 204, "", b"").unwrap();
        assert_eq!(deleted, ());
        let missing = classify::<Tokens>(Endpoint::ManagementApi, 204, "", b"").unwrap_err();
        assert!(
            matches!(missing, Error::UnexpectedResponse { status: 204, ref reason, .. } if reason.contains("no content"))
        );
    }

    #[test]
    fn server_errors_are_the_provider_failing_whatever_the_body() {
        for endpoint in [
            Endpoint::Discovery,
            Endpoint::Jwks,
            Endpoint::Token,
            Endpoint::Revocation,
            Endpoint::UserInfo,
            Endpoint::Introspection,
            Endpoint::DeviceAuthorization,
            Endpoint::ManagementApi,
        ] {
            let error = classify::<Tokens>(
                endpoint,
                503,
                "application/json",
                br#"{"error":"server_error","error_description":"oops"}"#,
            )
            .unwrap_err();
            assert!(
                matches!(error, Error::UnexpectedResponse { status: 503, ref reason, .. } if reason.contains("failing")),
                "{error:?}"
            );
        }
    }

    #[test]
    fn a_rest_api_501_is_logtos_refusal_with_its_code() {
        let body = br#"{"code":"connector.not_found","message":"Cannot find connector."}"#;
        for endpoint in [Endpoint::ManagementApi, Endpoint::AccountApi] {
            let error = classify::<Tokens>(endpoint, 501, "application/json", body).unwrap_err();
            assert_eq!(error.code(), "api.connector.not_found", "{error:?}");
        }
        let error = classify::<Tokens>(Endpoint::Token, 501, "application/json", body).unwrap_err();
        assert!(
            matches!(error, Error::UnexpectedResponse { status: 501, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn cache_control_max_age() {
        assert_eq!(
            cache_max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(cache_max_age("max-age=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(cache_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_max_age("max-age=60, no-cache"), Some(Duration::ZERO));
        assert_eq!(cache_max_age("public"), None);
        assert_eq!(cache_max_age("max-age=-1"), None);
        assert_eq!(cache_max_age("max-age=99999999999999999999999"), None);
    }

    #[test]
    fn basic_auth_is_form_encoded() {
        let header = basic_auth_header("my app", &ClientSecret::new("s:e+c")).unwrap();
        let encoded = header
            .to_str()
            .unwrap()
            .strip_prefix("Basic ")
            .unwrap()
            .to_owned();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "my+app:s%3Ae%2Bc");
        assert!(header.is_sensitive());
    }
}
