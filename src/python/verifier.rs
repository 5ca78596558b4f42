//! `CoreVerifier`: the crate's [`AccessTokenVerifier`] for Python.
//!
//! With the keys cached, `verify` and `verify_many` answer synchronously, doing the crypto
//! without the GIL (a batch is spread over the cores). When the keys must be loaded (or an
//! opaque token introspected) they answer `None`; the facade then runs `settle()` (an
//! `Operation`, awaited or blocking): the crate's one verification sequence.

use std::borrow::Cow;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use super::convert::{seconds, settings};
use super::operation::{Exchange, Output, PyOperation, verdict};
use crate::error::{Error, Result, ValidationError};
use crate::jwk::{Algorithm, VerifyingKey, allowed_algorithm};
use crate::jwt::{ClaimChecks, MAX_TOKEN_BYTES, TokenKind, check_payload};
use crate::secret::ClientSecret;
use crate::verifier::{
    AccessTokenVerifier, CacheLimits, DEFAULT_CACHE_LIMITS, DEFAULT_ROLES_CLAIM, IntrospectionLimits,
    Requirements, VerifiedAccessToken,
};

/// The token's text, or why it cannot be a token, without copying an oversized string.
fn token_text<'a>(token: &'a Bound<'_, PyString>) -> std::result::Result<Cow<'a, str>, ValidationError> {
    // Characters never outnumber UTF-8 bytes, so this rejects what `jwt::parse` would.
    if token.len().map_or(true, |chars| chars > MAX_TOKEN_BYTES) {
        return Err(ValidationError::Malformed("the token is too large"));
    }
    token
        .to_cow()
        .map_err(|_| ValidationError::Malformed("the token is not valid text"))
}

fn payload<'py>(py: Python<'py>, verified: &VerifiedAccessToken) -> Bound<'py, PyString> {
    PyString::new(py, verified.payload())
}

#[pyclass(name = "CoreVerifier", module = "logto_rs._core", frozen)]
pub(crate) struct PyCoreVerifier {
    verifier: AccessTokenVerifier,
}

