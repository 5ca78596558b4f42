//! `MachineClient`: a machine-to-machine app's `client_credentials` tokens, token exchange
//! (personal access tokens, delegation, impersonation), and any Management API call, for Python. Every network method returns an `Operation` (none of
//! them touches a storage); results cross as JSON.

use std::future::Future;
use std::sync::Arc;

use pyo3::prelude::*;
use serde::Serialize;

use super::api::{api_call, api_output, retry_policy};
use super::convert::MachineConfigInput;
use super::operation::{Exchange, Output, PyOperation};
use crate::client::LogtoClient;
use crate::error::{Error, Result};
use crate::grant::{ImpersonationTokenType, TokenTarget};
use crate::management::ManagementApi;
use crate::secret::{AccessToken, PersonalAccessTokenValue, SubjectTokenValue};

/// An operation that needs no storage.
fn operation<Fut>(future: Fut) -> PyOperation
where
    Fut: Future<Output = Result<Output>> + Send + 'static,
{
    PyOperation::new(Box::pin(future), Arc::new(Exchange::default()))
}

fn json<T: Serialize>(value: &T) -> Result<Output> {
    serde_json::to_string(value)
        .map(Output::Str)
        .map_err(|_| Error::config("cannot serialise the result"))
}

/// `exchange_personal_access_token` of `CoreClient` and `MachineClient`: the token as JSON.
pub(crate) fn exchange(
    client: LogtoClient,
    pat: String,
    resource: Option<String>,
    scopes: &[String],
    organization_id: Option<String>,
) -> PyResult<PyOperation> {
    let target = TokenTarget::new(resource.as_deref(), organization_id.as_deref(), scopes)?;
    let pat = PersonalAccessTokenValue::new(pat);
    Ok(operation(async move {
        json(&client.exchange_personal_access_token(&pat, &target).await?)
    }))
}

/// `exchange_access_token` of `CoreClient` and `MachineClient` (delegation): the token as JSON.
pub(crate) fn delegate(
    client: LogtoClient,
    subject_token: String,
    resource: Option<String>,
    scopes: &[String],
    organization_id: Option<String>,
) -> PyResult<PyOperation> {
    let target = TokenTarget::new(resource.as_deref(), organization_id.as_deref(), scopes)?;
    let subject_token = AccessToken::new(subject_token);
    Ok(operation(async move {
        json(&client.exchange_access_token(&subject_token, &target).await?)
    }))
}

/// `exchange_subject_token` of `CoreClient` and `MachineClient` (impersonation): the token as
/// JSON. `subject_token_type` is a URN (default: Logto's impersonation token type).
pub(crate) fn impersonate(
    client: LogtoClient,
    subject_token: String,
    target: (Option<String>, &[String], Option<String>),
    actor_token: Option<String>,
    subject_token_type: Option<&str>,
) -> PyResult<PyOperation> {
    let (resource, scopes, organization_id) = target;
    let target = TokenTarget::new(resource.as_deref(), organization_id.as_deref(), scopes)?;
    let token_type = subject_token_type
        .map(ImpersonationTokenType::from_urn)
        .transpose()?
        .unwrap_or_default();
    let subject_token = SubjectTokenValue::new(subject_token);
    let actor_token = actor_token.map(AccessToken::new);
    Ok(operation(async move {
        let token = client
            .exchange_subject_token(&subject_token, token_type, actor_token.as_ref(), &target)
            .await?;
        json(&token)
    }))
}

#[pyclass(name = "MachineClient", module = "logto_rs._core", frozen)]
pub(crate) struct PyMachineClient {
    client: LogtoClient,
    management: ManagementApi,
}

#[pymethods]
impl PyMachineClient {
    #[new]
    fn new(config: MachineConfigInput) -> PyResult<Self> {
        let client = LogtoClient::new(config.to_config()?)?;
        let management = ManagementApi::new(client.clone(), config.management_api_resource.as_deref())?;
        Ok(Self { client, management })
    }

    /// Validates a `LogtoM2MConfig` without building a client.
    #[staticmethod]
    fn validate_config(config: MachineConfigInput) -> PyResult<()> {
        config.to_config()?;
        Ok(())
    }

    /// The Management API's resource indicator.
    #[getter]
    fn management_api_resource(&self) -> String {
        self.management.resource().to_owned()
    }

    #[pyo3(signature = (resource=None, scopes=Vec::new(), organization_id=None))]
    fn client_credentials_token(
        &self,
        resource: Option<String>,
        scopes: Vec<String>,
        organization_id: Option<String>,
    ) -> PyResult<PyOperation> {
        let target = TokenTarget::new(resource.as_deref(), organization_id.as_deref(), &scopes)?;
        let client = self.client.clone();
        Ok(operation(async move {
            json(&client.client_credentials_token(&target).await?)
        }))
    }

    /// One Management API call: `(status, total_number, body_text)`. `retry` is
    /// `(max_retries, base_delay, max_delay)`, the delays in seconds.
    #[pyo3(signature = (method, segments, query, body, headers, retry))]
    fn management_call(
        &self,
        method: &str,
        segments: Vec<String>,
        query: Vec<(String, String)>,
        body: Option<String>,
        headers: Vec<(String, String)>,
        retry: (u32, f64, f64),
    ) -> PyResult<PyOperation> {
        let call = api_call(method, segments, query, body, headers)?;
        let retry = retry_policy(retry)?;
        let api = self.management.clone();
        Ok(operation(async move {
            Ok(api_output(api.send_call(&call, &retry).await?))
        }))
    }

    fn management_api_token(&self) -> PyOperation {
        let api = self.management.clone();
        operation(async move { json(&api.token().await?) })
    }

    #[pyo3(signature = (pat, resource=None, scopes=Vec::new(), organization_id=None))]
    fn exchange_personal_access_token(
        &self,
        pat: String,
        resource: Option<String>,
        scopes: Vec<String>,
        organization_id: Option<String>,
    ) -> PyResult<PyOperation> {
        exchange(self.client.clone(), pat, resource, &scopes, organization_id)
    }

    #[pyo3(signature = (subject_token, resource=None, scopes=Vec::new(), organization_id=None))]
    fn exchange_access_token(
        &self,
        subject_token: String,
        resource: Option<String>,
        scopes: Vec<String>,
        organization_id: Option<String>,
    ) -> PyResult<PyOperation> {
        delegate(
            self.client.clone(),
            subject_token,
            resource,
            &scopes,
            organization_id,
        )
    }

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
        impersonate(
            self.client.clone(),
            subject_token,
            (resource, &scopes, organization_id),
            actor_token,
            subject_token_type.as_deref(),
        )
    }
}
