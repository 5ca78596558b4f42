//! `Operation`: one client call, a Rust future polled **in the caller's thread**.
//!
//! Python drives it (`python/logto_rs/_driver.py`): `step()` polls the future. Storage methods
//! are called synchronously inside that poll, so they run in the caller's thread and context
//! (where a Flask `session` lives). When a storage method returns an awaitable, `step()` hands
//! it back to the driver, which awaits it in the caller's task and passes the result to
//! `resume()`/`throw()`. When the future waits for the network, the driver waits on the
//! operation's wake-up file descriptor (`fileno()`, watched by the event loop) or on
//! `wait_blocking()` (releases the GIL); tokio's workers drive the I/O and wake the operation
//! by writing a byte to that descriptor. Neither user code nor any Python API is ever called
//! from a tokio worker, so a worker can never touch an interpreter that is finalizing.
//!
//! The runtime belongs to the process (see [`crate::process`]): a forked child builds its own,
//! and an operation inherited from the parent is never polled or dropped in the child.
//!
//! The wake-up descriptor is one end of a Unix socket pair on Unix. Elsewhere (Windows) it is
//! one end of a TCP connection over loopback (see [`wake_pipe`]), which `select()`-based event
//! loops watch the same way.

use std::cell::Cell;
use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use pyo3::PyTraverseError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use tokio::sync::Notify;

use crate::error::Result;
use crate::process::{self, PerProcess};

use wake_pipe::Stream;

/// The two connected ends of an operation's wake-up descriptor.
#[cfg(unix)]
mod wake_pipe {
    use std::os::unix::io::AsRawFd;

    pub(super) use std::os::unix::net::UnixStream as Stream;

    /// A connected pair: (read end, write end).
    pub(super) fn pair() -> std::io::Result<(Stream, Stream)> {
        Stream::pair()
    }

    /// The descriptor an event loop watches.
    pub(super) fn raw(stream: &Stream) -> i64 {
        i64::from(stream.as_raw_fd())
    }
}

/// The portable fallback where there is no `socketpair` (Windows): a TCP connection over
/// loopback, as Python's own `socket.socketpair` builds there.
#[cfg(not(unix))]
mod wake_pipe {
    use std::net::{Ipv4Addr, TcpListener};

    pub(super) use std::net::TcpStream as Stream;

    /// A connected pair: (read end, write end). The listener lives only until its one
    /// connection arrives, and a connection from anyone but the write end is refused.
    pub(super) fn pair() -> std::io::Result<(Stream, Stream)> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let writer = Stream::connect(listener.local_addr()?)?;
        loop {
            let (reader, peer) = listener.accept()?;
            if peer == writer.local_addr()? {
                writer.set_nodelay(true)?;
                return Ok((reader, writer));
            }
        }
    }

    /// The socket an event loop watches (a `SOCKET` handle; never above `i64::MAX` in practice,
    /// and `-1`, which every event loop refuses, if it were).
    pub(super) fn raw(stream: &Stream) -> i64 {
        use std::os::windows::io::AsRawSocket;
        i64::try_from(stream.as_raw_socket()).unwrap_or(-1)
    }
}

static RUNTIME: PerProcess<tokio::runtime::Runtime> = PerProcess::new();

/// This process's tokio runtime, which drives the I/O and timers of every operation.
pub(crate) fn runtime() -> PyResult<Arc<tokio::runtime::Runtime>> {
    RUNTIME.try_get(|_| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("logto-rs")
            .build()
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start the logto-rs runtime: {e}")))
    })
}

/// What a finished operation returns to Python.
pub(crate) enum Output {
    Bool(bool),
    Str(String),
    OptStr(Option<String>),
    /// A REST API answer: status, `Total-Number`, the JSON body's text.
    Api(u16, Option<u64>, String),
    /// Verified tokens: per token, its payload's JSON text or the error rejecting it.
    Verdicts(Vec<Result<String>>),
}

/// A token's verdict as Python sees it: its payload's JSON text, or the exception rejecting it
/// (a value, not raised).
pub(crate) fn verdict<'py>(py: Python<'py>, outcome: Result<&str>) -> Bound<'py, PyAny> {
    match outcome {
        Ok(payload) => PyString::new(py, payload).into_any(),
        Err(error) => PyErr::from(error).into_value(py).into_bound(py).into_any(),
    }
}