#[pymethods]
impl PyCoreVerifier {
    #[new]
    #[pyo3(signature = (endpoint, audience=None, *, scopes=Vec::new(), organization_id=None,
        clock_tolerance=60.0, jwks_refetch_cooldown=30.0, request_timeout=10.0, connect_timeout=5.0,
        allow_insecure_http=false, cache_size=4096,
        cache_ttl=300.0, allow_impersonation=true,
        introspect_with=None, introspection_ttl=30.0, introspection_clients=Vec::new(),
        introspection_negative_ttl=60.0, introspection_rate_limit=Some(50.0)))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        endpoint: String,
        audience: Option<String>,
        scopes: Vec<String>,
        organization_id: Option<String>,
        clock_tolerance: f64,
        jwks_refetch_cooldown: f64,
        request_timeout: f64,
        connect_timeout: f64,
        allow_insecure_http: bool,
        cache_size: usize,
        cache_ttl: f64,
        allow_impersonation: bool,
        introspect_with: Option<(String, String)>,
        introspection_ttl: f64,
        introspection_clients: Vec<String>,
        introspection_negative_ttl: f64,
        introspection_rate_limit: Option<f64>,
    ) -> Result<Self> {
        let cache_ttl = seconds("cacheTtl", cache_ttl)?;
        let mut builder = AccessTokenVerifier::builder(endpoint, audience)
            .scopes(scopes)
            .organization_id(organization_id)
            .cache(CacheLimits {
                max_entries: cache_size,
                max_age: cache_ttl,
                ..DEFAULT_CACHE_LIMITS
            })
            .allow_impersonation(allow_impersonation);
        if let Some((client_id, secret)) = introspect_with {
            let ttl = seconds("introspectionTtl", introspection_ttl)?;
            builder = builder
                .introspection(client_id, ClientSecret::new(secret), ttl)
                .introspection_clients(introspection_clients)
                .introspection_limits(IntrospectionLimits {
                    negative_ttl: seconds("introspectionNegativeTtl", introspection_negative_ttl)?,
                    calls_per_second: introspection_rate_limit,
                });
        }
        let verifier = builder
            .settings(settings(
                request_timeout,
                connect_timeout,
                clock_tolerance,
                jwks_refetch_cooldown,
                allow_insecure_http,
            )?)
            .build()?;
        Ok(Self { verifier })
    }

    /// The issuer tokens must carry.
    #[getter]
    fn issuer(&self) -> &str {
        self.verifier.issuer()
    }

    /// The configured audience, or `None` (organization tokens).
    #[getter]
    fn audience(&self) -> Option<&str> {
        self.verifier.audience()
    }

    /// The scopes every token must have.
    #[getter]
    fn scopes(&self) -> Vec<String> {
        self.verifier.scopes().to_vec()
    }

    /// The organization every token must be for, or `None`.
    #[getter]
    fn organization_id(&self) -> Option<&str> {
        self.verifier.organization_id()
    }

    /// Whether tokens with an actor (`act`) are accepted.
    #[getter]
    fn allow_impersonation(&self) -> bool {
        self.verifier.allows_impersonation()
    }

    /// Most verified tokens cached (0: no cache).
    #[getter]
    fn cache_size(&self) -> usize {
        self.verifier.cache_limits().max_entries
    }

    /// Whether opaque tokens are introspected.
    #[getter]
    fn introspects(&self) -> bool {
        self.verifier.introspects()
    }

    /// A rejection the facades answer without a token to check, as the exception to raise:
    /// `missing` (no bearer token: 401 with a bare `Bearer` challenge) or `claims` (a verified
    /// payload that does not fit `AccessTokenClaims`: 401).
    #[staticmethod]
    fn rejection<'py>(py: Python<'py>, check: &str) -> Result<Bound<'py, PyAny>> {
        let error = match check {
            "missing" => ValidationError::MissingToken,
            "claims" => ValidationError::ClaimsModel,
            other => return Err(Error::Config(format!("no rejection is named {other:?}"))),
        };
        Ok(verdict(py, Err(Error::AccessTokenRejected(error))))
    }

    /// Moves this verifier's clock by `seconds` (tests only: tokens expire without waiting).
    fn _shift_clock(&self, seconds: i64) {
        self.verifier.shift_clock(seconds);
    }

    /// Verifies one token with the cached keys, the crypto without the GIL: the payload's JSON
    /// text, or `None` when the keys must be loaded (or the token introspected) first: then
    /// `settle` decides it. A missing token (`None`) is rejected (check `missing`).
    #[pyo3(signature = (token, scopes=None, organization_id=None, roles=None, roles_claim=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        token: Option<&Bound<'py, PyString>>,
        scopes: Option<Vec<String>>,
        organization_id: Option<String>,
        roles: Option<Vec<String>>,
        roles_claim: Option<String>,
    ) -> Result<Option<Bound<'py, PyString>>> {
        let token = token.ok_or(Error::AccessTokenRejected(ValidationError::MissingToken))?;
        let text = token_text(token).map_err(Error::AccessTokenRejected)?;
        let demands = Demands::new(scopes, organization_id, roles, roles_claim);
        let requirements = demands.requirements();
        let verifier = &self.verifier;
        let outcome = py.detach(|| verifier.verify_cached(&text, &requirements));
        outcome
            .transpose()
            .map(|verified| verified.map(|v| payload(py, &v)))
    }

    /// Verifies many tokens with the cached keys, spread over the cores without the GIL. One
    /// entry per token: the payload's JSON text, the exception it was rejected with, or `None`
    /// when it needs `settle`.
    #[pyo3(signature = (tokens, scopes=None, organization_id=None, roles=None, roles_claim=None))]
    fn verify_many<'py>(
        &self,
        py: Python<'py>,
        tokens: Vec<Bound<'py, PyString>>,
        scopes: Option<Vec<String>>,
        organization_id: Option<String>,
        roles: Option<Vec<String>>,
        roles_claim: Option<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut unreadable = Vec::new();
        let texts: Vec<Cow<'_, str>> = tokens
            .iter()
            .enumerate()
            .map(|(index, token)| {
                token_text(token).unwrap_or_else(|e| {
                    unreadable.push((index, e));
                    Cow::Borrowed("")
                })
            })
            .collect();
        let demands = Demands::new(scopes, organization_id, roles, roles_claim);
        let requirements = demands.requirements();
        let verifier = &self.verifier;
        let mut outcomes = py.detach(|| verifier.verify_many_cached(&texts, &requirements));
        for (index, error) in unreadable {
            if let Some(slot) = outcomes.get_mut(index) {
                *slot = Some(Err(Error::AccessTokenRejected(error)));
            }
        }
        let items = outcomes.into_iter().map(|outcome| match outcome {
            None => py.None().into_bound(py),
            Some(Ok(verified)) => verdict(py, Ok(verified.payload())),
            Some(Err(error)) => verdict(py, Err(error)),
        });
        PyList::new(py, items)
    }

    /// Decides the tokens `verify`/`verify_many` left undecided: the verifier's one sequence
    /// (introspect the opaque ones, load the keys once for the others, verify them again). An
    /// `Operation` whose result has one entry per token: the payload's JSON text or the
    /// exception rejecting it (the key-loading error for the tokens that needed keys).
    #[pyo3(signature = (tokens, scopes=None, organization_id=None, roles=None, roles_claim=None))]
    fn settle(
        &self,
        tokens: Vec<String>,
        scopes: Option<Vec<String>>,
        organization_id: Option<String>,
        roles: Option<Vec<String>>,
        roles_claim: Option<String>,
    ) -> PyOperation {
        let verifier = self.verifier.clone();
        let demands = Demands::new(scopes, organization_id, roles, roles_claim);
        let future = async move {
            let outcomes = verifier.verify_many(&tokens, &demands.requirements()).await;
            Ok(Output::Verdicts(
                outcomes
                    .into_iter()
                    .map(|outcome| outcome.map(VerifiedAccessToken::into_payload))
                    .collect(),
            ))
        };
        PyOperation::new(Box::pin(future), Arc::new(Exchange::default()))
    }
}

