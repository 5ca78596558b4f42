//! [`AccessTokenVerifier`]: verifies the bearer tokens that reach an API (a resource server).
//!
//! Logto issues JWT access tokens (RFC 9068, `typ: at+jwt`) for API resources and organizations.
//! A verifier discovers the tenant's issuer once, keeps the parsed keys for the JWKS answer's
//! `max-age`, refetches the JWKS when a token names an unknown `kid` (rate-limited, see
//! [`JwksCache`]), and checks each token: `typ`, `crit`, the signature (asymmetric allow-list),
//! `iss`, `aud`, `sub`, `exp`, `iat`, `nbf` (with leeway), the types of the claims
//! `AccessTokenClaims` declares, then the required organization and scopes. A failure is an
//! [`Error::AccessTokenRejected`] naming the failed check; [`Challenge`] turns it into the HTTP
//! status and the RFC 6750 `WWW-Authenticate` value to answer with.
//!
//! Verified tokens are cached (see [`CacheLimits`], on by default with
//! [`DEFAULT_CACHE_LIMITS`]): a repeated token skips the signature check, while `exp`, `iat`,
//! `nbf` and the call's audience, organization and scopes are checked on every use, and the
//! cache is emptied when the key set changes, so every answer is the one an uncached verifier
//! gives. Tokens with an actor (`act`, impersonation) are accepted unless
//! [`allow_impersonation`](AccessTokenVerifierBuilder::allow_impersonation) says otherwise.
//! With [`introspection`](AccessTokenVerifierBuilder::introspection) configured, opaque tokens
//! (issued for no API resource) are verified at the provider's introspection endpoint.
//!
//! With the keys cached, verification is synchronous and does no I/O
//! ([`verify_cached`](AccessTokenVerifier::verify_cached),
//! [`verify_many_cached`](AccessTokenVerifier::verify_many_cached), which spreads a batch over
//! the machine's cores). [`verify`](AccessTokenVerifier::verify) does the same and loads the keys
//! when they are needed.
//!
//! ```no_run
//! use logto_rs::verifier::{AccessTokenVerifier, Requirements};
//!
//! # async fn run(token: &str) -> logto_rs::Result<()> {
//! let verifier = AccessTokenVerifier::builder("https://tenant.logto.app", Some("https://api.example.com".into()))
//!     .scopes(vec!["read:products".into()])
//!     .build()?;
//! let verified = verifier.verify(token, &Requirements::default()).await?;
//! assert!(verified.claims().subject().is_some());
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::config::{ORGANIZATION_AUDIENCE_PREFIX, Settings, parse_endpoint};
use crate::discovery::{DiscoveryCache, ProviderMetadata};
use crate::error::{Error, Result, ValidationError};
use crate::http::HttpClient;
use crate::jwks::{JwksCache, KeySet};
use crate::jwt::{self, ClaimChecks, RegisteredClaims, UnverifiedJwt};
use crate::secret::ClientSecret;

mod cache;
mod introspection;

pub use cache::CacheLimits;
use cache::TokenCache;
pub use introspection::IntrospectionLimits;
use introspection::{Introspected, Introspection, is_opaque};

/// The verified-token cache's default bounds: 4096 entries (a few MB), each used for at most
/// five minutes, tokens up to 4 KiB (Logto's are about 1 KiB).
pub const DEFAULT_CACHE_LIMITS: CacheLimits = CacheLimits {
    max_entries: 4096,
    max_age: Duration::from_secs(300),
    max_token_bytes: 4096,
};

/// How long an introspection answer is reused by default (never past the token's `exp`): a
/// revoked opaque token is refused at most this late.
pub const DEFAULT_INTROSPECTION_TTL: Duration = Duration::from_secs(30);

/// How much introspection a verifier may cause by default: inactive answers reused for a minute,
/// at most 50 introspection requests a second (in bursts of 50).
pub const DEFAULT_INTROSPECTION_LIMITS: IntrospectionLimits = IntrospectionLimits {
    negative_ttl: Duration::from_secs(60),
    calls_per_second: Some(50.0),
};

/// Fewest tokens worth a thread of their own in a batch (a thread costs tens of microseconds to
/// start; one signature check costs 20–250 µs).
const MIN_TOKENS_PER_THREAD: usize = 8;

const NO_AUDIENCE: &str = "a verifier without an audience (organization tokens) needs an organization id";

/// What one token must satisfy: the shared contract of [`AccessTokenVerifier`] and
/// [`LogtoClient::verify_jwt`](crate::LogtoClient::verify_jwt).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expectations<'a> {
    /// Required `iss`.
    pub issuer: &'a str,
    /// `aud` must be, or contain, this.
    pub audience: &'a str,
    /// Scopes the `scope` claim must all contain (two lists: configured and per call).
    pub scopes: [&'a [String]; 2],
    /// The organization the token must be for.
    pub organization_id: Option<&'a str>,
    /// Whether the header's `typ` must be `at+jwt`.
    pub access_token_type: bool,
    /// The current time (seconds since the epoch).
    pub now: u64,
    /// Tolerated clock skew in seconds.
    pub leeway: u64,
}

