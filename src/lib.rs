//! # logto-rs
//!
//! A client for [Logto](https://logto.io), the OpenID Connect / OAuth 2.0 identity service: the
//! protocol core of the `logto-rs` Python package, usable from Rust on its own.
//!
//! ```no_run
//! use logto_rs::{LogtoClient, LogtoConfig, MemoryStorage, SignInOptions};
//!
//! # async fn run() -> logto_rs::Result<()> {
//! let config = LogtoConfig::builder("https://tenant.logto.app", "app-id")
//!     .app_secret(Some("app-secret".into()))
//!     .build()?;
//! let client = LogtoClient::new(config)?;
//! let session = MemoryStorage::new(); // one storage per user session
//!
//! let url = client.sign_in(&session, SignInOptions::new("https://app.example/callback")).await?;
//! // … redirect the user to `url`; the provider sends them back to the callback …
//! client.handle_sign_in_callback(&session, "https://app.example/callback?code=…&state=…").await?;
//! let claims = client.id_token_claims(&session).await?;
//! # let _ = (url, claims); Ok(()) }
//! ```
//!
//! Modules follow the protocol's steps: [`config`], [`discovery`], [`pkce`], [`sign_in`],
//! [`callback`], [`grant`], [`jwks`], [`jwt`], [`token_cache`], [`refresh`], [`user_info`],
//! [`sign_out`], [`logout`] (back-channel logout tokens), [`device`] (device sign-in for command lines and headless scripts, RFC 8628),
//! [`machine`] (tokens without a user: `client_credentials` and personal access token exchange),
//! [`exchange`] (delegation and impersonation between services), [`management`] (the Management
//! API's token) and [`api`] (any call of Logto's Management and Account APIs, with retries), and
//! [`verifier`] (access tokens presented to your API), over the
//! [`storage`] a caller provides and the one HTTP client in [`http`]. Secrets are the
//! redacting newtypes of [`secret`]; every failure is an [`Error`].

pub mod api;
pub mod callback;
pub mod client;
pub mod config;
// The signed-in user's context in one call (`getContext`).
pub mod context;
pub mod device;
pub mod discovery;
pub mod error;
pub mod grant;
pub mod http;
pub mod jwks;
pub mod jwt;
// Back-channel logout: the logout token and its replay store.
pub mod logout;
pub mod pkce;
pub mod process;
pub mod refresh;
pub mod secret;
pub mod sign_in;
pub mod sign_out;
pub mod storage;
mod token_bucket;
pub mod token_cache;
pub mod user_info;
// Verifying the access tokens that reach an API.
pub mod verifier;

// Machine tokens: client_credentials, personal access token exchange, the Management API's
// personal access tokens, and the per-key lanes they share with the refresh coordinator.
pub mod machine;
pub mod management;
mod single_flight;
// Token exchange between services: delegation of a user's access token, impersonation.
pub mod exchange;

#[cfg(feature = "python")]
mod python;

pub use client::LogtoClient;
pub use config::{LogtoConfig, LogtoConfigBuilder};
pub use error::{CallbackError, Endpoint, Error, OAuthError, Result, ValidationError};
pub use sign_in::SignInOptions;
pub use storage::{MemoryStorage, Storage, StorageKey};

// Machine tokens.
pub use error::ApiError;
pub use grant::TokenTarget;
pub use grant::{ExchangeSubject, ImpersonationTokenType};
pub use machine::MachineToken;
pub use management::ManagementApi;

// Logto's REST APIs: one generic call for the Management API and the Account API.
pub use api::{ApiCall, ApiResponse, RetryPolicy};
pub use verifier::{AccessTokenVerifier, Challenge, Requirements, VerifiedAccessToken};
