//! [`LogtoClient`]: the Rust-native client. It orchestrates the protocol modules over a
//! caller-supplied [`Storage`]: one client (configuration, HTTP pool, discovery and JWKS caches)
//! serves every user, each call gets the storage of the user it acts for.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::callback::{ExpectedIssuer, parse_callback};
use crate::config::LogtoConfig;
use crate::discovery::{DiscoveryCache, ProviderMetadata};
use crate::error::{CallbackError, Endpoint, Error, Result};
use crate::grant::{Grant, TokenResponse, request_token};
use crate::http::{ClientAuth, HttpClient};
use crate::jwks::JwksCache;
use crate::jwt::{self, ClaimChecks};
use crate::machine::MachineTokenCache;
use crate::process::PerProcess;
use crate::refresh::{self as refresh_coordination, Refreshed};
use crate::secret::{AccessToken, IdToken, Nonce, RefreshToken};
use crate::sign_in::{SignInOptions, SignInSession, authorization_url};
use crate::sign_out::end_session_url;
use crate::storage::{self, Storage, StorageKey, Write};
use crate::token_cache::{AccessTokenMap, CachedAccessToken, ParsedMapMemo, audience, cache_key, is_fresh};
use crate::user_info::check_subject;
use crate::verifier::{Expectations, verify_with_provider};

/// What a refresh under the session lock is for: once the lock is held, a session that already
/// has it (another process refreshed meanwhile) needs no request.
#[derive(Clone, Copy)]
enum Wanted {
    /// The access token for the resource and organization.
    AccessToken,
    /// An ID token that has not expired.
    FreshIdToken,
}

/// The name of the session lock a refresh holds (see [`Storage::try_lock`]).
pub const REFRESH_LOCK: &str = "refresh";
/// Added to the refresh request's timeouts for the lock's expiry, and again for a waiter.
const LOCK_SLACK: std::time::Duration = std::time::Duration::from_secs(5);

/// A Logto client. Cheap to clone; clones share the HTTP pool and the caches.
#[derive(Debug, Clone)]
pub struct LogtoClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: LogtoConfig,
    http: HttpClient,
    discovery: DiscoveryCache,
    jwks: JwksCache,
    parsed_maps: ParsedMapMemo,
    machine_tokens: PerProcess<MachineTokenCache>,
}