impl Expectations<'_> {
    /// The checks that need only the header, made before any key lookup (so that a token that
    /// fails them never causes a JWKS fetch).
    fn check_header(&self, jwt: &UnverifiedJwt<'_>) -> Result<(), ValidationError> {
        if self.access_token_type && !jwt::is_access_token_type(jwt.typ.as_deref()) {
            return Err(ValidationError::TokenType);
        }
        Ok(())
    }

    /// The rest, in order: key, signature, registered claims, organization, scopes.
    fn check(&self, jwt: &UnverifiedJwt<'_>, keys: &KeySet) -> Result<(), ValidationError> {
        self.check_token(jwt, keys)?;
        self.check_access(&jwt.claims)
    }

    /// Key, signature, registered claims and the types of the declared claims.
    fn check_token(&self, jwt: &UnverifiedJwt<'_>, keys: &KeySet) -> Result<(), ValidationError> {
        let key = keys
            .find(jwt.kid.as_deref(), jwt.alg)
            .ok_or(ValidationError::UnknownKey)?;
        jwt.verify_signature(key)?;
        self.check_claims(&jwt.claims, true)?;
        jwt::check_access_token_claim_types(&jwt.claims)
    }

    /// The registered claims (`iss`, `aud`, `sub`, `exp`, `iat`, `nbf`); the time-dependent
    /// checks, made again on every use of a cached token.
    fn check_claims(&self, claims: &RegisteredClaims, require_audience: bool) -> Result<(), ValidationError> {
        let checks = ClaimChecks {
            issuer: self.issuer,
            audience: self.audience,
            authorized_party: None,
            nonce: None,
            now: self.now,
            leeway: self.leeway,
        };
        jwt::check_claims_with(claims, &checks, require_audience)
    }

    /// The call's requirements: organization, then scopes.
    fn check_access(&self, claims: &RegisteredClaims) -> Result<(), ValidationError> {
        if let Some(required) = self.organization_id
            && token_organization(claims) != Some(required)
        {
            return Err(ValidationError::Organization);
        }
        self.check_scopes(claims)
    }

    fn required_scopes(&self) -> impl Iterator<Item = &str> {
        self.scopes
            .iter()
            .flat_map(|list| list.iter().map(String::as_str))
    }

    fn check_scopes(&self, claims: &RegisteredClaims) -> Result<(), ValidationError> {
        let granted = claims.scope().unwrap_or_default();
        let has = |scope: &str| granted.split_ascii_whitespace().any(|g| g == scope);
        if self.required_scopes().all(has) {
            return Ok(());
        }
        let mut required: Vec<&str> = Vec::new();
        for scope in self.required_scopes() {
            if !required.contains(&scope) {
                required.push(scope);
            }
        }
        Err(ValidationError::Scope(required.join(" ")))
    }
}

/// The organization a token is for: its `organization_id` claim (an organization-scoped API
/// resource token), or the id in its `urn:logto:organization:<id>` audience (an organization
/// token).
fn token_organization(claims: &RegisteredClaims) -> Option<&str> {
    claims.organization_id().or_else(|| {
        claims
            .audiences()
            .ok()?
            .into_iter()
            .find_map(|aud| aud.strip_prefix(ORGANIZATION_AUDIENCE_PREFIX))
    })
}

/// Verifies a token issued by the provider described by `metadata`: parse, header checks, the
/// key for its `kid` (fetching the JWKS when needed), then [`Expectations::check`]. The single
/// verification path of both [`LogtoClient::verify_jwt`](crate::LogtoClient::verify_jwt) and
/// [`AccessTokenVerifier::verify`].
///
/// # Errors
/// [`Error::TokenValidation`] naming the failed check; JWKS fetch errors.
pub(crate) async fn verify_with_provider<'t>(
    http: &HttpClient,
    jwks: &JwksCache,
    metadata: &ProviderMetadata,
    token: &'t str,
    expectations: &Expectations<'_>,
) -> Result<UnverifiedJwt<'t>> {
    let jwt = jwt::parse(token)?;
    expectations.check_header(&jwt)?;
    let keys = jwks
        .keys_for(http, &metadata.jwks_uri, jwt.kid.as_deref(), jwt.alg)
        .await?;
    expectations.check(&jwt, &keys)?;
    Ok(jwt)
}

/// What a verified token's checks established, shared by the answers and the cache.
#[derive(Debug)]
pub(crate) struct Verified {
    claims: RegisteredClaims,
    payload: String,
    /// The [`KeySet::generation`] the signature was verified with (0: not a JWT).
    key_generation: u64,
}

/// A verified access token: its registered claims and its whole payload as JSON text.
#[derive(Debug, Clone)]
pub struct VerifiedAccessToken {
    verified: Arc<Verified>,
}

impl VerifiedAccessToken {
    /// The registered claims the checks read (`sub`, `scope`, `organization_id`, audiences).
    #[must_use]
    pub fn claims(&self) -> &RegisteredClaims {
        &self.verified.claims
    }

    /// Every claim, as the JSON text of the payload.
    #[must_use]
    pub fn payload(&self) -> &str {
        &self.verified.payload
    }

    /// The payload's JSON text, taken out.
    #[must_use]
    pub fn into_payload(self) -> String {
        Arc::try_unwrap(self.verified).map_or_else(|shared| shared.payload.clone(), |v| v.payload)
    }
}