impl Output {
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match self {
            Self::OptStr(None) => py.None(),
            Self::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
            Self::Str(s) | Self::OptStr(Some(s)) => s.into_pyobject(py)?.into_any().unbind(),
            Self::Api(status, total, body) => (status, total, body).into_pyobject(py)?.into_any().unbind(),
            Self::Verdicts(outcomes) => PyList::new(
                py,
                outcomes.into_iter().map(|outcome| match outcome {
                    Ok(payload) => verdict(py, Ok(&payload)),
                    Err(error) => verdict(py, Err(error)),
                }),
            )?
            .into_any()
            .unbind(),
        })
    }
}

pub(crate) type BoxedFuture = Pin<Box<dyn Future<Output = Result<Output>> + Send>>;

/// The hand-over point between a storage call inside the future and the Python driver. It holds
/// every Python object the operation holds: the storage (or replay store) its future calls, and
/// the awaitable or result in transit, so that the operation's `__traverse__` and `__clear__`
/// reach them all.
#[derive(Default)]
pub(crate) struct Exchange {
    slot: Mutex<Slot>,
    storage: Mutex<Option<Py<PyAny>>>,
    must_finish: AtomicBool,
}

#[derive(Default)]
enum Slot {
    #[default]
    Idle,
    /// An awaitable the driver must await.
    Outgoing(Py<PyAny>),
    /// Handed to the driver; its result has not arrived.
    Awaiting,
    /// The awaitable's outcome: its result, or the exception it raised.
    Delivered(std::result::Result<Py<PyAny>, Py<PyAny>>),
}

impl Exchange {
    /// The exchange of an operation whose future calls the Python object `storage`.
    pub(crate) fn with_storage(storage: Py<PyAny>) -> Self {
        Self {
            storage: Mutex::new(Some(storage)),
            ..Self::default()
        }
    }

    /// The storage object; `None` once the garbage collector has cleared the operation.
    pub(crate) fn storage<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        let storage = self.storage.lock().ok()?;
        storage.as_ref().map(|object| object.bind(py).clone())
    }

    /// Visits the Python objects held (what is locked at this moment is not visited: the
    /// collector then sees them as referenced from outside and keeps them).
    fn traverse(&self, visit: &PyVisit<'_>) -> std::result::Result<(), PyTraverseError> {
        if let Ok(storage) = self.storage.try_lock() {
            visit.call(storage.as_ref())?;
        }
        if let Ok(slot) = self.slot.try_lock() {
            match &*slot {
                Slot::Outgoing(object) | Slot::Delivered(Ok(object) | Err(object)) => visit.call(object)?,
                Slot::Idle | Slot::Awaiting => {}
            }
        }
        Ok(())
    }

    /// Lets go of the Python objects held (the collector breaks a reference cycle through the
    /// operation). They are dropped once the locks are released: their finalizers may run.
    /// Never waits: a lock left held by a fork keeps what it guards.
    fn clear(&self) {
        let storage = self
            .storage
            .try_lock()
            .ok()
            .and_then(|mut storage| storage.take());
        let slot = self
            .slot
            .try_lock()
            .ok()
            .map(|mut slot| std::mem::take(&mut *slot));
        drop((storage, slot));
    }

    /// Marks the operation as past its point of no return (see `Storage::must_finish`).
    pub(crate) fn set_must_finish(&self) {
        self.must_finish.store(true, Ordering::Release);
    }

    /// Called by a storage call that got an awaitable.
    pub(crate) fn send(&self, awaitable: Py<PyAny>) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Slot::Outgoing(awaitable);
        }
    }

    /// Called by a storage call on its next poll: the outcome, once delivered.
    pub(crate) fn take_delivered(&self) -> Option<PyResult<Py<PyAny>>> {
        let outcome = {
            let mut slot = self.slot.lock().ok()?;
            match std::mem::take(&mut *slot) {
                Slot::Delivered(outcome) => outcome,
                other => {
                    *slot = other;
                    return None;
                }
            }
        };
        Some(outcome.map_err(|exception| Python::attach(|py| PyErr::from_value(exception.into_bound(py)))))
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

    fn deliver(&self, outcome: std::result::Result<Py<PyAny>, Py<PyAny>>) -> PyResult<()> {
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

/// Wakes the driver: a permit for `wait_blocking()`, and a byte on the wake-up descriptor for
/// an event loop. Called from tokio's workers: it touches no Python object.
#[derive(Default)]
struct WakeSignal {
    notify: Notify,
    /// Set by every wake-up, cleared before each poll.
    woken: AtomicBool,
    writer: Mutex<Option<Stream>>,
}

impl Wake for WakeSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.notify.notify_one();
        if let Ok(writer) = self.writer.lock()
            && let Some(mut writer) = writer.as_ref()
        {
            // A full socket buffer already holds a wake-up: nothing is lost.
            let _ = writer.write(&[1]);
        }
    }
}

