//! State that belongs to one operating-system process: runtimes, connection pools, locks held by
//! tasks. After `fork()` none of it is usable in the child.
//!
//! A tokio runtime does not survive a fork: its worker threads are gone in the child, and the
//! child shares the parent's epoll instance, so registering or deregistering a socket there moves
//! the parent's I/O events (a parent crashed with SIGSEGV that way). A lock held by a task or a
//! thread at fork time stays held forever in the child. [`PerProcess`] holds such state and
//! builds it anew, lazily, the first time a process other than the one that built it asks; the
//! old value is never dropped in the child (dropping it would deregister the parent's sockets
//! from the shared epoll), it is leaked instead. Plain-data caches carry over through the `make`
//! function, which sees the previous process's value.
//!
//! The check compares process ids, so it needs no fork hook and also covers forks made behind
//! Python's back.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

/// The id of the calling process.
#[must_use]
pub fn id() -> u32 {
    std::process::id()
}

struct Slot<T> {
    pid: u32,
    value: Arc<T>,
}

/// A value built once per process.
pub struct PerProcess<T> {
    slot: ArcSwapOption<Slot<T>>,
}

impl<T> Default for PerProcess<T> {
    fn default() -> Self {
        Self {
            slot: ArcSwapOption::const_empty(),
        }
    }
}

impl<T> std::fmt::Debug for PerProcess<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerProcess").finish_non_exhaustive()
    }
}

impl<T> PerProcess<T> {
    /// An empty holder; usable in a `static`.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            slot: ArcSwapOption::const_empty(),
        }
    }

    /// The value for this process: the one built here before, or `make(previous)` where
    /// `previous` is the value another process (the parent) built, if any.
    pub fn get(&self, make: impl FnOnce(Option<&T>) -> T) -> Arc<T> {
        self.try_get(|previous| Ok::<_, std::convert::Infallible>(make(previous)))
            .unwrap_or_else(|never| match never {})
    }

    /// [`get`](Self::get) with a fallible `make`; a failure is returned and nothing is stored.
    ///
    /// # Errors
    /// `make`'s error.
    pub fn try_get<E>(&self, make: impl FnOnce(Option<&T>) -> Result<T, E>) -> Result<Arc<T>, E> {
        let pid = id();
        let current = self.slot.load_full();
        if let Some(slot) = &current
            && slot.pid == pid
        {
            return Ok(slot.value.clone());
        }
        let fresh = Arc::new(Slot {
            pid,
            value: Arc::new(make(current.as_ref().map(|slot| &*slot.value))?),
        });
        let value = fresh.value.clone();
        let previous = self.slot.compare_and_swap(&current, Some(fresh));
        let won = match (&*previous, &current) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !won {
            // Another thread of this process stored its value first: use that one.
            if let Some(winner) = &*self.slot.load()
                && winner.pid == pid
            {
                return Ok(winner.value.clone());
            }
            return Ok(value);
        }
        if let Some(old) = current
            && old.pid != pid
        {
            // The parent's value: never dropped here.
            std::mem::forget(old);
        }
        Ok(value)
    }

    /// Whether this process already built its value.
    #[must_use]
    pub fn is_built_here(&self) -> bool {
        self.slot.load().as_ref().is_some_and(|slot| slot.pid == id())
    }
}

impl<T> Drop for PerProcess<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.swap(None)
            && slot.pid != id()
        {
            std::mem::forget(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn built_once_per_process_and_shared_between_threads() {
        let holder = Arc::new(PerProcess::<usize>::new());
        let builds = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (holder, builds) = (holder.clone(), builds.clone());
                std::thread::spawn(move || {
                    *holder.get(|previous| {
                        assert!(previous.is_none());
                        builds.fetch_add(1, Ordering::SeqCst);
                        7
                    })
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 7);
        }
        // Racing builders may each build one, but every caller sees the one that was stored.
        assert!(builds.load(Ordering::SeqCst) >= 1);
        assert!(holder.is_built_here());
        assert_eq!(*holder.get(|_| 8), 7);
    }

    #[test]
    fn a_failed_build_stores_nothing() {
        let holder = PerProcess::<u8>::new();
        assert!(holder.try_get(|_| Err::<u8, _>("no")).is_err());
        assert!(!holder.is_built_here());
        assert_eq!(*holder.get(|_| 1), 1);
    }
}
