//! Logto's REST APIs under `{endpoint}/api`, one generic JSON call for all of them: the
//! Management API (a machine-to-machine app's token, see [`crate::management`]) and the Account
//! API (`/api/my-account`, the signed-in user's access token, see
//! [`LogtoClient::account_api_call`](crate::client::LogtoClient::account_api_call)).
//!
//! An [`ApiCall`] is pure data (method, path segments, query, JSON body, extra headers); it is
//! sent through the one HTTP client ([`crate::http`]), which retries 429 and 5xx answers of
//! idempotent methods as a [`RetryPolicy`] says, and answers an [`ApiResponse`]: the status, the
//! `Total-Number` header of paginated lists, and the JSON body as text.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

use crate::error::{Error, Result};

/// How many times, and how long apart, an idempotent call is retried after a 429 or a 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: never retry).
    pub max_retries: u32,
    /// The first backoff; each retry doubles it (full jitter: a random delay up to it).
    pub base_delay: Duration,
    /// The longest wait between two attempts. A `Retry-After` asking for longer ends the
    /// retries: the error is returned at once.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based), or `None` to stop: no retries left, or a
    /// `Retry-After` beyond [`max_delay`](Self::max_delay). `jitter` is uniform in `[0, 1)`.
    #[must_use]
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, jitter: f64) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        if let Some(wait) = retry_after {
            return (wait <= self.max_delay).then_some(wait);
        }
        let ceiling = self
            .base_delay
            .saturating_mul(1_u32.checked_shl(retry).unwrap_or(u32::MAX))
            .min(self.max_delay);
        Some(ceiling.mul_f64(jitter.clamp(0.0, 1.0)))
    }
}

/// Whether a status is worth another attempt: 429 Too Many Requests, or a server error other
/// than 501 Not Implemented (which another attempt would get again).
#[must_use]
pub fn is_retryable_status(status: u16) -> bool {
    status == 429 || ((500..600).contains(&status) && status != 501)
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delay-seconds, or an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) measured from `now`. `None` when it is neither.
#[must_use]
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_imf_fixdate(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the epoch of an IMF-fixdate, the one date format HTTP senders must use.
fn parse_imf_fixdate(value: &str) -> Option<u64> {
    let (_, rest) = value.split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = 1 + [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as u64;
    let (day, year): (u64, u64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<u64> = time
        .split(':')
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || year < 1970 || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), for years from 1970.
    let (y, mp) = if month > 2 {
        (year, month - 3)
    } else {
        (year - 1, month + 9)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

/// A random number in `[0, 1)` for backoff jitter.
pub(crate) fn jitter() -> f64 {
    let mut bytes = [0_u8; 4];
    match aws_lc_rs::rand::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

/// One call of a Logto REST API.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApiCall {
    /// The HTTP method.
    pub method: reqwest::Method,
    /// The path under `{endpoint}/api`, one entry per segment (each is percent-encoded as one
    /// segment, so a `/` or `..` in an id can never leave it).
    pub segments: Vec<String>,
    /// Query parameters, in order (a name may repeat).
    pub query: Vec<(String, String)>,
    /// The JSON body's text, if any.
    pub body: Option<String>,
    /// Extra request headers (e.g. the Account API's `logto-verification-id`); sent as
    /// sensitive, never logged.
    pub headers: Vec<(String, String)>,
}

impl ApiCall {
    /// A call with no query, body or extra header.
    #[must_use]
    pub fn new(method: reqwest::Method, segments: Vec<String>) -> Self {
        Self {
            method,
            segments,
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
        }
    }

    /// The method from its name (`GET`, `post`, …).
    ///
    /// # Errors
    /// [`Error::Config`] for anything but GET, POST, PUT, PATCH, DELETE and HEAD.
    pub fn method_named(name: &str) -> Result<reqwest::Method> {
        let method = name.to_ascii_uppercase();
        match method.as_str() {
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" => {
                reqwest::Method::from_bytes(method.as_bytes())
                    .map_err(|_| Error::config("invalid HTTP method"))
            }
            _ => Err(Error::config(
                "the method must be GET, POST, PUT, PATCH, DELETE or HEAD",
            )),
        }
    }

    /// Whether the method is idempotent (RFC 9110 §9.2.2), so that a retry cannot do twice
    /// what was meant once.
    #[must_use]
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self.method,
            reqwest::Method::GET | reqwest::Method::HEAD | reqwest::Method::PUT | reqwest::Method::DELETE
        )
    }

    /// `{endpoint}/api/<segments>?<query>`.
    ///
    /// # Errors
    /// [`Error::Config`] for no segment, an empty, `.` or `..` segment, or an endpoint that is
    /// not a base URL.
    pub fn url(&self, endpoint: &str) -> Result<Url> {
        if self.segments.is_empty() {
            return Err(Error::config("an API path needs at least one segment"));
        }
        if let Some(bad) = self
            .segments
            .iter()
            .find(|s| s.is_empty() || *s == "." || *s == "..")
        {
            let shown = if bad.is_empty() {
                "an empty value"
            } else {
                bad.as_str()
            };
            return Err(Error::config(format!(
                "a path parameter must not be {shown}: it would name another resource"
            )));
        }
        let mut url = api_url(endpoint, self.segments.iter().map(String::as_str))?;
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        Ok(url)
    }
}

/// `{endpoint}/api/<segments>`, each segment percent-encoded as one path segment.
pub(crate) fn api_url<'s>(endpoint: &str, segments: impl IntoIterator<Item = &'s str>) -> Result<Url> {
    let mut url = Url::parse(endpoint).map_err(|_| Error::config("endpoint is not a valid URL"))?;
    url.path_segments_mut()
        .map_err(|()| Error::config("endpoint cannot be a base URL"))?
        .pop_if_empty()
        .push("api")
        .extend(segments);
    Ok(url)
}