/// The claim that holds a token's roles unless a call names another: Logto puts none in access
/// tokens by itself, and a custom JWT claims script usually adds them under this name.
pub const DEFAULT_ROLES_CLAIM: &str = "roles";

/// What a call requires beyond the verifier's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Requirements<'a> {
    /// More scopes the token must have (added to the configured ones).
    pub scopes: &'a [String],
    /// The organization the token must be for (overrides the configured one). For a verifier
    /// without an audience (organization tokens) it also sets the audience,
    /// `urn:logto:organization:<id>`.
    pub organization_id: Option<&'a str>,
    /// Roles the token must all hold in its [`roles_claim`](Self::roles_claim).
    pub roles: &'a [String],
    /// The claim holding the token's roles (a list of names); a claim that is absent or not a
    /// list holds none.
    pub roles_claim: &'a str,
}

impl Default for Requirements<'_> {
    fn default() -> Self {
        Self {
            scopes: &[],
            organization_id: None,
            roles: &[],
            roles_claim: DEFAULT_ROLES_CLAIM,
        }
    }
}

impl Requirements<'_> {
    /// The roles check, on a verified token's payload: the required roles the roles claim lacks
    /// make a [`ValidationError::Roles`]. The payload is read only when roles are required.
    fn check_roles(&self, payload: &str) -> Result<(), ValidationError> {
        if self.roles.is_empty() {
            return Ok(());
        }
        let held: Vec<String> = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(payload)
            .ok()
            .and_then(|mut claims| claims.remove(self.roles_claim))
            .and_then(|value| match value {
                serde_json::Value::Array(items) => Some(
                    items
                        .into_iter()
                        .filter_map(|item| match item {
                            serde_json::Value::String(role) => Some(role),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default();
        let missing: Vec<&str> = self
            .roles
            .iter()
            .map(String::as_str)
            .filter(|role| !held.iter().any(|h| h == role))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ValidationError::Roles(missing.join(" ")))
        }
    }
}

/// How an API answers a rejected token (RFC 6750 §3): the HTTP status, the `error` code and the
/// `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// 401 for a missing or invalid token, 403 for a valid token without the required scope,
    /// organization or role.
    pub status: u16,
    /// `invalid_token` or `insufficient_scope`.
    pub error: &'static str,
    /// The failed check in words (the [`ValidationError`]'s message, reduced to the characters
    /// RFC 6750 allows in `error_description`). Never contains the token.
    pub description: String,
    /// For a missing scope, the scopes the resource requires (space-separated).
    pub scope: Option<String>,
    /// The request carried no token: the challenge is a bare `Bearer`, without error or
    /// description (RFC 6750 §3.1).
    pub bare: bool,
}

/// The characters RFC 6750 §3 allows in `error_description` (and in `scope` values besides
/// the space): printable ASCII except `"` and `\`.
fn quotable(c: char) -> bool {
    matches!(c, ' '..='~') && c != '"' && c != '\\'
}

impl Challenge {
    /// The challenge for a rejected token.
    #[must_use]
    pub fn new(error: &ValidationError) -> Self {
        let description = error
            .to_string()
            .chars()
            .map(|c| if c == '"' { '\'' } else { c })
            .filter(|c| quotable(*c))
            .collect();
        match error {
            ValidationError::Scope(required) => Self {
                status: 403,
                error: "insufficient_scope",
                description,
                scope: Some(required.chars().filter(|c| quotable(*c)).collect()),
                bare: false,
            },
            ValidationError::Organization | ValidationError::Roles(_) => Self {
                status: 403,
                error: "insufficient_scope",
                description,
                scope: None,
                bare: false,
            },
            _ => Self {
                status: 401,
                error: "invalid_token",
                description,
                scope: None,
                bare: matches!(error, ValidationError::MissingToken),
            },
        }
    }

    /// The `WWW-Authenticate` header value, e.g.
    /// `Bearer error="invalid_token", error_description="the token has expired (exp)"`, or a
    /// bare `Bearer` when the request had no token.
    #[must_use]
    pub fn www_authenticate(&self) -> String {
        if self.bare {
            return "Bearer".to_owned();
        }
        let mut value = format!(
            "Bearer error=\"{}\", error_description=\"{}\"",
            self.error, self.description
        );
        if let Some(scope) = &self.scope {
            value.push_str(&format!(", scope=\"{scope}\""));
        }
        value
    }
}

/// Builder of an [`AccessTokenVerifier`]; [`build`](Self::build) validates everything.
#[derive(Debug, Clone)]
pub struct AccessTokenVerifierBuilder {
    endpoint: String,
    audience: Option<String>,
    scopes: Vec<String>,
    organization_id: Option<String>,
    settings: Settings,
    cache: CacheLimits,
    allow_impersonation: bool,
    introspection: Option<(String, ClientSecret, Duration)>,
    introspection_clients: Vec<String>,
    introspection_limits: IntrospectionLimits,
}

impl AccessTokenVerifierBuilder {
    /// Bounds of the verified-token cache ([`CacheLimits::OFF`] turns it off); by default
    /// [`DEFAULT_CACHE_LIMITS`].
    #[must_use]
    pub fn cache(mut self, limits: CacheLimits) -> Self {
        self.cache = limits;
        self
    }

    /// Whether tokens with an actor (`act`: impersonated or delegated) are accepted; by
    /// default they are (and their actor is in the claims). Refused ones are rejected as
    /// invalid tokens (401, check `act`).
    #[must_use]
    pub fn allow_impersonation(mut self, allow: bool) -> Self {
        self.allow_impersonation = allow;
        self
    }

    /// Accepts opaque access tokens (issued for no API resource) by asking the provider's
    /// introspection endpoint, authenticated as the app `client_id` with `secret`; active
    /// answers are reused for at most `ttl` (never past the token's `exp`). Off by default:
    /// such tokens are then rejected as malformed. An opaque token names no API, so only the
    /// tokens of the apps of [`introspection_clients`](Self::introspection_clients) (by
    /// default `client_id` alone) are accepted, unless the answer's `aud` names this API.
    #[must_use]
    pub fn introspection(mut self, client_id: String, secret: ClientSecret, ttl: Duration) -> Self {
        self.introspection = Some((client_id, secret, ttl));
        self
    }

    /// The apps (`client_id`s) whose opaque tokens are accepted; empty (the default): the app
    /// that introspects. A token issued to another app is rejected (401, check `client_id`).
    #[must_use]
    pub fn introspection_clients(mut self, clients: Vec<String>) -> Self {
        self.introspection_clients = clients;
        self
    }

    /// The negative cache and the request rate of introspection; by default
    /// [`DEFAULT_INTROSPECTION_LIMITS`].
    #[must_use]
    pub fn introspection_limits(mut self, limits: IntrospectionLimits) -> Self {
        self.introspection_limits = limits;
        self
    }

    /// Scopes every token must have (space-separated in its `scope` claim).
    #[must_use]
    pub fn scopes(mut self, scopes: Vec<String>) -> Self {
        self.scopes = scopes;
        self
    }

    /// The organization every token must be for.
    #[must_use]
    pub fn organization_id(mut self, organization_id: Option<String>) -> Self {
        self.organization_id = organization_id;
        self
    }

    /// Timeouts, clock tolerance, JWKS refetch pace and the plain-HTTP policy (the same
    /// [`Settings`] a client takes).
    #[must_use]
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Validates the configuration and builds the verifier. No request is made until one is
    /// needed.
    ///
    /// # Errors
    /// [`Error::Config`] naming the invalid value.
    pub fn build(self) -> Result<AccessTokenVerifier> {
        let settings = self.settings;
        let endpoint = parse_endpoint(&self.endpoint, settings.allow_insecure_http)?;
        let endpoint = endpoint.as_str().trim_end_matches('/');
        if self.audience.as_deref().is_some_and(str::is_empty) {
            return Err(Error::config("audience must not be empty"));
        }
        validate_scopes(&self.scopes)?;
        if self.organization_id.as_deref().is_some_and(str::is_empty) {
            return Err(Error::config("organizationId must not be empty"));
        }
        let http = settings.http_client()?;
        if self.introspection_clients.iter().any(String::is_empty) {
            return Err(Error::config("an introspection client id must not be empty"));
        }
        if let Some(rate) = self.introspection_limits.calls_per_second
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(Error::config(
                "the introspection rate limit must be a positive number of calls a second",
            ));
        }
        let introspection = match self.introspection {
            Some((client_id, secret, _)) if client_id.is_empty() || secret.secret().is_empty() => {
                return Err(Error::config(
                    "introspection needs a client id and a client secret",
                ));
            }
            Some((client_id, secret, ttl)) => Some(Introspection::new(
                client_id,
                secret,
                self.introspection_clients,
                CacheLimits {
                    max_age: ttl,
                    ..self.cache
                },
                self.introspection_limits,
            )),
            None => None,
        };
        Ok(AccessTokenVerifier {
            inner: Arc::new(Inner {
                issuer: format!("{endpoint}/oidc"),
                discovery_url: format!("{endpoint}/oidc/.well-known/openid-configuration"),
                audience: self.audience,
                scopes: self.scopes,
                organization_id: self.organization_id,
                leeway: settings.clock_tolerance.as_secs(),
                http,
                discovery: DiscoveryCache::default(),
                jwks: JwksCache::new(settings.jwks_refetch_cooldown),
                cache: TokenCache::new(self.cache),
                cached_generation: AtomicU64::new(0),
                allow_impersonation: self.allow_impersonation,
                introspection,
                clock_offset: AtomicI64::new(0),
            }),
        })
    }
}

