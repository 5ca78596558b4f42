//! `PyStorage`: the crate's [`Storage`] trait over a Python object with `get/set/delete`
//! (sync or `async def`). Each call runs inside `Operation.step()`, in the caller's thread and
//! context; an awaitable result is handed to the driver through the operation's [`Exchange`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::errors::PythonError;
use super::operation::{Exchange, polling_in_caller};
use crate::error::BoxError;
use crate::storage::{Storage, StorageKey};

/// A Python storage object, bound to one operation's exchange.
pub(crate) struct PyStorage {
    object: Py<PyAny>,
    exchange: Arc<Exchange>,
}

impl PyStorage {
    pub(crate) fn new(object: Py<PyAny>, exchange: Arc<Exchange>) -> Self {
        Self { object, exchange }
    }

    fn call(&self, method: &'static str, key: StorageKey, value: Option<String>) -> StorageCall<'_> {
        StorageCall {
            storage: self,
            method,
            key,
            value,
            awaiting: false,
        }
    }
}

/// One `get`/`set`/`delete` call; resolves to the method's (awaited) return value.
struct StorageCall<'a> {
    storage: &'a PyStorage,
    method: &'static str,
    key: StorageKey,
    value: Option<String>,
    awaiting: bool,
}

fn python_error(error: PyErr) -> BoxError {
    Box::new(PythonError(error))
}

impl Future for StorageCall<'_> {
    type Output = Result<Py<PyAny>, BoxError>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if !polling_in_caller() {
            return Poll::Ready(Err("storage must be called from the caller's thread".into()));
        }
        if this.awaiting {
            // Woken by the driver after it delivered the awaitable's outcome.
            return match this.storage.exchange.take_delivered() {
                Some(outcome) => Poll::Ready(outcome.map_err(python_error)),
                None => Poll::Pending,
            };
        }
        Python::attach(|py| {
            let object = this.storage.object.bind(py);
            let key = this.key.as_str();
            let result = match this.value.take() {
                Some(value) => object.call_method1(this.method, (key, value)),
                None => object.call_method1(this.method, (key,)),
            };
            match result {
                Err(error) => Poll::Ready(Err(python_error(error))),
                Ok(value) if value.is_none() || value.is_instance_of::<PyString>() => {
                    Poll::Ready(Ok(value.unbind()))
                }
                Ok(value) => match value.hasattr("__await__") {
                    Ok(true) => {
                        this.storage.exchange.send(value.unbind());
                        this.awaiting = true;
                        Poll::Pending
                    }
                    Ok(false) => Poll::Ready(Ok(value.unbind())),
                    Err(error) => Poll::Ready(Err(python_error(error))),
                },
            }
        })
    }
}

fn to_optional_string(value: &Py<PyAny>) -> Result<Option<String>, BoxError> {
    Python::attach(|py| {
        let value = value.bind(py);
        if value.is_none() {
            Ok(None)
        } else if let Ok(text) = value.cast::<PyString>() {
            Ok(Some(text.to_cow().map_err(python_error)?.into_owned()))
        } else if let Ok(bytes) = value.cast::<PyBytes>() {
            Ok(Some(String::from_utf8(bytes.as_bytes().to_vec())?))
        } else {
            Err(python_error(PyTypeError::new_err(
                "Storage.get must return str, bytes or None",
            )))
        }
    })
}

impl Storage for PyStorage {
    async fn get(&self, key: StorageKey) -> Result<Option<String>, BoxError> {
        let value = self.call("get", key, None).await?;
        to_optional_string(&value)
    }

    async fn set(&self, key: StorageKey, value: String) -> Result<(), BoxError> {
        self.call("set", key, Some(value)).await.map(drop)
    }

    async fn delete(&self, key: StorageKey) -> Result<(), BoxError> {
        self.call("delete", key, None).await.map(drop)
    }
}
