//! The Python binding: `logto_rs._core`. Registers the classes and nothing else; the protocol
//! lives in the crate, the Pythonic API in `python/logto_rs/`.

mod api;
mod client;
mod context;
mod convert;
mod errors;
mod machine;
mod operation;
mod storage;
mod verifier;

use pyo3::prelude::*;

#[pymodule(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<client::PyCoreClient>()?;
    m.add_class::<operation::PyOperation>()?;
    m.add_class::<machine::PyMachineClient>()?;
    // The access-token verifier, the benchmarks' bare signature check, and the claim checks
    // alone (for the property tests).
    m.add_class::<verifier::PyCoreVerifier>()?;
    m.add_class::<verifier::PyBenchBareVerifier>()?;
    m.add_function(wrap_pyfunction!(verifier::check_claims, m)?)?;
    Ok(())
}