impl LogtoClient {
    /// A client for `config`. No request is made until one is needed.
    ///
    /// # Errors
    /// [`Error::Config`] if the HTTP client cannot be built.
    pub fn new(config: LogtoConfig) -> Result<Self> {
        let http = config.http_client()?;
        let jwks = JwksCache::new(config.jwks_refetch_cooldown);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                discovery: DiscoveryCache::default(),
                jwks,
                parsed_maps: ParsedMapMemo::default(),
                machine_tokens: PerProcess::new(),
            }),
        })
    }

    /// The HTTP client (for the protocol modules that extend the client).
    pub(crate) fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    /// The provider's keys (for the protocol modules that verify tokens of other kinds).
    pub(crate) fn jwks(&self) -> &JwksCache {
        &self.inner.jwks
    }

    /// The in-memory cache of `client_credentials` and exchanged tokens (this process's: a
    /// forked child starts with an empty one, since the parent's lanes may be held).
    pub(crate) fn machine_tokens(&self) -> Arc<MachineTokenCache> {
        self.inner.machine_tokens.get(|_| MachineTokenCache::default())
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &LogtoConfig {
        &self.inner.config
    }

    /// The provider's metadata, fetched once and cached.
    ///
    /// # Errors
    /// The discovery request's error.
    pub async fn provider_metadata(&self) -> Result<Arc<ProviderMetadata>> {
        let config = &self.inner.config;
        self.inner
            .discovery
            .get(
                &self.inner.http,
                &config.discovery_url(),
                &config.expected_issuer(),
            )
            .await
    }

    /// Starts a sign-in: returns the authorization URL to redirect the user to and stores the
    /// sign-in session. The session keeps its id and the tokens of a signed-in user until a
    /// callback succeeds (which rotates the id), so an abandoned sign-in costs nothing and the
    /// session stays where a back-channel logout finds it.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid options, discovery errors, storage errors.
    pub async fn sign_in<S: Storage>(&self, storage: &S, options: SignInOptions) -> Result<String> {
        let metadata = self.provider_metadata().await?;
        let session = SignInSession::new(options.redirect_uri.clone(), options.post_redirect_uri.clone());
        let url = authorization_url(
            &metadata.authorization_endpoint,
            &self.inner.config,
            &options,
            &session,
        )?;
        let session = serde_json::to_string(&session).map_err(|e| Error::config(e.to_string()))?;
        storage::commit(storage, vec![Write::Set(StorageKey::SignInSession, session)]).await?;
        Ok(url)
    }

    /// Handles the redirect back from the provider: validates the callback URL, exchanges the
    /// code, verifies the ID token, then stores the tokens and deletes the sign-in session in
    /// one commit. On any error the storage is left exactly as it was.
    ///
    /// Returns the post-sign-in destination given to [`sign_in`](Self::sign_in), if any.
    ///
    /// # Errors
    /// [`Error::Callback`], [`Error::OAuth`], [`Error::TokenValidation`], network and storage errors.
    pub async fn handle_sign_in_callback<S: Storage>(
        &self,
        storage: &S,
        callback_url: &str,
    ) -> Result<Option<String>> {
        let stored = storage::read(storage, StorageKey::SignInSession)
            .await?
            .ok_or(CallbackError::SessionNotFound)?;
        let session: SignInSession =
            serde_json::from_str(&stored).map_err(|_| CallbackError::CorruptSession)?;
        let metadata = self.provider_metadata().await?;
        let issuer = ExpectedIssuer {
            issuer: &metadata.issuer,
            required: metadata.authorization_response_iss_parameter_supported,
        };
        let code = parse_callback(callback_url, &session, issuer)?;

        let grant = Grant::AuthorizationCode {
            code: &code,
            code_verifier: &session.code_verifier,
            redirect_uri: &session.redirect_uri,
        };
        let tokens = request_token(
            &self.inner.http,
            &metadata.token_endpoint,
            &self.inner.config,
            &grant,
        )
        .await?;
        let id_token = tokens.id_token.clone().ok_or_else(|| Error::UnexpectedResponse {
            endpoint: Endpoint::Token,
            status: 200,
            reason: "the token response has no id_token".into(),
        })?;
        self.verify_id_token(id_token.secret(), Some(&session.nonce))
            .await?;

        let mut access_tokens = AccessTokenMap::default();
        access_tokens.insert(cache_key("", None), &tokens, jwt::now_epoch_seconds());
        // A new user's session gets a new id; every key of the previous one is replaced.
        storage::rotate_id(storage).await?;
        storage::commit(storage, self.token_writes(&tokens, id_token, access_tokens)).await?;
        Ok(session.post_redirect_uri)
    }

    pub(crate) fn token_writes(
        &self,
        tokens: &TokenResponse,
        id_token: IdToken,
        access_tokens: AccessTokenMap,
    ) -> Vec<Write> {
        vec![
            Write::Set(StorageKey::IdToken, id_token.secret().to_owned()),
            match &tokens.refresh_token {
                Some(refresh) => Write::Set(StorageKey::RefreshToken, refresh.secret().to_owned()),
                None => Write::Delete(StorageKey::RefreshToken),
            },
            Write::Set(StorageKey::AccessTokenMap, access_tokens.to_stored()),
            Write::Delete(StorageKey::SignInSession),
        ]
    }

    /// Verifies a JWT issued by the provider for `audience`: signature (JWKS, allow-listed
    /// algorithms), `iss`, `aud`, `exp`, `iat`, `nbf`. Returns its claims.
    ///
    /// # Errors
    /// [`Error::TokenValidation`] naming the failed check; JWKS fetch errors.
    pub async fn verify_jwt(&self, token: &str, audience: &str) -> Result<Map<String, Value>> {
        let metadata = self.provider_metadata().await?;
        let expectations = Expectations {
            issuer: &metadata.issuer,
            audience,
            scopes: [&[], &[]],
            organization_id: None,
            access_token_type: false,
            now: jwt::now_epoch_seconds(),
            leeway: self.inner.config.clock_tolerance.as_secs(),
        };
        let verified = verify_with_provider(
            &self.inner.http,
            &self.inner.jwks,
            &metadata,
            token,
            &expectations,
        )
        .await?;
        Ok(verified.claims_map()?)
    }

    /// Verifies an ID token issued to this application: signature (JWKS, allow-listed
    /// algorithms), `iss`, `aud`/`azp`, `exp`, `iat` and, when given, `nonce`. Returns its claims.
    ///
    /// # Errors
    /// [`Error::TokenValidation`] naming the failed check; JWKS fetch errors.
    pub async fn verify_id_token(&self, id_token: &str, nonce: Option<&Nonce>) -> Result<Map<String, Value>> {
        let metadata = self.provider_metadata().await?;
        let parsed = jwt::parse(id_token)?;
        self.inner
            .jwks
            .verify(&self.inner.http, &metadata.jwks_uri, &parsed)
            .await?;
        let config = &self.inner.config;
        let checks = ClaimChecks {
            issuer: &metadata.issuer,
            audience: config.app_id(),
            authorized_party: Some(config.app_id()),
            nonce,
            now: jwt::now_epoch_seconds(),
            leeway: config.clock_tolerance.as_secs(),
        };
        jwt::check_claims(&parsed.claims, &checks)?;
        let claims = parsed.claims_map()?;
        jwt::check_id_token_claim_types(&claims)?;
        Ok(claims)
    }

    /// Signs the user out locally and returns the provider's end-session URL.
    ///
    /// The local tokens are removed first (all or nothing), then the refresh token is revoked at
    /// the provider when it offers revocation (failures are ignored: the token is gone locally).
    ///
    /// # Errors
    /// Storage errors, discovery errors, an invalid `post_logout_redirect_uri`.
    pub async fn sign_out<S: Storage>(
        &self,
        storage: &S,
        post_logout_redirect_uri: Option<&str>,
    ) -> Result<String> {
        if let Some(uri) = post_logout_redirect_uri {
            crate::sign_in::validate_redirect_uri("postLogoutRedirectUri", uri)?;
        }
        let id_token = storage::read(storage, StorageKey::IdToken)
            .await?
            .map(IdToken::new);
        let refresh_token = storage::read(storage, StorageKey::RefreshToken)
            .await?
            .map(RefreshToken::new);
        storage::commit(storage, StorageKey::ALL.into_iter().map(Write::Delete).collect()).await?;

        let metadata = self.provider_metadata().await?;
        if let (Some(endpoint), Some(token)) = (&metadata.revocation_endpoint, &refresh_token) {
            let config = &self.inner.config;
            let auth = ClientAuth::for_client(config.app_id(), config.app_secret.as_ref());
            let params = [("token", token.secret()), ("token_type_hint", "refresh_token")];
            let _ = self
                .inner
                .http
                .post_form_no_content(Endpoint::Revocation, endpoint, &params, auth)
                .await;
        }
        let end_session =
            metadata
                .end_session_endpoint
                .as_deref()
                .ok_or_else(|| Error::UnexpectedResponse {
                    endpoint: Endpoint::Discovery,
                    status: 200,
                    reason: "the provider has no end_session_endpoint".into(),
                })?;
        end_session_url(
            end_session,
            self.inner.config.app_id(),
            post_logout_redirect_uri,
            id_token.as_ref(),
        )
    }

    /// Whether an ID token is stored (the user completed a sign-in and has not signed out).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn is_authenticated<S: Storage>(&self, storage: &S) -> Result<bool> {
        Ok(storage::read(storage, StorageKey::IdToken).await?.is_some())
    }

    /// The stored ID token.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn id_token<S: Storage>(&self, storage: &S) -> Result<Option<IdToken>> {
        Ok(storage::read(storage, StorageKey::IdToken)
            .await?
            .map(IdToken::new))
    }

    /// The claims of the stored ID token (verified when it was stored).
    ///
    /// # Errors
    /// [`Error::NotAuthenticated`] when no ID token is stored; storage errors.
    pub async fn id_token_claims<S: Storage>(&self, storage: &S) -> Result<Map<String, Value>> {
        let token = self
            .id_token(storage)
            .await?
            .ok_or(Error::NotAuthenticated("no ID token is stored"))?;
        Ok(jwt::decode_claims_unverified(token.secret())?)
    }

    /// Whether a user is signed in with an ID token that has not expired (beyond the clock
    /// tolerance). An expired one is renewed first: the session is refreshed with its refresh
    /// token (coordinated as [`access_token`](Self::access_token) does), and the re-issued ID
    /// token is verified (same subject) and stored. `Ok(false)` when nobody is signed in, or
    /// the ID token expired and could not be renewed (no refresh token, or the provider issued
    /// no ID token): the user must sign in again.
    ///
    /// # Errors
    /// [`Error::SignInRequired`] when the provider rejects the refresh token (the session is
    /// cleared); network, token validation and storage errors.
    pub async fn signed_in_with_fresh_id_token<S: Storage>(&self, storage: &S) -> Result<bool> {
        match self.id_token_expiry(storage).await? {
            None => return Ok(false),
            Some(exp) if !self.is_expired(exp) => return Ok(true),
            Some(_) => {}
        }
        self.refresh_under_lock(storage, "", None, Wanted::FreshIdToken)
            .await?;
        Ok(self
            .id_token_expiry(storage)
            .await?
            .is_some_and(|exp| !self.is_expired(exp)))
    }

    /// The stored ID token's `exp` (0 when it has none), or `None` without an ID token.
    async fn id_token_expiry<S: Storage>(&self, storage: &S) -> Result<Option<u64>> {
        let Some(token) = self.id_token(storage).await? else {
            return Ok(None);
        };
        let claims = jwt::decode_claims_unverified(token.secret())?;
        Ok(Some(claims.get("exp").and_then(Value::as_u64).unwrap_or(0)))
    }

    /// Whether a token expiring at `exp` has expired, beyond the clock tolerance.
    fn is_expired(&self, exp: u64) -> bool {
        exp.saturating_add(self.inner.config.clock_tolerance.as_secs()) <= jwt::now_epoch_seconds()
    }

    /// The stored refresh token.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn refresh_token<S: Storage>(&self, storage: &S) -> Result<Option<RefreshToken>> {
        Ok(storage::read(storage, StorageKey::RefreshToken)
            .await?
            .map(RefreshToken::new))
    }
}

