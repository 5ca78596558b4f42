//! Per-key lanes: at most one request per key at a time, and a request that runs to completion
//! even when the caller that started it is cancelled.
//!
//! The refresh coordinator ([`crate::refresh`]) keys its lanes by refresh token, the machine-token
//! cache ([`crate::machine`]) by what the token is for; both take a lane, look again at what they
//! cached while they queued, and only then send a request with [`run_in_lane`].

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use crate::error::{Error, Result};

/// Held while a key's request is in flight; dropping it lets the next caller in.
pub(crate) type LaneGuard = OwnedMutexGuard<()>;

/// One async lane per key. Lanes nobody holds or waits for are dropped.
pub(crate) struct Lanes<K> {
    lanes: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K> Default for Lanes<K> {
    fn default() -> Self {
        Self {
            lanes: Mutex::new(HashMap::new()),
        }
    }
}

pub(crate) fn poisoned(what: &str) -> Error {
    Error::Config(format!("the {what}'s lock is poisoned"))
}

impl<K: Eq + Hash + Clone> Lanes<K> {
    /// Waits until `key`'s lane is free and takes it.
    ///
    /// # Errors
    /// [`Error::Config`] if the lane map's lock is poisoned.
    pub(crate) async fn enter(&self, key: &K) -> Result<LaneGuard> {
        let lane = {
            let mut lanes = self.lanes.lock().map_err(|_| poisoned("lane map"))?;
            lanes.retain(|_, lane| Arc::strong_count(lane) > 1);
            lanes.entry(key.clone()).or_default().clone()
        };
        Ok(lane.lock_owned().await)
    }
}

/// Runs `work` in a task of its own that holds `guard` until `work` is done (including whatever
/// it records), so a cancelled caller can neither abandon the request halfway nor free the lane
/// before the result is recorded.
///
/// # Errors
/// `work`'s error; [`Error::Config`] if the runtime cancelled the task.
pub(crate) async fn run_in_lane<T, Fut>(guard: LaneGuard, work: Fut) -> Result<T>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let task = tokio::spawn(async move {
        let result = work.await;
        drop(guard);
        result
    });
    task.await
        .map_err(|_| Error::Config("the request task was cancelled by the runtime".into()))?
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_holder_per_key_at_a_time() {
        let lanes = Arc::new(Lanes::<&'static str>::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (lanes, inside) = (lanes.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let guard = lanes.enter(&"key").await.unwrap();
                run_in_lane(guard, async move {
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders of one lane"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // Every lane is free again, and pruned on the next entry.
        let guard = lanes.enter(&"other").await.unwrap();
        assert_eq!(lanes.lanes.lock().unwrap().len(), 1);
        drop(guard);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_work_outlives_a_cancelled_caller_and_keeps_the_lane() {
        let lanes = Arc::new(Lanes::<&'static str>::default());
        let done = Arc::new(AtomicUsize::new(0));
        let caller = {
            let (lanes, done) = (lanes.clone(), done.clone());
            tokio::spawn(async move {
                let guard = lanes.enter(&"key").await.unwrap();
                run_in_lane(guard, async move {
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    done.store(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        caller.abort();
        // The next holder of the lane only gets in once the abandoned work has finished.
        let _guard = lanes.enter(&"key").await.unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}
