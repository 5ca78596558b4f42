//! `CoreClient`: the crate's [`LogtoClient`] for Python. Every method returns an `Operation`
//! that the Python driver runs, awaited or blocking; storage is passed per call.

use std::future::Future;
use std::sync::{Arc, Mutex};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::api::{api_call, api_output, retry_policy};
use super::context::{TokenPairs, context_json, found_tokens};
use super::convert::ConfigInput;
use super::operation::{Exchange, Output, PyOperation};
use super::storage::PyStorage;
use crate::client::LogtoClient;
use crate::context::{ContextOptions, SessionSnapshot};
use crate::error::Result;
use crate::logout::{LogoutToken, MemoryReplayStore};
use crate::process::PerProcess;
use crate::sign_in::SignInOptions;

#[pyclass(name = "CoreClient", module = "logto_rs._core", frozen)]
pub(crate) struct PyCoreClient {
    client: LogtoClient,
    hits: Mutex<Option<HitMemo>>,
    /// The replay store of logout tokens when the caller brings none (this process's own).
    logout_replays: PerProcess<MemoryReplayStore>,
}

/// Most tokens remembered for one stored map object.
const MAX_HIT_ENTRIES: usize = 16;

/// The tokens found in the stored map object last returned by a storage.
struct HitMemo {
    stored: Py<PyString>,
    entries: Vec<HitEntry>,
}

struct HitEntry {
    resource: Py<PyString>,
    organization_id: Option<Py<PyString>>,
    token: Py<PyString>,
    expires_at: u64,
}

fn same_text(a: &Bound<'_, PyString>, b: &Bound<'_, PyString>) -> bool {
    a.is(b) || a.as_any().eq(b).unwrap_or(false)
}

impl HitMemo {
    fn find(
        &self,
        stored: &Bound<'_, PyString>,
        resource: &Bound<'_, PyString>,
        organization_id: Option<&Bound<'_, PyString>>,
    ) -> Option<&HitEntry> {
        let py = stored.py();
        if !self.stored.bind(py).is(stored) {
            return None;
        }
        self.entries.iter().find(|e| {
            same_text(e.resource.bind(py), resource)
                && match (&e.organization_id, organization_id) {
                    (None, None) => true,
                    (Some(a), Some(b)) => same_text(a.bind(py), b),
                    _ => false,
                }
        })
    }
}

impl PyCoreClient {
    /// Wraps one call: binds the Python storage to a fresh exchange and boxes the future.
    fn operation<F, Fut>(&self, storage: Py<PyAny>, call: F) -> PyOperation
    where
        F: FnOnce(LogtoClient, PyStorage) -> Fut,
        Fut: Future<Output = Result<Output>> + Send + 'static,
    {
        let exchange = Arc::new(Exchange::default());
        let storage = PyStorage::new(storage, exchange.clone());
        PyOperation::new(Box::pin(call(self.client.clone(), storage)), exchange)
    }
}

#[pymethods]
impl PyCoreClient {
    #[new]
    fn new(config: ConfigInput) -> PyResult<Self> {
        Ok(Self {
            client: LogtoClient::new(config.into_config()?)?,
            hits: Mutex::new(None),
            logout_replays: PerProcess::new(),
        })
    }

    /// Validates a `LogtoConfig` without building a client; returns the normalised
    /// `(scopes, resources)`.
    #[staticmethod]
    fn validate_config(config: ConfigInput) -> PyResult<(Vec<String>, Vec<String>)> {
        let config = config.into_config()?;
        Ok((config.scopes().to_vec(), config.resources().to_vec()))
    }

    /// The normalised scopes requested at sign-in.
    #[getter]
    fn scopes(&self) -> Vec<String> {
        self.client.config().scopes().to_vec()
    }

    /// The normalised resources requested at sign-in.
    #[getter]
    fn resources(&self) -> Vec<String> {
        self.client.config().resources().to_vec()
    }

    #[pyo3(signature = (storage, redirect_uri, *, post_redirect_uri=None, interaction_mode=None,
        first_screen=None, identifiers=Vec::new(), direct_sign_in=None, login_hint=None, prompt=None,
        extra_params=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn sign_in(
        &self,
        storage: Py<PyAny>,
        redirect_uri: String,
        post_redirect_uri: Option<String>,
        interaction_mode: Option<String>,
        first_screen: Option<String>,
        identifiers: Vec<String>,
        direct_sign_in: Option<String>,
        login_hint: Option<String>,
        prompt: Option<String>,
        extra_params: Vec<(String, String)>,
    ) -> PyOperation {
        let mut options = SignInOptions::new(redirect_uri);
        options.post_redirect_uri = post_redirect_uri;
        options.interaction_mode = interaction_mode;
        options.first_screen = first_screen;
        options.identifiers = identifiers;
        options.direct_sign_in = direct_sign_in;
        options.login_hint = login_hint;
        options.prompt = prompt;
        options.extra_params = extra_params;
        self.operation(storage, |client, storage| async move {
            client.sign_in(&storage, options).await.map(Output::Str)
        })
    }