impl LogtoClient {
    /// An access token for `resource` (`""`: the opaque token for userinfo), or with
    /// `organization_id` an organization token (`resource` empty) or an organization-scoped
    /// resource token.
    ///
    /// A cached token with more than `accessTokenMargin` of life left is returned as it is.
    /// Otherwise the session is refreshed, coordinated so that no refresh token is presented
    /// twice: within the process by the refresh coordinator, across processes by the storage's
    /// session lock when it has one (the session is read again once the lock is held, and a
    /// refresh another process made meanwhile is used). `Ok(None)` when there is no refresh
    /// token.
    ///
    /// What Logto would refuse after consuming the refresh token is refused here first: a
    /// resource not in the configuration's `resources`, an organization token without the
    /// organizations scope. Organization membership is Logto's to decide (a user added to an
    /// organization after signing in gets its token at once).
    ///
    /// # Errors
    /// [`Error::Config`] for a target refused locally; [`Error::SignInRequired`] when the
    /// provider rejects the refresh token, or refuses a public client's resource after
    /// consuming its refresh token: the session's tokens are then cleared; other OAuth errors
    /// (the session is kept); network and storage errors.
    pub async fn access_token<S: Storage>(
        &self,
        storage: &S,
        resource: &str,
        organization_id: Option<&str>,
    ) -> Result<Option<AccessToken>> {
        if let Some(token) = self
            .stored_access_token(storage, resource, organization_id)
            .await?
        {
            return Ok(Some(token));
        }
        self.check_target(resource, organization_id)?;
        self.refresh_under_lock(storage, resource, organization_id, Wanted::AccessToken)
            .await
    }

