//! `MachineClient`: a machine-to-machine app's `client_credentials` tokens, personal access token
//! exchange, and the Management API's personal access tokens, for Python. Every network method
//! returns an `Operation` (none of them touches a storage); results cross as JSON.

use std::future::Future;
use std::sync::Arc;

use pyo3::prelude::*;
use serde::Serialize;

use super::convert::MachineConfigInput;
use super::operation::{Exchange, Output, PyOperation};
use crate::client::LogtoClient;
use crate::error::{Error, Result};
use crate::grant::TokenTarget;
use crate::management::ManagementApi;
use crate::secret::PersonalAccessTokenValue;

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

    fn list_personal_access_tokens(&self, user_id: String) -> PyOperation {
        let api = self.management.clone();
        operation(async move { json(&api.list_personal_access_tokens(&user_id).await?) })
    }

    #[pyo3(signature = (user_id, name, expires_at=None))]
    fn create_personal_access_token(
        &self,
        user_id: String,
        name: String,
        expires_at: Option<i64>,
    ) -> PyOperation {
        let api = self.management.clone();
        operation(async move {
            json(
                &api.create_personal_access_token(&user_id, &name, expires_at)
                    .await?,
            )
        })
    }

    fn rename_personal_access_token(
        &self,
        user_id: String,
        current_name: String,
        name: String,
    ) -> PyOperation {
        let api = self.management.clone();
        operation(async move {
            json(
                &api.rename_personal_access_token(&user_id, &current_name, &name)
                    .await?,
            )
        })
    }

    fn delete_personal_access_token(&self, user_id: String, name: String) -> PyOperation {
        let api = self.management.clone();
        operation(async move {
            api.delete_personal_access_token(&user_id, &name).await?;
            Ok(Output::OptStr(None))
        })
    }
}