/// Scope values must be RFC 6749 scope tokens (printable ASCII, no space, `"` or `\`).
fn validate_scopes(scopes: &[String]) -> Result<()> {
    match scopes
        .iter()
        .find(|s| s.is_empty() || !s.chars().all(|c| c != ' ' && quotable(c)))
    {
        Some(bad) => Err(Error::config(format!("invalid scope {bad:?}"))),
        None => Ok(()),
    }
}

/// Verifies the access tokens that reach an API. Cheap to clone; clones share the HTTP pool and
/// the key cache. Thread-safe: one verifier serves every request of a process.
#[derive(Debug, Clone)]
pub struct AccessTokenVerifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    issuer: String,
    discovery_url: String,
    audience: Option<String>,
    scopes: Vec<String>,
    organization_id: Option<String>,
    leeway: u64,
    http: HttpClient,
    discovery: DiscoveryCache,
    jwks: JwksCache,
    /// Verified tokens, valid while their key set's generation is current.
    cache: TokenCache<Verified>,
    /// The key generation the cache's entries were verified with (a change empties it).
    cached_generation: AtomicU64,
    allow_impersonation: bool,
    introspection: Option<Introspection>,
    /// Seconds added to the system clock ([`shift_clock`](AccessTokenVerifier::shift_clock)).
    clock_offset: AtomicI64,
}

