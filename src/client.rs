//! [`LogtoClient`]: the Rust-native client. It orchestrates the protocol modules over a
//! caller-supplied [`Storage`]: one client (configuration, HTTP pool, discovery and JWKS caches)
//! serves every user, each call gets the storage of the user it acts for.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::callback::parse_callback;
use crate::config::LogtoConfig;
use crate::discovery::{DiscoveryCache, ProviderMetadata};
use crate::error::{CallbackError, Endpoint, Error, Result};
use crate::grant::{Grant, TokenResponse, request_token};
use crate::http::{ClientAuth, HttpClient};
use crate::jwks::JwksCache;
use crate::jwt::{self, ClaimChecks};
use crate::secret::{IdToken, Nonce, RefreshToken};
use crate::sign_in::{SignInOptions, SignInSession, authorization_url};
use crate::sign_out::end_session_url;
use crate::storage::{self, Storage, StorageKey, Write};
use crate::token_cache::{AccessTokenMap, cache_key};

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
}

impl LogtoClient {
    /// A client for `config`. No request is made until one is needed.
    ///
    /// # Errors
    /// [`Error::Config`] if the HTTP client cannot be built.
    pub fn new(config: LogtoConfig) -> Result<Self> {
        let http = HttpClient::new(config.request_timeout, config.connect_timeout)?;
        let jwks = JwksCache::new(config.jwks_refetch_cooldown);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                discovery: DiscoveryCache::default(),
                jwks,
            }),
        })
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
    pub async fn provider_metadata(&self) -> Result<&ProviderMetadata> {
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

    /// Starts a sign-in: returns the authorization URL to redirect the user to, stores the
    /// sign-in session and removes every token of the previous user, all or nothing.
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
        storage::commit(
            storage,
            vec![
                Write::Delete(StorageKey::IdToken),
                Write::Delete(StorageKey::RefreshToken),
                Write::Delete(StorageKey::AccessTokenMap),
                Write::Set(StorageKey::SignInSession, session),
            ],
        )
        .await?;
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
        let code = parse_callback(callback_url, &session)?;

        let metadata = self.provider_metadata().await?;
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
        storage::commit(storage, self.token_writes(&tokens, id_token, access_tokens)).await?;
        Ok(session.post_redirect_uri)
    }

    fn token_writes(
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
        Ok(parsed.claims)
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