/// A call's requirements, owned (they cross into an `Operation`).
struct Demands {
    scopes: Vec<String>,
    organization_id: Option<String>,
    roles: Vec<String>,
    roles_claim: Option<String>,
}

impl Demands {
    fn new(
        scopes: Option<Vec<String>>,
        organization_id: Option<String>,
        roles: Option<Vec<String>>,
        roles_claim: Option<String>,
    ) -> Self {
        Self {
            scopes: scopes.unwrap_or_default(),
            organization_id,
            roles: roles.unwrap_or_default(),
            roles_claim,
        }
    }

    fn requirements(&self) -> Requirements<'_> {
        Requirements {
            scopes: &self.scopes,
            organization_id: self.organization_id.as_deref(),
            roles: &self.roles,
            roles_claim: self.roles_claim.as_deref().unwrap_or(DEFAULT_ROLES_CLAIM),
        }
    }
}

/// The benchmarks' floor: the bare signature check with a key parsed once, as the verifier
/// does it, and nothing else (no parsing, no claims, the GIL held). Not part of the API.
#[pyclass(name = "_BenchBareVerifier", module = "logto_rs._core", frozen)]
pub(crate) struct PyBenchBareVerifier {
    key: VerifyingKey,
    alg: Algorithm,
}

#[pymethods]
impl PyBenchBareVerifier {
    /// A key from a JWK (JSON text) that pins its `alg`.
    #[new]
    fn new(jwk: &str) -> Result<Self> {
        let jwk: serde_json::Value =
            serde_json::from_str(jwk).map_err(|e| Error::Config(format!("not a JWK: {e}")))?;
        let alg = jwk
            .get("alg")
            .and_then(serde_json::Value::as_str)
            .and_then(allowed_algorithm)
            .ok_or_else(|| Error::Config("the JWK must pin an allowed alg".into()))?;
        let key = VerifyingKey::from_jwk(&jwk).ok_or_else(|| Error::Config("unusable JWK".into()))?;
        Ok(Self { key, alg })
    }

    /// Whether `signature` (raw bytes) verifies over `message`.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify(self.alg, message, signature)
    }
}

/// The claim checks of a verified token, on a payload alone: `None` when it passes, else the
/// failed check's name. The property tests use it to prove the models accept every payload the
/// checks accept. Not part of the API.
#[pyfunction]
#[pyo3(name = "_check_claims")]
pub(crate) fn check_claims(
    payload: &str,
    id_token: bool,
    issuer: &str,
    audience: &str,
    now: u64,
) -> Option<&'static str> {
    let checks = ClaimChecks {
        issuer,
        audience,
        authorized_party: id_token.then_some(audience),
        nonce: None,
        now,
        leeway: 60,
    };
    let kind = if id_token {
        TokenKind::IdToken
    } else {
        TokenKind::AccessToken
    };
    check_payload(payload, &checks, kind).err().map(|e| e.check())
}
