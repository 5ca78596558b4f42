//! The one conversion from [`crate::Error`] to a Python exception of the `logto_rs.errors`
//! hierarchy (defined in Python, looked up here by name).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyModule, PyType};

use crate::error::{CallbackError, Error};
use crate::verifier::Challenge;

/// A Python exception raised by user code (the storage), carried through the core as a source.
#[derive(Debug)]
pub(crate) struct PythonError(pub(crate) PyErr);

impl std::fmt::Display for PythonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the storage raised an exception")
    }
}

impl std::error::Error for PythonError {}

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn exception_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    let module = ERRORS_MODULE.get_or_try_init(py, || py.import("logto_rs.errors").map(Bound::unbind))?;
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

/// Which class, and which attributes, an error becomes.
struct Mapping {
    class: &'static str,
    error: Option<String>,
    description: Option<String>,
    status: Option<u16>,
    check: Option<&'static str>,
}

fn mapping(error: &Error) -> Mapping {
    let plain = |class| Mapping {
        class,
        error: None,
        description: None,
        status: None,
        check: None,
    };
    match error {
        Error::Config(_) => plain("LogtoConfigError"),
        Error::Network { .. } => plain("LogtoNetworkError"),
        Error::Timeout { .. } => plain("LogtoTimeoutError"),
        Error::SignInRequired(e) => Mapping {
            class: "LogtoInvalidGrantError",
            error: Some(e.error.clone()),
            description: e.description.clone(),
            status: Some(e.status),
            check: None,
        },
        Error::OAuth(e) => Mapping {
            class: if e.error == "invalid_grant" {
                "LogtoInvalidGrantError"
            } else {
                "LogtoOAuthError"
            },
            error: Some(e.error.clone()),
            description: e.description.clone(),
            status: Some(e.status),
            check: None,
        },
        Error::UnexpectedResponse { status, .. } => Mapping {
            status: Some(*status),
            ..plain("LogtoResponseError")
        },
        Error::TokenValidation(e) => Mapping {
            check: Some(e.check()),
            ..plain("LogtoTokenValidationError")
        },
        Error::Callback(CallbackError::Authorization { error, description }) => Mapping {
            error: Some(error.clone()),
            description: description.clone(),
            ..plain("LogtoAuthorizationError")
        },
        Error::Callback(_) => plain("LogtoCallbackError"),
        Error::NotAuthenticated(_) => plain("LogtoNotAuthenticatedError"),
        Error::Storage { .. } => plain("LogtoStorageError"),
        // A sealed (encrypted) cookie that did not open: tampered, expired, or of a removed key.
        Error::Unseal(_) => plain("LogtoSealError"),
        // The device sign-in ended: denied by the person, or the code expired.
        Error::DeviceSignIn(e) => Mapping {
            class: if e.error == "expired_token" {
                "LogtoDeviceCodeExpiredError"
            } else {
                "LogtoDeviceSignInDeniedError"
            },
            error: Some(e.error.clone()),
            description: e.description.clone(),
            status: Some(e.status),
            check: None,
        },
        // Machine tokens and the Management API.
        Error::GrantNotAllowed { error: e, .. } => Mapping {
            class: "LogtoGrantNotAllowedError",
            error: Some(e.error.clone()),
            description: e.description.clone(),
            status: Some(e.status),
            check: None,
        },
        Error::Api(e) => Mapping {
            class: match e.status {
                400 => "LogtoApiInvalidInputError",
                401 | 403 => "LogtoApiAuthError",
                404 => "LogtoApiNotFoundError",
                409 | 422 => "LogtoApiConflictError",
                _ => "LogtoApiError",
            },
            error: Some(e.code.clone()),
            description: Some(e.message.clone()),
            status: Some(e.status),
            check: None,
        },
        // A bearer token rejected by the AccessTokenVerifier (401/403, RFC 6750).
        Error::AccessTokenRejected(e) => {
            let challenge = Challenge::new(e);
            Mapping {
                class: if challenge.status == 403 {
                    "LogtoInsufficientScopeError"
                } else {
                    "LogtoInvalidTokenError"
                },
                error: Some(challenge.error.to_owned()),
                description: Some(challenge.description),
                status: Some(challenge.status),
                check: Some(e.check()),
            }
        }
    }
}

impl From<Error> for PyErr {
    fn from(error: Error) -> Self {
        Python::attach(|py| {
            let m = mapping(&error);
            let class = match exception_class(py, m.class) {
                Ok(class) => class,
                Err(import_error) => return import_error,
            };
            let args = (
                error.to_string(),
                error.code(),
                m.error,
                m.description,
                m.status,
                m.check,
            );
            let py_error = match &error {
                // These classes take the `WWW-Authenticate` value as a 7th argument.
                Error::AccessTokenRejected(e) => {
                    let (message, code, oauth_error, description, status, check) = args;
                    let www_authenticate = Challenge::new(e).www_authenticate();
                    PyErr::from_type(
                        class,
                        (
                            message,
                            code,
                            oauth_error,
                            description,
                            status,
                            check,
                            www_authenticate,
                        ),
                    )
                }
                _ => PyErr::from_type(class, args),
            };
            if let Error::Storage { source, .. } = error {
                let cause = match source.downcast::<PythonError>() {
                    Ok(python) => python.0,
                    Err(other) => PyRuntimeError::new_err(other.to_string()),
                };
                py_error.set_cause(py, Some(cause));
            }
            py_error
        })
    }
}