impl AccessTokenVerifier {
    /// Starts a verifier for the Logto tenant at `endpoint` and tokens for `audience`: an API
    /// resource indicator, or `urn:logto:organization:<id>`. Without an audience the verifier
    /// takes organization tokens, and each call names the organization (the audience is then
    /// `urn:logto:organization:<id>`).
    #[must_use]
    pub fn builder(endpoint: impl Into<String>, audience: Option<String>) -> AccessTokenVerifierBuilder {
        AccessTokenVerifierBuilder {
            endpoint: endpoint.into(),
            audience,
            scopes: Vec::new(),
            organization_id: None,
            settings: Settings::default(),
            cache: DEFAULT_CACHE_LIMITS,
            allow_impersonation: true,
            introspection: None,
            introspection_clients: Vec::new(),
            introspection_limits: DEFAULT_INTROSPECTION_LIMITS,
        }
    }

    /// Moves this verifier's clock by `seconds` (cumulative): what `exp`, `iat` and `nbf` are
    /// compared with. For tests that must see tokens expire without waiting; a production
    /// verifier never calls it.
    #[doc(hidden)]
    pub fn shift_clock(&self, seconds: i64) {
        self.inner.clock_offset.fetch_add(seconds, Ordering::Relaxed);
    }

    fn now(&self) -> u64 {
        let offset = self.inner.clock_offset.load(Ordering::Relaxed);
        jwt::now_epoch_seconds().saturating_add_signed(offset)
    }

    /// Whether tokens with an actor (`act`) are accepted.
    #[must_use]
    pub fn allows_impersonation(&self) -> bool {
        self.inner.allow_impersonation
    }

    /// The bounds of the verified-token cache.
    #[must_use]
    pub fn cache_limits(&self) -> CacheLimits {
        self.inner.cache.limits()
    }

    /// Whether opaque tokens are introspected.
    #[must_use]
    pub fn introspects(&self) -> bool {
        self.inner.introspection.is_some()
    }

    /// The issuer tokens must carry: `{endpoint}/oidc`.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The configured audience (`None`: organization tokens, named per call).
    #[must_use]
    pub fn audience(&self) -> Option<&str> {
        self.inner.audience.as_deref()
    }

