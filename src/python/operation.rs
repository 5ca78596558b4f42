//! `Operation`: one client call, a Rust future polled **in the caller's thread**.
//!
//! Python drives it (`python/logto_rs/_driver.py`): `step()` polls the future. Storage methods
//! are called synchronously inside that poll, so they run in the caller's thread and context
//! (where a Flask `session` lives). When a storage method returns an awaitable, `step()` hands
//! it back to the driver, which awaits it in the caller's task and passes the result to
//! `resume()`/`throw()`. When the future waits for the network, the driver waits on `wait()`
//! (an asyncio awaitable) or `wait_blocking()` (releases the GIL); tokio's workers drive the I/O
//! and wake the operation. User code is never called from a tokio worker.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::sync::Notify;

use crate::error::Result;

/// What a finished operation returns to Python.
pub(crate) enum Output {
    Bool(bool),
    Str(String),
    OptStr(Option<String>),
}

impl Output {
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match self {
            Self::OptStr(None) => py.None(),
            Self::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
            Self::Str(s) | Self::OptStr(Some(s)) => s.into_pyobject(py)?.into_any().unbind(),
        })
    }
}

pub(crate) type BoxedFuture = Pin<Box<dyn Future<Output = Result<Output>> + Send>>;

/// The hand-over point between a storage call inside the future and the Python driver.
#[derive(Default)]
pub(crate) struct Exchange {
    slot: Mutex<Slot>,
}

#[derive(Default)]
enum Slot {
    #[default]
    Idle,
    /// An awaitable the driver must await.
    Outgoing(Py<PyAny>),
    /// Handed to the driver; its result has not arrived.
    Awaiting,
    /// The awaitable's outcome.
    Delivered(PyResult<Py<PyAny>>),
}

impl Exchange {
    /// Called by a storage call that got an awaitable.
    pub(crate) fn send(&self, awaitable: Py<PyAny>) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Slot::Outgoing(awaitable);
        }
    }

    /// Called by a storage call on its next poll: the outcome, once delivered.
    pub(crate) fn take_delivered(&self) -> Option<PyResult<Py<PyAny>>> {
        let mut slot = self.slot.lock().ok()?;
        match std::mem::take(&mut *slot) {
            Slot::Delivered(outcome) => Some(outcome),
            other => {
                *slot = other;
                None
            }
        }
    }

    fn take_outgoing(&self) -> Option<Py<PyAny>> {
        let mut slot = self.slot.lock().ok()?;
        match std::mem::take(&mut *slot) {
            Slot::Outgoing(awaitable) => {
                *slot = Slot::Awaiting;
                Some(awaitable)
            }
            other => {
                *slot = other;
                None
            }
        }
    }

    fn deliver(&self, outcome: PyResult<Py<PyAny>>) -> PyResult<()> {
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| PyRuntimeError::new_err("operation state poisoned"))?;
        if !matches!(*slot, Slot::Awaiting) {
            return Err(PyRuntimeError::new_err(
                "the operation is not waiting for a storage result",
            ));
        }
        *slot = Slot::Delivered(outcome);
        Ok(())
    }
}

thread_local! {
    static POLLING_IN_CALLER: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is inside `Operation.step()`, i.e. the caller's thread.
pub(crate) fn polling_in_caller() -> bool {
    POLLING_IN_CALLER.with(Cell::get)
}

struct CallerPoll;

impl CallerPoll {
    fn enter() -> Self {
        POLLING_IN_CALLER.with(|flag| flag.set(true));
        Self
    }
}

impl Drop for CallerPoll {
    fn drop(&mut self) {
        POLLING_IN_CALLER.with(|flag| flag.set(false));
    }
}

/// Wakes the driver: a permit that `wait()`/`wait_blocking()` consume.
#[derive(Default)]
struct WakeSignal {
    notify: Notify,
}

impl Wake for WakeSignal {
    fn wake(self: Arc<Self>) {
        self.notify.notify_one();
    }
}

/// `step()` result kinds (kept in sync with `_driver.py`).
const DONE: u8 = 0;
const AWAIT: u8 = 1;
const WAIT: u8 = 2;

/// One client call in progress. Not shared between threads by the driver; guarded anyway.
#[pyclass(name = "Operation", module = "logto_rs._core", frozen)]
pub(crate) struct PyOperation {
    future: Mutex<Option<BoxedFuture>>,
    exchange: Arc<Exchange>,
    signal: Arc<WakeSignal>,
}

impl PyOperation {
    pub(crate) fn new(future: BoxedFuture, exchange: Arc<Exchange>) -> Self {
        Self {
            future: Mutex::new(Some(future)),
            exchange,
            signal: Arc::new(WakeSignal::default()),
        }
    }
}

impl Drop for PyOperation {
    fn drop(&mut self) {
        // Release a driver still parked in wait() (its task was cancelled).
        self.signal.notify.notify_one();
    }
}

#[pymethods]
impl PyOperation {
    /// Polls the operation once in this thread: `(0, result)` when done, `(1, awaitable)` when a
    /// storage awaitable must be awaited, `(2, None)` when waiting for the network.
    fn step(&self, py: Python<'_>) -> PyResult<(u8, Py<PyAny>)> {
        let mut guard = self
            .future
            .try_lock()
            .map_err(|_| PyRuntimeError::new_err("the operation is being driven by another caller"))?;
        let Some(future) = guard.as_mut() else {
            return Err(PyRuntimeError::new_err("the operation has already finished"));
        };
        let waker = Waker::from(self.signal.clone());
        let poll = {
            let _runtime = pyo3_async_runtimes::tokio::get_runtime().enter();
            let _caller = CallerPoll::enter();
            future.as_mut().poll(&mut Context::from_waker(&waker))
        };
        match poll {
            Poll::Ready(result) => {
                *guard = None;
                Ok((DONE, result?.into_py(py)?))
            }
            Poll::Pending => match self.exchange.take_outgoing() {
                Some(awaitable) => Ok((AWAIT, awaitable)),
                None => Ok((WAIT, py.None())),
            },
        }
    }

    /// Delivers the result of the awaitable handed out by `step()`.
    fn resume(&self, value: Py<PyAny>) -> PyResult<()> {
        self.exchange.deliver(Ok(value))
    }

    /// Delivers the exception raised by the awaitable handed out by `step()`.
    fn throw(&self, exception: Bound<'_, PyAny>) -> PyResult<()> {
        self.exchange.deliver(Err(PyErr::from_value(exception)))
    }

    /// An asyncio awaitable that completes when the operation can make progress.
    fn wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let signal = self.signal.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            signal.notify.notified().await;
            Ok(())
        })
    }

    /// Blocks (without the GIL) until the operation can make progress.
    fn wait_blocking(&self, py: Python<'_>) {
        let signal = self.signal.clone();
        py.detach(move || futures::executor::block_on(signal.notify.notified()));
    }
}