    /// A refresh of the session for `resource` / `organization_id`, under the session lock when
    /// the storage has one. Under the lock the session is read again: when another process has
    /// meanwhile stored what is `wanted`, no request is sent.
    async fn refresh_under_lock<S: Storage>(
        &self,
        storage: &S,
        resource: &str,
        organization_id: Option<&str>,
        wanted: Wanted,
    ) -> Result<Option<AccessToken>> {
        let Some(held) = self.refresh_token(storage).await? else {
            return Ok(None);
        };
        let config = &self.inner.config;
        // The holder's refresh is bounded by the request timeout; a waiter outlasts a crashed
        // holder's lock.
        let ttl = config.request_timeout + config.connect_timeout + LOCK_SLACK;
        let token = storage::lock(storage, REFRESH_LOCK, ttl, ttl + LOCK_SLACK).await?;
        let result = async {
            if token.is_none() {
                return self
                    .refresh_session(storage, held, resource, organization_id)
                    .await;
            }
            storage.must_finish();
            // Under the lock the session is read again: another process may have refreshed it
            // while this one waited.
            match wanted {
                Wanted::AccessToken => {
                    if let Some(token) = self
                        .stored_access_token(storage, resource, organization_id)
                        .await?
                    {
                        return Ok(Some(token));
                    }
                }
                Wanted::FreshIdToken => {
                    if self
                        .id_token_expiry(storage)
                        .await?
                        .is_some_and(|exp| !self.is_expired(exp))
                    {
                        return Ok(None);
                    }
                }
            }
            match self.refresh_token(storage).await? {
                Some(held) => {
                    self.refresh_session(storage, held, resource, organization_id)
                        .await
                }
                None => Ok(None),
            }
        }
        .await;
        if let Some(token) = token {
            let released = storage::unlock(storage, REFRESH_LOCK, token).await;
            // The refresh's own error matters more; a lock left behind expires after `ttl`.
            if result.is_ok() {
                released?;
            }
        }
        result
    }