    /// The scopes every token must have.
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.inner.scopes
    }

    /// The organization every token must be for, if any.
    #[must_use]
    pub fn organization_id(&self) -> Option<&str> {
        self.inner.organization_id.as_deref()
    }

    fn expectations<'a>(&'a self, requirements: &Requirements<'a>, audience: &'a str) -> Expectations<'a> {
        Expectations {
            issuer: &self.inner.issuer,
            audience,
            scopes: [&self.inner.scopes, requirements.scopes],
            organization_id: requirements
                .organization_id
                .or(self.inner.organization_id.as_deref()),
            access_token_type: true,
            now: self.now(),
            leeway: self.inner.leeway,
        }
    }

    /// The audience a call requires (the configured one, or the organization's), after checking
    /// the call's requirements.
    fn audience_for(&self, requirements: &Requirements<'_>) -> Result<std::borrow::Cow<'_, str>> {
        validate_scopes(requirements.scopes)?;
        if requirements.organization_id.is_some_and(str::is_empty) {
            return Err(Error::config("organizationId must not be empty"));
        }
        if let Some(audience) = &self.inner.audience {
            return Ok(audience.as_str().into());
        }
        let organization = requirements
            .organization_id
            .or(self.inner.organization_id.as_deref())
            .ok_or_else(|| Error::config(NO_AUDIENCE))?;
        Ok(format!("{ORGANIZATION_AUDIENCE_PREFIX}{organization}").into())
    }

    /// Verifies `token` with the keys at hand, without any I/O.
    ///
    /// `None` when the keys must be loaded first ([`load_keys`](Self::load_keys)): none are
    /// cached yet, or the token's `kid` is unknown and a refetch is allowed. With
    /// `final_attempt` the answer is always `Some` (an unknown `kid` is then rejected).
    fn try_verify(
        &self,
        token: &str,
        requirements: &Requirements<'_>,
        final_attempt: bool,
    ) -> Option<Result<VerifiedAccessToken>> {
        let audience = match self.audience_for(requirements) {
            Ok(audience) => audience,
            Err(error) => return Some(Err(error)),
        };
        let expectations = self.expectations(requirements, &audience);
        let keys = self.inner.jwks.cached();
        self.verify_with(token, &expectations, requirements, keys.as_deref(), final_attempt)
    }

    fn verify_with(
        &self,
        token: &str,
        expectations: &Expectations<'_>,
        requirements: &Requirements<'_>,
        keys: Option<&KeySet>,
        final_attempt: bool,
    ) -> Option<Result<VerifiedAccessToken>> {
        let rejected = |e| Some(Err(Error::AccessTokenRejected(e)));
        if let Some(introspection) = &self.inner.introspection
            && is_opaque(token)
        {
            return match introspection.cached(token) {
                Some(answer) => {
                    Some(self.decide_introspected(introspection, &answer, expectations, requirements))
                }
                None if final_attempt => Some(Err(introspection::inactive())),
                None => None,
            };
        }
        let generation = keys.map_or(0, KeySet::generation);
        let cache_key = if generation == 0 {
            None
        } else {
            self.note_generation(generation);
            self.inner.cache.key(token)
        };
        if let Some(key) = &cache_key
            && let Some(hit) = self.inner.cache.get(key)
        {
            if hit.key_generation == generation {
                if !final_attempt && self.inner.jwks.stale() {
                    return None;
                }
                return Some(self.decide(hit, expectations, requirements, true));
            }
            self.inner.cache.remove(key);
        }
        let jwt = match jwt::parse(token) {
            Ok(jwt) => jwt,
            Err(e) => return rejected(e),
        };
        if let Err(e) = expectations.check_header(&jwt) {
            return rejected(e);
        }
        let found = keys.is_some_and(|keys| keys.find(jwt.kid.as_deref(), jwt.alg).is_some());
        let jwks = &self.inner.jwks;
        if !final_attempt
            && if found {
                jwks.stale()
            } else {
                jwks.refetch_allowed(jwt.kid.as_deref(), jwt.alg)
            }
        {
            return None;
        }
        let Some(keys) = keys else {
            return rejected(ValidationError::UnknownKey);
        };
        if let Err(e) = expectations.check_token(&jwt, keys) {
            return rejected(e);
        }
        let (claims, payload) = jwt.into_parts();
        let verified = Arc::new(Verified {
            claims,
            payload,
            key_generation: generation,
        });
        if let Some(key) = cache_key {
            let now = expectations.now;
            let ttl = verified.claims.expires_at().map_or(Duration::ZERO, |exp| {
                Duration::from_secs(exp.saturating_add(expectations.leeway).saturating_sub(now))
            });
            self.inner.cache.insert(key, verified.clone(), ttl);
        }
        Some(self.decide(verified, expectations, requirements, false))
    }

    /// Empties the cache when the keys it was filled with are replaced: a withdrawn key stops
    /// verifying as soon as the new key set is fetched.
    fn note_generation(&self, generation: u64) {
        let cached = &self.inner.cached_generation;
        if cached.load(Ordering::Relaxed) != generation
            && cached.swap(generation, Ordering::Relaxed) != generation
        {
            self.inner.cache.clear();
        }
    }

    /// The decision on a token whose signature verified: its registered claims (again, for a
    /// cached one: the time has moved), the impersonation policy, the call's requirements.
    fn decide(
        &self,
        verified: Arc<Verified>,
        expectations: &Expectations<'_>,
        requirements: &Requirements<'_>,
        check_claims: bool,
    ) -> Result<VerifiedAccessToken> {
        let claims = &verified.claims;
        let outcome = if check_claims {
            expectations.check_claims(claims, true)
        } else {
            Ok(())
        }
        .and_then(|()| self.check_actor(claims))
        .and_then(|()| expectations.check_access(claims))
        .and_then(|()| requirements.check_roles(&verified.payload));
        match outcome {
            Ok(()) => Ok(VerifiedAccessToken { verified }),
            Err(e) => Err(Error::AccessTokenRejected(e)),
        }
    }

    fn check_actor(&self, claims: &RegisteredClaims) -> Result<(), ValidationError> {
        if !self.inner.allow_impersonation && claims.actor().is_some() {
            return Err(ValidationError::Impersonated);
        }
        Ok(())
    }

    /// The decision on an introspected opaque token: inactive, or its claims checked like a
    /// JWT's. An answer whose `aud` names this API passes; one without `aud` (the token names
    /// no API, as every opaque token Logto issues) passes only when its `client_id` is one of
    /// the accepted apps.
    fn decide_introspected(
        &self,
        introspection: &Introspection,
        answer: &Introspected,
        expectations: &Expectations<'_>,
        requirements: &Requirements<'_>,
    ) -> Result<VerifiedAccessToken> {
        let Introspected::Active(verified) = answer else {
            return Err(introspection::inactive());
        };
        let claims = &verified.claims;
        let for_this_api = |claims: &RegisteredClaims| {
            let names_no_api = claims.audiences().is_ok_and(|audiences| audiences.is_empty());
            if names_no_api && !introspection.accepts_client(claims.client_id()) {
                return Err(ValidationError::Client);
            }
            Ok(())
        };
        expectations
            .check_claims(claims, false)
            .and_then(|()| for_this_api(claims))
            .and_then(|()| self.check_actor(claims))
            .and_then(|()| expectations.check_access(claims))
            .and_then(|()| requirements.check_roles(&verified.payload))
            .map_err(Error::AccessTokenRejected)?;
        Ok(VerifiedAccessToken {
            verified: verified.clone(),
        })
    }

    /// Verifies an opaque token by introspection (the cached answer, or one request shared
    /// with concurrent callers for the same token).
    ///
    /// # Errors
    /// [`Error::AccessTokenRejected`] (`active` when introspection is not configured or the
    /// token is not active, else the failed check); discovery and introspection errors;
    /// [`Error::Config`] when the provider has no introspection endpoint or no audience can be
    /// derived.
    pub async fn introspect(
        &self,
        token: &str,
        requirements: &Requirements<'_>,
    ) -> Result<VerifiedAccessToken> {
        let inner = &self.inner;
        let Some(introspection) = &inner.introspection else {
            return Err(introspection::inactive());
        };
        let audience = self.audience_for(requirements)?;
        let metadata = inner
            .discovery
            .get(&inner.http, &inner.discovery_url, &inner.issuer)
            .await?;
        let endpoint = metadata
            .introspection_endpoint
            .as_deref()
            .ok_or_else(|| Error::config("the provider has no introspection endpoint"))?;
        let answer = introspection
            .introspect(&inner.http, endpoint, token, self.now())
            .await?;
        let expectations = self.expectations(requirements, &audience);
        self.decide_introspected(introspection, &answer, &expectations, requirements)
    }

    /// Whether `token` is opaque (not a JWT) and this verifier introspects such tokens: then
    /// [`introspect`](Self::introspect) decides it when [`verify_cached`](Self::verify_cached)
    /// answers `None`.
    #[must_use]
    pub fn needs_introspection(&self, token: &str) -> bool {
        self.inner.introspection.is_some() && is_opaque(token)
    }

    /// Verifies `token` with the cached keys, without any I/O: `None` when the keys must be
    /// loaded first (none cached yet, or an unknown `kid` while a refetch is allowed).
    pub fn verify_cached(
        &self,
        token: &str,
        requirements: &Requirements<'_>,
    ) -> Option<Result<VerifiedAccessToken>> {
        self.try_verify(token, requirements, false)
    }

    /// Verifies `token` after [`load_keys`](Self::load_keys): like
    /// [`verify_cached`](Self::verify_cached), but an unknown `kid` is rejected.
    ///
    /// # Errors
    /// [`Error::AccessTokenRejected`] naming the failed check; [`Error::Config`] when no audience
    /// can be derived.
    pub fn verify_loaded(&self, token: &str, requirements: &Requirements<'_>) -> Result<VerifiedAccessToken> {
        self.try_verify(token, requirements, true)
            .unwrap_or(Err(Error::AccessTokenRejected(ValidationError::UnknownKey)))
    }

    /// Verifies many tokens with the cached keys, spread over the machine's cores, without any
    /// I/O. One entry per token, in order; `None` marks a token that needs
    /// [`load_keys`](Self::load_keys) (then [`verify_many_loaded`](Self::verify_many_loaded)).
    pub fn verify_many_cached<T: AsRef<str> + Sync>(
        &self,
        tokens: &[T],
        requirements: &Requirements<'_>,
    ) -> Vec<Option<Result<VerifiedAccessToken>>> {
        self.verify_batch(tokens, requirements, false)
    }

    /// [`verify_many_cached`](Self::verify_many_cached) after [`load_keys`](Self::load_keys):
    /// every entry is decided (an unknown `kid` is rejected).
    pub fn verify_many_loaded<T: AsRef<str> + Sync>(
        &self,
        tokens: &[T],
        requirements: &Requirements<'_>,
    ) -> Vec<Result<VerifiedAccessToken>> {
        self.verify_batch(tokens, requirements, true)
            .into_iter()
            .map(|r| r.unwrap_or(Err(Error::AccessTokenRejected(ValidationError::UnknownKey))))
            .collect()
    }

    fn verify_batch<T: AsRef<str> + Sync>(
        &self,
        tokens: &[T],
        requirements: &Requirements<'_>,
        final_attempt: bool,
    ) -> Vec<Option<Result<VerifiedAccessToken>>> {
        let audience = match self.audience_for(requirements) {
            Ok(audience) => audience,
            Err(error) => {
                let message = match error {
                    Error::Config(message) => message,
                    other => other.to_string(),
                };
                return tokens
                    .iter()
                    .map(|_| Some(Err(Error::Config(message.clone()))))
                    .collect();
            }
        };
        let expectations = self.expectations(requirements, &audience);
        let keys = self.inner.jwks.cached();
        let keys = keys.as_deref();
        let verify_chunk = |chunk: &[T]| -> Vec<Option<Result<VerifiedAccessToken>>> {
            chunk
                .iter()
                .map(|token| {
                    self.verify_with(token.as_ref(), &expectations, requirements, keys, final_attempt)
                })
                .collect()
        };
        let most_threads = tokens.len() / MIN_TOKENS_PER_THREAD;
        let threads = if most_threads < 2 {
            1
        } else {
            std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(most_threads)
        };
        if threads == 1 {
            return verify_chunk(tokens);
        }
        // `threads - 1` helpers; this thread takes the last chunk instead of waiting idle.
        let chunk_size = tokens.len().div_ceil(threads);
        let mut chunks = tokens.chunks(chunk_size);
        let own = chunks.next_back().unwrap_or_default();
        std::thread::scope(|scope| {
            let helpers: Vec<_> = chunks
                .map(|chunk| (chunk.len(), scope.spawn(move || verify_chunk(chunk))))
                .collect();
            let own_results = verify_chunk(own);
            let mut results = Vec::with_capacity(tokens.len());
            for (len, helper) in helpers {
                // A panicking helper (a bug) rejects its tokens rather than shifting results.
                results.extend(helper.join().unwrap_or_else(|_| {
                    (0..len)
                        .map(|_| {
                            Some(Err(Error::AccessTokenRejected(ValidationError::Malformed(
                                "internal error",
                            ))))
                        })
                        .collect()
                }));
            }
            results.extend(own_results);
            results
        })
    }

    /// Makes sure the keys are loaded: discovers the provider (once), and fetches the JWKS when
    /// none is cached or the cached keys are past their age (concurrent callers share one
    /// request).
    ///
    /// # Errors
    /// Discovery and JWKS fetch errors (none when keys are cached: they keep serving).
    pub async fn load_keys(&self) -> Result<()> {
        self.load_keys_for::<&str>(&[]).await
    }

    /// [`load_keys`](Self::load_keys), and also refetches the JWKS (within the unknown-kid rate
    /// limit) when the cached keys lack the key of one of `tokens`: what
    /// [`verify_cached`](Self::verify_cached) answering `None` asks for.
    ///
    /// # Errors
    /// Discovery and JWKS fetch errors (none when keys are cached: they keep serving).
    pub async fn load_keys_for<T: AsRef<str>>(&self, tokens: &[T]) -> Result<()> {
        let inner = &self.inner;
        let metadata = inner
            .discovery
            .get(&inner.http, &inner.discovery_url, &inner.issuer)
            .await?;
        let parsed: Vec<_> = tokens
            .iter()
            .filter_map(|token| jwt::parse(token.as_ref()).ok())
            .collect();
        let wanted: Vec<_> = parsed.iter().map(|jwt| (jwt.kid.as_deref(), jwt.alg)).collect();
        inner
            .jwks
            .refresh(&inner.http, &metadata.jwks_uri, &wanted)
            .await?;
        Ok(())
    }

    /// Verifies `token`, loading the keys first when they are needed: a batch of one
    /// ([`verify_many`](Self::verify_many)).
    ///
    /// # Errors
    /// [`Error::AccessTokenRejected`] naming the failed check; discovery and JWKS fetch errors;
    /// [`Error::Config`] when no audience can be derived.
    pub async fn verify(&self, token: &str, requirements: &Requirements<'_>) -> Result<VerifiedAccessToken> {
        self.verify_many(&[token], requirements)
            .await
            .pop()
            .unwrap_or(Err(Error::AccessTokenRejected(ValidationError::UnknownKey)))
    }

    /// Verifies many tokens, one result per token, in order: with the cached keys first
    /// ([`verify_many_cached`](Self::verify_many_cached)); then the opaque tokens left are
    /// introspected, and the keys are loaded once for the others
    /// ([`load_keys_for`](Self::load_keys_for)), which are verified again
    /// ([`verify_many_loaded`](Self::verify_many_loaded)). The one verification sequence: the
    /// single-token [`verify`](Self::verify) and the Python facades run it.
    ///
    /// When the keys cannot be loaded, every token that needed them gets the fetch error.
    pub async fn verify_many<T: AsRef<str> + Sync>(
        &self,
        tokens: &[T],
        requirements: &Requirements<'_>,
    ) -> Vec<Result<VerifiedAccessToken>> {
        let mut outcomes = self.verify_many_cached(tokens, requirements);
        let mut pending = Vec::new();
        for (index, (outcome, token)) in outcomes.iter_mut().zip(tokens).enumerate() {
            let token = token.as_ref();
            if outcome.is_some() {
                continue;
            }
            if self.needs_introspection(token) {
                *outcome = Some(self.introspect(token, requirements).await);
            } else {
                pending.push(index);
            }
        }
        if !pending.is_empty() {
            let pending_tokens: Vec<&str> = pending
                .iter()
                .filter_map(|&index| tokens.get(index).map(AsRef::as_ref))
                .collect();
            match self.load_keys_for(&pending_tokens).await {
                Ok(()) => {
                    let verified = self.verify_many_loaded(&pending_tokens, requirements);
                    for (&index, result) in pending.iter().zip(verified) {
                        if let Some(slot) = outcomes.get_mut(index) {
                            *slot = Some(result);
                        }
                    }
                }
                Err(error) => {
                    for &index in pending.iter().skip(1) {
                        if let Some(slot) = outcomes.get_mut(index) {
                            *slot = Some(Err(error.replay()));
                        }
                    }
                    if let Some(slot) = pending.first().and_then(|&first| outcomes.get_mut(first)) {
                        *slot = Some(Err(error));
                    }
                }
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or(Err(Error::AccessTokenRejected(ValidationError::UnknownKey))))
            .collect()
    }
}

#[cfg(test)]
mod tests;
