//! `PyStorage`: the crate's [`Storage`] trait over a Python object with `get/set/delete`
//! (sync or `async def`). Each call runs inside `Operation.step()`, in the caller's thread and
//! context; an awaitable result is handed to the driver through the operation's [`Exchange`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::errors::PythonError;
use super::operation::{Exchange, polling_in_caller};
use crate::error::BoxError;
use crate::logout::ReplayStore;
use crate::storage::{LockAttempt, Storage, StorageKey};

/// A Python storage object, bound to one operation's exchange (which holds the object, so that
/// the operation shows it to the garbage collector).
pub(crate) struct PyStorage {
    exchange: Arc<Exchange>,
}

impl PyStorage {
    pub(crate) fn new(exchange: Arc<Exchange>) -> Self {
        Self { exchange }
    }

    fn call(&self, method: &'static str, args: Args) -> StorageCall<'_> {
        StorageCall {
            storage: self,
            method,
            args: Some(args),
            awaiting: false,
        }
    }

    /// Whether the storage object has the optional method `name` (`lock`, `unlock`, `rotate`).
    fn has(&self, name: &str) -> bool {
        Python::attach(|py| {
            self.exchange
                .storage(py)
                .is_some_and(|object| object.hasattr(name).unwrap_or(false))
        })
    }
}

/// The arguments of one storage call.
enum Args {
    Key(StorageKey),
    KeyValue(StorageKey, String),
    Lock(&'static str, f64),
    Unlock(&'static str, String),
    Claim(String, f64),
    Nothing,
}

/// One storage call; resolves to the method's (awaited) return value.
struct StorageCall<'a> {
    storage: &'a PyStorage,
    method: &'static str,
    args: Option<Args>,
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
            let Some(object) = this.storage.exchange.storage(py) else {
                return Poll::Ready(Err("the storage was released by the garbage collector".into()));
            };
            let result = match this.args.take() {
                Some(Args::Key(key)) => object.call_method1(this.method, (key.as_str(),)),
                Some(Args::KeyValue(key, value)) => object.call_method1(this.method, (key.as_str(), value)),
                Some(Args::Lock(name, ttl)) => object.call_method1(this.method, (name, ttl)),
                Some(Args::Unlock(name, token)) => object.call_method1(this.method, (name, token)),
                Some(Args::Claim(jti, ttl)) => object.call_method1(this.method, (jti, ttl)),
                Some(Args::Nothing) => object.call_method0(this.method),
                None => return Poll::Ready(Err("storage call polled after completion".into())),
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
        let value = self.call("get", Args::Key(key)).await?;
        to_optional_string(&value)
    }

    async fn set(&self, key: StorageKey, value: String) -> Result<(), BoxError> {
        self.call("set", Args::KeyValue(key, value)).await.map(drop)
    }

    async fn delete(&self, key: StorageKey) -> Result<(), BoxError> {
        self.call("delete", Args::Key(key)).await.map(drop)
    }

    /// `storage.lock(name, ttl_seconds)` when the storage has it: an owner token, or `None`
    /// when the lock is held.
    async fn try_lock(&self, name: &'static str, ttl: Duration) -> Result<LockAttempt, BoxError> {
        if !self.has("lock") {
            return Ok(LockAttempt::Unsupported);
        }
        let value = self.call("lock", Args::Lock(name, ttl.as_secs_f64())).await?;
        Ok(match to_optional_string(&value)? {
            Some(token) => LockAttempt::Acquired(token),
            None => LockAttempt::Busy,
        })
    }

    async fn unlock(&self, name: &'static str, token: String) -> Result<(), BoxError> {
        if !self.has("unlock") {
            return Ok(());
        }
        self.call("unlock", Args::Unlock(name, token)).await.map(drop)
    }

    async fn rotate_id(&self) -> Result<(), BoxError> {
        if !self.has("rotate") {
            return Ok(());
        }
        self.call("rotate", Args::Nothing).await.map(drop)
    }

    fn must_finish(&self) {
        self.exchange.set_must_finish();
    }
}

/// The same bridge serves a Python replay store of logout tokens: `claim(jti, ttl_seconds)`
/// (sync or `async def`) answers whether the id was new.
impl ReplayStore for PyStorage {
    async fn claim(&self, jti: &str, expires_at: u64) -> Result<bool, BoxError> {
        let ttl = expires_at.saturating_sub(crate::jwt::now_epoch_seconds()).max(1);
        #[allow(clippy::cast_precision_loss)]
        let value = self
            .call("claim", Args::Claim(jti.to_owned(), ttl as f64))
            .await?;
        Python::attach(|py| value.bind(py).is_truthy().map_err(python_error))
    }
}