    /// The fresh token the session holds for `resource` / `organization_id`, if any.
    async fn stored_access_token<S: Storage>(
        &self,
        storage: &S,
        resource: &str,
        organization_id: Option<&str>,
    ) -> Result<Option<AccessToken>> {
        let stored = storage::read(storage, StorageKey::AccessTokenMap).await?;
        Ok(self
            .cached_access_token(stored.as_deref(), resource, organization_id)
            .map(|cached| cached.token))
    }

    /// Refuses, before any request, what the provider would refuse after consuming a rotating
    /// refresh token. Organization membership is not among them: Logto checks it before it
    /// rotates anything, and membership may have changed since the ID token was issued, so Logto
    /// decides it.
    fn check_target(&self, resource: &str, organization_id: Option<&str>) -> Result<()> {
        let config = &self.inner.config;
        if !resource.is_empty() && !config.resources().iter().any(|r| r == resource) {
            return Err(Error::config(format!(
                "the resource {resource:?} is not in LogtoConfig.resources: Logto would refuse it \
                 (and consume the refresh token); add it there and sign in again"
            )));
        }
        if organization_id.is_some() && !config.has_organizations_scope() {
            return Err(Error::config(format!(
                "organization tokens need the {} scope in LogtoConfig.scopes",
                crate::config::ORGANIZATIONS_SCOPE
            )));
        }
        Ok(())
    }