    fn handle_sign_in_callback(&self, storage: Py<PyAny>, callback_url: String) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            client
                .handle_sign_in_callback(&storage, &callback_url)
                .await
                .map(Output::OptStr)
        })
    }

    #[pyo3(signature = (storage, post_logout_redirect_uri=None))]
    fn sign_out(&self, storage: Py<PyAny>, post_logout_redirect_uri: Option<String>) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            client
                .sign_out(&storage, post_logout_redirect_uri.as_deref())
                .await
                .map(Output::Str)
        })
    }

    fn is_authenticated(&self, storage: Py<PyAny>) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            client.is_authenticated(&storage).await.map(Output::Bool)
        })
    }

    fn get_id_token(&self, storage: Py<PyAny>) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            let token = client.id_token(&storage).await?;
            Ok(Output::OptStr(token.map(|t| t.secret().to_owned())))
        })
    }

    fn get_refresh_token(&self, storage: Py<PyAny>) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            let token = client.refresh_token(&storage).await?;
            Ok(Output::OptStr(token.map(|t| t.secret().to_owned())))
        })
    }

    /// The claims of an ID token (already verified when it was stored) as a JSON object string,
    /// decoded without any storage or runtime: the per-request path.
    #[staticmethod]
    fn decode_id_token_claims(token: &str) -> PyResult<String> {
        let claims = crate::jwt::decode_claims_unverified(token).map_err(crate::error::Error::from)?;
        Ok(serde_json::Value::Object(claims).to_string())
    }

    /// The ID token's claims as a JSON object string (validated into a model in Python).
    fn get_id_token_claims(&self, storage: Py<PyAny>) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            let claims = client.id_token_claims(&storage).await?;
            Ok(Output::Str(serde_json::Value::Object(claims).to_string()))
        })
    }

    /// The cache-hit path of `get_access_token`, run synchronously in the caller's thread: calls
    /// `storage.get("accessTokenMap")` and returns the fresh cached token, or `None` (a miss, an
    /// asynchronous storage, or a storage error, all left to the full operation to handle).
    ///
    /// When the storage hands back the very `str` object it returned last time (a dict-backed
    /// session does), the token found then is reused without parsing or copying anything;
    /// Python strings are immutable and the memo holds a reference, so identity means equality.
    #[pyo3(signature = (storage, resource, organization_id=None))]
    fn cached_access_token<'py>(
        &self,
        storage: &Bound<'py, PyAny>,
        resource: &Bound<'py, PyString>,
        organization_id: Option<&Bound<'py, PyString>>,
    ) -> Option<Bound<'py, PyString>> {
        let py = storage.py();
        let stored = storage
            .call_method1(intern!(py, "get"), (intern!(py, "accessTokenMap"),))
            .ok()?
            .cast_into::<PyString>()
            .ok()?;
        // Tried, never waited for: a memo busy in another thread (or left locked by a fork) is
        // just not used this time.
        let mut memo = self.hits.try_lock().ok();
        if let Some(hit) = memo
            .as_deref()
            .and_then(Option::as_ref)
            .and_then(|m| m.find(&stored, resource, organization_id))
        {
            let (token, expires_at) = (hit.token.bind(py).clone(), hit.expires_at);
            return self.client.is_token_fresh(expires_at).then_some(token);
        }
        let text = stored.to_cow().ok()?;
        let organization = organization_id.map(|o| o.to_cow()).transpose().ok()?;
        let cached = self.client.cached_access_token(
            Some(&text),
            &resource.to_cow().ok()?,
            organization.as_deref(),
        )?;
        let token = PyString::new(py, cached.token.secret());
        let entry = HitEntry {
            resource: resource.clone().unbind(),
            organization_id: organization_id.map(|o| o.clone().unbind()),
            token: token.clone().unbind(),
            expires_at: cached.expires_at,
        };
        if let Some(memo) = memo.as_deref_mut() {
            match memo.as_mut() {
                Some(m) if m.stored.bind(py).is(&stored) && m.entries.len() < MAX_HIT_ENTRIES => {
                    m.entries.push(entry);
                }
                _ => {
                    *memo = Some(HitMemo {
                        stored: stored.unbind(),
                        entries: vec![entry],
                    });
                }
            }
        }
        Some(token)
    }

    #[pyo3(signature = (storage, resource, organization_id=None))]
    fn get_access_token(
        &self,
        storage: Py<PyAny>,
        resource: String,
        organization_id: Option<String>,
    ) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            let token = client
                .access_token(&storage, &resource, organization_id.as_deref())
                .await?;
            Ok(Output::OptStr(token.map(|t| t.secret().to_owned())))
        })
    }

    /// The access token's claims as a JSON object string.
    #[pyo3(signature = (storage, resource, organization_id=None, verify=false))]
    fn get_access_token_claims(
        &self,
        storage: Py<PyAny>,
        resource: String,
        organization_id: Option<String>,
        verify: bool,
    ) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            let claims = client
                .access_token_claims(&storage, &resource, organization_id.as_deref(), verify)
                .await?;
            Ok(Output::Str(serde_json::Value::Object(claims).to_string()))
        })
    }

    /// One Account API call as the signed-in user: `(status, total_number, body_text)`. `retry`
    /// is `(max_retries, base_delay, max_delay)`, the delays in seconds.
    #[pyo3(signature = (storage, method, segments, query, body, headers, retry))]
    #[allow(clippy::too_many_arguments)]
    fn account_call(
        &self,
        storage: Py<PyAny>,
        method: &str,
        segments: Vec<String>,
        query: Vec<(String, String)>,
        body: Option<String>,
        headers: Vec<(String, String)>,
        retry: (u32, f64, f64),
    ) -> PyResult<PyOperation> {
        let call = api_call(method, segments, query, body, headers)?;
        let retry = retry_policy(retry)?;
        Ok(self.operation(storage, |client, storage| async move {
            Ok(api_output(
                client.account_api_call(&storage, &call, &retry).await?,
            ))
        }))
    }

    /// The userinfo response as a JSON object string.
    fn fetch_user_info(&self, storage: Py<PyAny>) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            let info = client.fetch_user_info(&storage).await?;
            Ok(Output::Str(serde_json::Value::Object(info).to_string()))
        })
    }

    /// `getContext`'s per-request path, synchronous and without storage: the tokens of the
    /// context found fresh in the stored access-token map, as `(access, organizations)` pairs,
    /// or `None` when one must be refreshed (then run `get_context`).
    fn cached_context(
        &self,
        stored_map: Option<&str>,
        organization_ids: Vec<String>,
        access_tokens: bool,
        organization_tokens: bool,
    ) -> Option<(TokenPairs, TokenPairs)> {
        let options = ContextOptions {
            fetch_user_info: false,
            access_tokens,
            organization_tokens,
        };
        found_tokens(self.client.context_tokens(stored_map, &organization_ids, options))
    }

    /// The signed-in user's context as a JSON object string, from `snapshot` (the stored
    /// `(idToken, accessTokenMap)` the caller read already) or from one read of the session.
    #[pyo3(signature = (storage, snapshot, *, fetch_user_info, access_tokens, organization_tokens))]
    fn get_context(
        &self,
        storage: Py<PyAny>,
        snapshot: Option<(Option<String>, Option<String>)>,
        fetch_user_info: bool,
        access_tokens: bool,
        organization_tokens: bool,
    ) -> PyOperation {
        let options = ContextOptions {
            fetch_user_info,
            access_tokens,
            organization_tokens,
        };
        let snapshot = snapshot.map(|(id_token, access_token_map)| SessionSnapshot {
            id_token,
            access_token_map,
        });
        self.operation(storage, move |client, storage| async move {
            let context = client.context(&storage, snapshot, options).await?;
            Ok(Output::Str(context_json(&context)))
        })
    }

    /// Whether a user is signed in with an unexpired ID token, renewing an expired one first.
    fn signed_in_with_fresh_id_token(&self, storage: Py<PyAny>) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            Ok(Output::Bool(
                client.signed_in_with_fresh_id_token(&storage).await?,
            ))
        })
    }

    fn clear_access_token(&self, storage: Py<PyAny>) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            client
                .clear_access_token(&storage)
                .await
                .map(|()| Output::OptStr(None))
        })
    }

    /// Exchanges a personal access token (RFC 8693); the token as JSON. No storage involved.
    #[pyo3(signature = (pat, resource=None, scopes=Vec::new(), organization_id=None))]
    fn exchange_personal_access_token(
        &self,
        pat: String,
        resource: Option<String>,
        scopes: Vec<String>,
        organization_id: Option<String>,
    ) -> PyResult<PyOperation> {
        super::machine::exchange(self.client.clone(), pat, resource, &scopes, organization_id)
    }

    /// Delegation: exchanges a user's access token for one to another API; the token as JSON.
    #[pyo3(signature = (subject_token, resource=None, scopes=Vec::new(), organization_id=None))]
    fn exchange_access_token(
        &self,
        subject_token: String,
        resource: Option<String>,
        scopes: Vec<String>,
        organization_id: Option<String>,
    ) -> PyResult<PyOperation> {
        super::machine::delegate(
            self.client.clone(),
            subject_token,
            resource,
            &scopes,
            organization_id,
        )
    }

    /// Impersonation: exchanges a single-use subject token (uncached); the token as JSON.
    #[pyo3(signature = (
        subject_token, resource=None, scopes=Vec::new(), organization_id=None, actor_token=None,
        subject_token_type=None,
    ))]
    fn exchange_subject_token(
        &self,
        subject_token: String,
        resource: Option<String>,
        scopes: Vec<String>,
        organization_id: Option<String>,
        actor_token: Option<String>,
        subject_token_type: Option<String>,
    ) -> PyResult<PyOperation> {
        super::machine::impersonate(
            self.client.clone(),
            subject_token,
            (resource, &scopes, organization_id),
            actor_token,
            subject_token_type.as_deref(),
        )
    }

    /// Starts a device sign-in (RFC 8628); the device authorization as a JSON object string.
    #[pyo3(signature = (organization_id=None))]
    fn start_device_sign_in(&self, organization_id: Option<String>) -> PyOperation {
        let client = self.client.clone();
        let exchange = Arc::new(Exchange::default());
        PyOperation::new(
            Box::pin(async move {
                let started = client.start_device_sign_in(organization_id.as_deref()).await?;
                Ok(Output::Str(super::convert::device_authorization_json(&started)))
            }),
            exchange,
        )
    }

    /// Polls until the device sign-in is approved, then stores the tokens in `storage`.
    fn complete_device_sign_in(
        &self,
        storage: Py<PyAny>,
        device_code: String,
        expires_at: u64,
        interval: u64,
    ) -> PyOperation {
        let authorization = super::convert::device_authorization(device_code, expires_at, interval);
        self.operation(storage, |client, storage| async move {
            client
                .complete_device_sign_in(&storage, &authorization)
                .await
                .map(|()| Output::OptStr(None))
        })
    }

    /// Verifies a back-channel logout token, every check but the replay. The result is a JSON
    /// object: `sub`, `sid`, `iat`, `exp`, `jti`.
    fn verify_logout_token(&self, token: String) -> PyOperation {
        let client = self.client.clone();
        PyOperation::new(
            Box::pin(async move { Ok(logout_json(&client.verify_logout_token(&token).await?)) }),
            Arc::new(Exchange::default()),
        )
    }

    /// Claims a verified logout token's `jti` until `expires_at` in `replay_store` (an object
    /// with `claim(jti, ttl_seconds)`, sync or async), or in this process's memory when it is
    /// `None`. Fails with the `jti` check for a replay.
    #[pyo3(signature = (jti, expires_at, replay_store=None))]
    fn claim_logout_token(
        &self,
        jti: String,
        expires_at: u64,
        replay_store: Option<Py<PyAny>>,
    ) -> PyOperation {
        match replay_store {
            Some(store) => self.operation(store, move |client, store| async move {
                client.claim_logout_token(&jti, expires_at, &store).await?;
                Ok(Output::OptStr(None))
            }),
            None => {
                let store = self.logout_replays.get(|_| MemoryReplayStore::default());
                let client = self.client.clone();
                PyOperation::new(
                    Box::pin(async move {
                        client.claim_logout_token(&jti, expires_at, &*store).await?;
                        Ok(Output::OptStr(None))
                    }),
                    Arc::new(Exchange::default()),
                )
            }
        }
    }

    fn clear_all_tokens(&self, storage: Py<PyAny>) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            client
                .clear_all_tokens(&storage)
                .await
                .map(|()| Output::OptStr(None))
        })
    }
}

/// A verified logout token as the JSON object Python reads.
fn logout_json(token: &LogoutToken) -> Output {
    Output::Str(
        serde_json::json!({
            "sub": token.subject,
            "sid": token.session_id,
            "iat": token.issued_at,
            "exp": token.expires_at,
            "jti": token.jti,
        })
        .to_string(),
    )
}