/// How long `wait_blocking()` waits before it lets Python's signal handlers run.
const SIGNAL_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

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
    reader: Mutex<Option<Stream>>,
    pid: u32,
}

impl PyOperation {
    pub(crate) fn new(future: BoxedFuture, exchange: Arc<Exchange>) -> Self {
        Self {
            future: Mutex::new(Some(future)),
            exchange,
            signal: Arc::new(WakeSignal::default()),
            reader: Mutex::new(None),
            pid: process::id(),
        }
    }
}

impl Drop for PyOperation {
    fn drop(&mut self) {
        if self.pid != process::id() {
            // Inherited from the parent: its sockets are registered in the parent's epoll,
            // which this process shares. Dropping them here would deregister the parent's.
            if let Ok(future) = self.future.get_mut() {
                std::mem::forget(future.take());
            }
            return;
        }
        // Release a driver still parked in wait_blocking() (its thread gave up on it).
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
        if self.pid != process::id() {
            return Err(PyRuntimeError::new_err(
                "this operation was started before the process forked; start it again in this process",
            ));
        }
        self.signal.woken.store(false, Ordering::SeqCst);
        let waker = Waker::from(self.signal.clone());
        let runtime = runtime()?;
        let poll = {
            let _runtime = runtime.enter();
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

    fn __traverse__(&self, visit: PyVisit<'_>) -> std::result::Result<(), PyTraverseError> {
        self.exchange.traverse(&visit)
    }

    fn __clear__(&self) {
        self.exchange.clear();
    }

    /// Delivers the result of the awaitable handed out by `step()`.
    fn resume(&self, value: Py<PyAny>) -> PyResult<()> {
        self.exchange.deliver(Ok(value))
    }

    /// Delivers the exception raised by the awaitable handed out by `step()`.
    fn throw(&self, exception: Bound<'_, PyAny>) -> PyResult<()> {
        self.exchange.deliver(Err(exception.unbind()))
    }

    /// Whether the operation has passed its point of no return: a driver whose caller is
    /// cancelled must then run it to its end (and raise the cancellation afterwards).
    #[getter]
    fn must_finish(&self) -> bool {
        self.exchange.must_finish.load(Ordering::Acquire)
    }

    /// A file descriptor that becomes readable when the operation can make progress: an event
    /// loop watches it (`loop.add_reader`) and calls `drain_wakes()` when it is readable. It is
    /// the operation's own, closed when the operation is dropped.
    fn fileno(&self) -> PyResult<i64> {
        let mut reader = self
            .reader
            .lock()
            .map_err(|_| PyRuntimeError::new_err("operation state poisoned"))?;
        if let Some(reader) = reader.as_ref() {
            return Ok(wake_pipe::raw(reader));
        }
        let (read_end, write_end) = wake_pipe::pair()?;
        read_end.set_nonblocking(true)?;
        write_end.set_nonblocking(true)?;
        let fd = wake_pipe::raw(&read_end);
        let mut writer = self
            .signal
            .writer
            .lock()
            .map_err(|_| PyRuntimeError::new_err("operation state poisoned"))?;
        // A wake-up since the last poll, before the descriptor existed, must not be lost.
        if self.signal.woken.load(Ordering::SeqCst) {
            let _ = (&write_end).write(&[1]);
        }
        *writer = Some(write_end);
        *reader = Some(read_end);
        Ok(fd)
    }

    /// Empties the wake-up descriptor (after the event loop saw it readable).
    fn drain_wakes(&self) -> PyResult<()> {
        let reader = self
            .reader
            .lock()
            .map_err(|_| PyRuntimeError::new_err("operation state poisoned"))?;
        if let Some(mut reader) = reader.as_ref() {
            let mut buffer = [0_u8; 64];
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Blocks (without the GIL) until the operation can make progress, or for at most
    /// [`SIGNAL_CHECK`]: then the signal handlers run (Ctrl-C raises `KeyboardInterrupt` here)
    /// and the driver polls again, which costs nothing when the operation is still waiting.
    fn wait_blocking(&self, py: Python<'_>) -> PyResult<()> {
        let signal = self.signal.clone();
        let runtime = runtime()?;
        py.detach(move || {
            runtime.block_on(async {
                let _ = tokio::time::timeout(SIGNAL_CHECK, signal.notify.notified()).await;
            });
        });
        py.check_signals()
    }
}