    /// The refresh itself, presenting `held` (the newest refresh token the session holds), then
    /// storing its answer.
    async fn refresh_session<S: Storage>(
        &self,
        storage: &S,
        held: RefreshToken,
        resource: &str,
        organization_id: Option<&str>,
    ) -> Result<Option<AccessToken>> {
        let key = cache_key(resource, organization_id);
        let token_endpoint = self.provider_metadata().await?.token_endpoint.clone();
        let client = self.clone();
        let (resource_owned, organization_owned) = (resource.to_owned(), organization_id.map(str::to_owned));
        storage.must_finish();
        let outcome = refresh_coordination::coordinator()
            .refresh(
                held.clone(),
                key.clone(),
                self.inner.config.access_token_margin.as_secs(),
                move |presented| async move {
                    let grant = Grant::RefreshToken {
                        refresh_token: &presented,
                        resource: Some(&resource_owned),
                        organization_id: organization_owned.as_deref(),
                    };
                    request_token(&client.inner.http, &token_endpoint, &client.inner.config, &grant).await
                },
            )
            .await;
        match outcome {
            Ok((refreshed, pending)) => {
                let stored = self.store_refresh(storage, &held, &refreshed, key).await;
                drop(pending);
                stored
            }
            Err(Error::OAuth(e)) if e.error == "invalid_grant" || self.consumed_by_refusal(&e) => {
                // The refresh token is dead: rejected, or consumed by a public client's refresh
                // that was then refused. Presenting it again would revoke the grant.
                self.clear_all_tokens(storage).await?;
                Err(Error::SignInRequired(e))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether a refused refresh consumed the refresh token. Logto rotates a public client's
    /// refresh token at every refresh, before it checks `resource` (`invalid_target`), but after
    /// it checks organization membership (`access_denied` costs nothing). A confidential client
    /// keeps its token until 70 % of its lifetime has passed: the session is kept, and should the
    /// token have rotated, the next refresh is refused as `invalid_grant` (sign in again).
    fn consumed_by_refusal(&self, error: &crate::error::OAuthError) -> bool {
        self.inner.config.app_secret.is_none() && error.error == "invalid_target"
    }

    /// Stores a refresh's answer. The rotated refresh token is written first and never rolled
    /// back, whatever fails after it: the provider has consumed the old one. The re-issued ID
    /// token (verified, same subject) and the access token are stored only once that check
    /// passes; when it fails, they are dropped and the error returned.
    async fn store_refresh<S: Storage>(
        &self,
        storage: &S,
        presented: &RefreshToken,
        refreshed: &Refreshed,
        key: String,
    ) -> Result<Option<AccessToken>> {
        let response = &refreshed.response;
        let mut writes = Vec::with_capacity(3);
        if let Some(refresh) = &response.refresh_token
            && !refresh.ct_eq(presented.secret())
        {
            writes.push(Write::Set(StorageKey::RefreshToken, refresh.secret().to_owned()));
        }
        let keep = writes.len();
        let checked = match &response.id_token {
            Some(id_token) => self.check_reissued_id_token(storage, id_token).await,
            None => Ok(()),
        };
        if let Err(error) = checked {
            storage::commit_keeping(storage, keep, writes).await?;
            return Err(error);
        }
        if let Some(id_token) = &response.id_token {
            writes.push(Write::Set(StorageKey::IdToken, id_token.secret().to_owned()));
        }
        // Re-read the map just before writing, so tokens stored meanwhile are kept.
        let mut map = AccessTokenMap::from_stored(
            storage::read(storage, StorageKey::AccessTokenMap)
                .await?
                .as_deref(),
        );
        map.insert(key, response, refreshed.received_at);
        writes.push(Write::Set(StorageKey::AccessTokenMap, map.to_stored()));
        storage::commit_keeping(storage, keep, writes).await?;
        Ok(Some(response.access_token.clone()))
    }

    /// A re-issued ID token must verify and name the stored one's subject.
    async fn check_reissued_id_token<S: Storage>(&self, storage: &S, id_token: &IdToken) -> Result<()> {
        let claims = self.verify_id_token(id_token.secret(), None).await?;
        if let Some(stored) = self.id_token(storage).await? {
            check_subject(&claims, &jwt::decode_claims_unverified(stored.secret())?)?;
        }
        Ok(())
    }

    /// The cached token for `resource` / `organization_id` in the stored access-token map
    /// (`stored_map`, the value under `accessTokenMap`) if it has more than `accessTokenMargin`
    /// of life left. Pure and synchronous: the first step of
    /// [`access_token`](Self::access_token), also usable without a runtime.
    #[must_use]
    pub fn cached_access_token(
        &self,
        stored_map: Option<&str>,
        resource: &str,
        organization_id: Option<&str>,
    ) -> Option<CachedAccessToken> {
        let map = self.inner.parsed_maps.parse(stored_map);
        let margin = self.inner.config.access_token_margin.as_secs();
        let now = jwt::now_epoch_seconds();
        let fresh = match organization_id {
            None => map.fresh(resource, now, margin),
            Some(_) => map.fresh(&cache_key(resource, organization_id), now, margin),
        };
        fresh.cloned()
    }

    /// Whether a cached token expiring at `expires_at` (seconds since the epoch) is still used as
    /// it is, i.e. has more than `accessTokenMargin` of life left.
    #[must_use]
    pub fn is_token_fresh(&self, expires_at: u64) -> bool {
        is_fresh(
            expires_at,
            jwt::now_epoch_seconds(),
            self.inner.config.access_token_margin.as_secs(),
        )
    }

    /// The claims of the access token [`access_token`](Self::access_token) returns; verified
    /// against the JWKS (signature, `iss`, `aud`, `exp`) when `verify` is set.
    ///
    /// # Errors
    /// [`Error::NotAuthenticated`] without a token; [`Error::TokenValidation`] for an opaque token
    /// (the resource-less one has no claims) or a failed check.
    pub async fn access_token_claims<S: Storage>(
        &self,
        storage: &S,
        resource: &str,
        organization_id: Option<&str>,
        verify: bool,
    ) -> Result<Map<String, Value>> {
        let token = self
            .access_token(storage, resource, organization_id)
            .await?
            .ok_or(Error::NotAuthenticated("no refresh token is stored"))?;
        let audience =
            audience(resource, organization_id).ok_or(crate::error::ValidationError::Malformed(
                "the token without a resource is opaque and has no claims",
            ))?;
        if verify {
            self.verify_jwt(token.secret(), &audience).await
        } else {
            Ok(jwt::decode_claims_unverified(token.secret())?)
        }
    }

    /// The userinfo of the signed-in user, fetched with the resource-less access token; its
    /// `sub` must be the ID token's.
    ///
    /// # Errors
    /// [`Error::NotAuthenticated`]; [`Error::TokenValidation`] (`sub`) on a subject mismatch;
    /// OAuth, network and storage errors.
    pub async fn fetch_user_info<S: Storage>(&self, storage: &S) -> Result<Map<String, Value>> {
        let id_claims = self.id_token_claims(storage).await?;
        let token = self
            .access_token(storage, "", None)
            .await?
            .ok_or(Error::NotAuthenticated(
                "no access token or refresh token is stored",
            ))?;
        self.request_user_info(&token, &id_claims).await
    }

    /// Removes every cached access token (the refresh token stays).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn clear_access_token<S: Storage>(&self, storage: &S) -> Result<()> {
        storage::commit(storage, vec![Write::Delete(StorageKey::AccessTokenMap)]).await
    }

    /// Removes the ID token, the refresh token and every access token.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn clear_all_tokens<S: Storage>(&self, storage: &S) -> Result<()> {
        let keys = [
            StorageKey::IdToken,
            StorageKey::RefreshToken,
            StorageKey::AccessTokenMap,
        ];
        storage::commit(storage, keys.into_iter().map(Write::Delete).collect()).await
    }
}
