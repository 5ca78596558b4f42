//! `CoreClient`: the crate's [`LogtoClient`] for Python. Every method returns an `Operation`
//! that the Python driver runs, awaited or blocking; storage is passed per call.

use std::future::Future;
use std::sync::Arc;

use pyo3::prelude::*;

use super::convert::ConfigInput;
use super::operation::{Exchange, Output, PyOperation};
use super::storage::PyStorage;
use crate::client::LogtoClient;
use crate::error::Result;
use crate::sign_in::SignInOptions;

#[pyclass(name = "CoreClient", module = "logto_rs._core", frozen)]
pub(crate) struct PyCoreClient {
    client: LogtoClient,
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

    /// The ID token's claims as a JSON object string (validated into a model in Python).
    fn get_id_token_claims(&self, storage: Py<PyAny>) -> PyOperation {
        self.operation(storage, |client, storage| async move {
            let claims = client.id_token_claims(&storage).await?;
            Ok(Output::Str(serde_json::Value::Object(claims).to_string()))
        })
    }
}