/// A successful answer of a Logto REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiResponse {
    /// The HTTP status (2xx).
    pub status: u16,
    /// The `Total-Number` header of a paginated list: how many items all pages hold.
    pub total_number: Option<u64>,
    /// The JSON body's text; empty for 204 No Content or any other success without a body.
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Endpoint;

    #[test]
    fn urls_encode_each_segment_and_refuse_traversal() {
        let mut call = ApiCall::new(
            reqwest::Method::GET,
            vec!["users".into(), "a/../b c".into(), "roles".into()],
        );
        call.query = vec![("page".into(), "2".into()), ("search.name".into(), "%a&b".into())];
        assert_eq!(
            call.url("http://127.0.0.1:3001/").unwrap().as_str(),
            "http://127.0.0.1:3001/api/users/a%2F..%2Fb%20c/roles?page=2&search.name=%25a%26b"
        );
        for bad in ["", ".", ".."] {
            let call = ApiCall::new(reqwest::Method::GET, vec!["users".into(), bad.into()]);
            assert!(matches!(call.url("http://127.0.0.1:3001"), Err(Error::Config(_))));
        }
        assert!(matches!(
            ApiCall::new(reqwest::Method::GET, vec![]).url("http://127.0.0.1:3001"),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn only_idempotent_methods_retry() {
        let idempotent =
            |m: &str| ApiCall::new(ApiCall::method_named(m).unwrap(), vec!["x".into()]).is_idempotent();
        assert!(idempotent("get") && idempotent("PUT") && idempotent("DELETE") && idempotent("HEAD"));
        assert!(!idempotent("POST") && !idempotent("PATCH"));
        assert!(matches!(ApiCall::method_named("TRACE"), Err(Error::Config(_))));
        assert!(is_retryable_status(429) && is_retryable_status(500) && is_retryable_status(503));
        assert!(!is_retryable_status(404) && !is_retryable_status(409) && !is_retryable_status(200));
        assert!(!is_retryable_status(501));
    }

    #[test]
    fn backoff_is_bounded_jittered_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        assert_eq!(
            policy.delay(0, None, 0.999_999),
            Some(Duration::from_nanos(99_999_900))
        );
        assert_eq!(policy.delay(1, None, 0.5), Some(Duration::from_millis(100)));
        // Capped at max_delay.
        assert_eq!(policy.delay(2, None, 1.0), Some(Duration::from_millis(300)));
        assert_eq!(policy.delay(0, None, 0.0), Some(Duration::ZERO));
        assert_eq!(policy.delay(3, None, 0.5), None);
        assert_eq!(
            policy.delay(0, Some(Duration::from_millis(200)), 0.0),
            Some(Duration::from_millis(200))
        );
        // Longer than the policy waits: give up at once.
        assert_eq!(policy.delay(0, Some(Duration::from_secs(60)), 0.0), None);
        let never = RetryPolicy {
            max_retries: 0,
            ..policy
        };
        assert_eq!(never.delay(0, None, 0.5), None);
        // Huge retry numbers saturate instead of overflowing.
        let many = RetryPolicy {
            max_retries: u32::MAX,
            ..policy
        };
        assert_eq!(many.delay(200, None, 1.0), Some(Duration::from_millis(300)));
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", UNIX_EPOCH),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Tue, 29 Feb 2028 12:00:00 GMT", UNIX_EPOCH),
            Some(Duration::from_secs(1_835_438_400))
        );
        for bad in [
            "soon",
            "-1",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    /// A local HTTP server that answers each connection with the next scripted response
    /// (`Connection: close`), and counts the requests.
    async fn scripted_server(
        responses: Vec<&'static str>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let served = count.clone();
        tokio::spawn(async move {
            for response in responses {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buffer = [0_u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buffer).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buffer[..n]);
                }
                served.fetch_add(1, Ordering::SeqCst);
                socket.write_all(response.as_bytes()).await.unwrap();
                socket.shutdown().await.unwrap();
            }
        });
        (url, count)
    }

    const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    const RATE_LIMITED: &str = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 0\r\ncontent-type: application/json\r\ncontent-length: 51\r\nconnection: close\r\n\r\n{\"code\":\"guard.too_many_requests\",\"message\":\"Slow\"}";
    const RATE_LIMITED_LONG: &str = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 120\r\ncontent-type: application/json\r\ncontent-length: 51\r\nconnection: close\r\n\r\n{\"code\":\"guard.too_many_requests\",\"message\":\"Slow\"}";
    const USERS: &str = "HTTP/1.1 200 OK\r\ntotal-number: 42\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: 13\r\nconnection: close\r\n\r\n[{\"id\":\"u1\"}]";
    const NO_CONTENT: &str = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
    const CREATED_EMPTY: &str = "HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const CREATED_TEXT: &str = "HTTP/1.1 201 Created\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 7\r\nconnection: close\r\n\r\nCreated";
    const HTML: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 6\r\nconnection: close\r\n\r\n<html>";

    fn http() -> crate::http::HttpClient {
        crate::http::HttpClient::new(Duration::from_secs(5), Duration::from_secs(5)).unwrap()
    }

    fn quick(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
        }
    }

    async fn send(base: &str, method: reqwest::Method, retry: RetryPolicy) -> Result<ApiResponse> {
        let call = ApiCall::new(method, vec!["users".into()]);
        let url = call.url(base).unwrap();
        http()
            .send_api(Endpoint::ManagementApi, &call, url, "token", &retry)
            .await
    }

    #[tokio::test]
    async fn idempotent_calls_retry_429_and_5xx_then_read_the_total() {
        let (base, count) = scripted_server(vec![UNAVAILABLE, RATE_LIMITED, USERS]).await;
        let response = send(&base, reqwest::Method::GET, quick(3)).await.unwrap();
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(
            (response.status, response.total_number, response.body.as_str()),
            (200, Some(42), r#"[{"id":"u1"}]"#)
        );
    }

    #[tokio::test]
    async fn post_and_patch_are_never_retried() {
        for method in [reqwest::Method::POST, reqwest::Method::PATCH] {
            let (base, count) = scripted_server(vec![UNAVAILABLE, USERS]).await;
            let error = send(&base, method, quick(3)).await.unwrap_err();
            assert!(
                matches!(error, Error::UnexpectedResponse { status: 503, .. }),
                "{error:?}"
            );
            assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
        }
    }

    #[tokio::test]
    async fn retries_are_bounded_and_a_long_retry_after_is_not_waited_for() {
        let (base, count) = scripted_server(vec![UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, USERS]).await;
        let error = send(&base, reqwest::Method::DELETE, quick(2)).await.unwrap_err();
        assert!(
            matches!(error, Error::UnexpectedResponse { status: 503, .. }),
            "{error:?}"
        );
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);

        let (base, count) = scripted_server(vec![RATE_LIMITED_LONG, USERS]).await;
        let started = std::time::Instant::now();
        let error = send(&base, reqwest::Method::GET, quick(3)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(error.code(), "api.guard.too_many_requests");
        assert!(matches!(
            error,
            Error::Api(crate::error::ApiError { status: 429, .. })
        ));
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn no_content_is_an_empty_body() {
        let (base, _) = scripted_server(vec![NO_CONTENT, CREATED_EMPTY, CREATED_TEXT, HTML]).await;
        let response = send(&base, reqwest::Method::DELETE, quick(0)).await.unwrap();
        assert_eq!(
            (response.status, response.total_number, response.body.as_str()),
            (204, None, "")
        );
        for _ in 0..2 {
            let response = send(&base, reqwest::Method::POST, quick(0)).await.unwrap();
            assert_eq!((response.status, response.body.as_str()), (201, ""));
        }
        // Anything else that is not JSON is still an unexpected answer.
        let error = send(&base, reqwest::Method::GET, quick(0)).await.unwrap_err();
        assert!(
            matches!(error, Error::UnexpectedResponse { status: 200, .. }),
            "{error:?}"
        );
    }
}
