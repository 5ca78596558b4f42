//! `CoreSealer`: the crate's [`Sealer`] for Python (encrypted cookie sessions).
//!
//! Values of a cookie's size are sealed and opened holding the GIL (a few microseconds); larger
//! ones release it while AES-GCM runs.

use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::error::{Error, Result};
use crate::seal::{SealKey, Sealer, generate_key};

/// Bytes past which sealing and opening release the GIL.
const DETACH_BYTES: usize = 64 * 1024;

/// Unix seconds now.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A key given as text (hex, base64url, base64) or as its 32 bytes.
fn key_of(key: &Bound<'_, PyAny>) -> Result<SealKey> {
    if let Ok(bytes) = key.cast::<PyBytes>() {
        return SealKey::from_bytes(bytes.as_bytes());
    }
    if let Ok(text) = key.cast::<PyString>() {
        let text = text
            .to_cow()
            .map_err(|_| Error::config("a session key must be text or bytes"))?;
        return SealKey::parse(&text);
    }
    Err(Error::config("a session key must be text or bytes"))
}

#[pyclass(name = "CoreSealer", module = "logto_rs._core", frozen)]
pub(crate) struct PySealer {
    sealer: Sealer,
}

#[pymethods]
impl PySealer {
    #[new]
    fn new(keys: Vec<Bound<'_, PyAny>>) -> Result<Self> {
        let keys = keys.iter().map(key_of).collect::<Result<Vec<_>>>()?;
        Ok(Self {
            sealer: Sealer::new(keys)?,
        })
    }

    /// The key ids, the sealing key's first.
    #[getter]
    fn key_ids(&self) -> Vec<String> {
        self.sealer.key_ids().map(str::to_owned).collect()
    }

    #[pyo3(signature = (value, name, ttl=None))]
    fn seal(&self, py: Python<'_>, value: &[u8], name: &str, ttl: Option<u64>) -> Result<String> {
        let expires_at = match ttl {
            Some(0) => return Err(Error::config("a sealed value's ttl must be at least 1 second")),
            Some(ttl) => Some(now().saturating_add(ttl)),
            None => None,
        };
        if value.len() > DETACH_BYTES {
            py.detach(|| self.sealer.seal(value, name, expires_at))
        } else {
            self.sealer.seal(value, name, expires_at)
        }
    }

    fn open<'py>(&self, py: Python<'py>, sealed: &str, name: &str) -> Result<Bound<'py, PyBytes>> {
        let now = now();
        let value = if sealed.len() > DETACH_BYTES {
            py.detach(|| self.sealer.open(sealed, name, now))
        } else {
            self.sealer.open(sealed, name, now)
        }?;
        Ok(PyBytes::new(py, &value))
    }

    fn sealed_len(&self, length: usize) -> usize {
        self.sealer.sealed_len(length)
    }

    fn __repr__(&self) -> String {
        format!("CoreSealer(key_ids={:?})", self.key_ids())
    }
}

/// A new random key, base64url (43 characters).
#[pyfunction]
pub(crate) fn generate_seal_key() -> String {
    generate_key()
}
