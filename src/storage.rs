//! Where a user's session lives: the [`Storage`] trait, an in-memory implementation, and the
//! all-or-nothing write used to commit a sign-in, a callback or a sign-out.
//!
//! Values are strings, keys are the four [`StorageKey`]s, as in Logto's official SDKs. A storage
//! holds one user's session; a server keeps one storage per browser session.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{BoxError, Error, Result};

/// The keys this client reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StorageKey {
    /// The verified ID token of the signed-in user.
    IdToken,
    /// The refresh token.
    RefreshToken,
    /// JSON map of cached access tokens, keyed by resource (or organization audience).
    AccessTokenMap,
    /// JSON of the sign-in in progress (redirect URI, PKCE verifier, state, nonce).
    SignInSession,
}

impl StorageKey {
    /// Every key, in a fixed order.
    pub const ALL: [Self; 4] = [
        Self::IdToken,
        Self::RefreshToken,
        Self::AccessTokenMap,
        Self::SignInSession,
    ];

    /// The key's name in the storage (`idToken`, `refreshToken`, `accessTokenMap`, `signInSession`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdToken => "idToken",
            Self::RefreshToken => "refreshToken",
            Self::AccessTokenMap => "accessTokenMap",
            Self::SignInSession => "signInSession",
        }
    }
}

/// The outcome of [`Storage::try_lock`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockAttempt {
    /// The lock is ours; release it with this owner token.
    Acquired(String),
    /// Someone else holds it.
    Busy,
    /// This storage has no locks: the session is coordinated within this process only.
    Unsupported,
}

/// A session store. Implementations decide where values live (memory, a cookie session, Redis).
///
/// Methods may be called concurrently for different users, never concurrently on the same
/// storage by one client operation.
///
/// Beyond `get`/`set`/`delete`, a storage may offer two capabilities, both with defaults that
/// do nothing:
/// - a session lock ([`try_lock`](Self::try_lock), [`unlock`](Self::unlock)) that holds across
///   processes and hosts, so a session shared by several workers is refreshed by one at a time;
/// - a session id that can be rotated ([`rotate_id`](Self::rotate_id)), which server-side
///   storages use against session fixation.
pub trait Storage: Send + Sync {
    /// The value under `key`, or `None`.
    fn get(&self, key: StorageKey) -> impl Future<Output = Result<Option<String>, BoxError>> + Send;
    /// Stores `value` under `key`.
    fn set(&self, key: StorageKey, value: String) -> impl Future<Output = Result<(), BoxError>> + Send;
    /// Removes `key` (no error if absent).
    fn delete(&self, key: StorageKey) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Takes the session's lock `name` for at most `ttl` if it is free (never waits). The expiry
    /// frees the lock of a holder that crashed.
    fn try_lock(
        &self,
        name: &'static str,
        ttl: Duration,
    ) -> impl Future<Output = Result<LockAttempt, BoxError>> + Send {
        let _ = (name, ttl);
        async { Ok(LockAttempt::Unsupported) }
    }

    /// Releases the lock `name` if `token` still owns it.
    fn unlock(&self, name: &'static str, token: String) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (name, token);
        async { Ok(()) }
    }

    /// Moves the session to a new id, keeping its values; the old id stops working.
    fn rotate_id(&self) -> impl Future<Output = Result<(), BoxError>> + Send {
        async { Ok(()) }
    }

    /// Told when the operation using this storage has passed a point of no return (a refresh
    /// the provider may have accepted, a commit under way): whoever drives the operation must
    /// then run it to its end rather than abandon it.
    fn must_finish(&self) {}
}

/// A process-local storage. Each instance is one independent session.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    values: Mutex<HashMap<StorageKey, String>>,
    locks: Mutex<HashMap<&'static str, (String, Instant)>>,
}

impl MemoryStorage {
    /// An empty session.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned() -> BoxError {
    "the memory storage lock is poisoned".into()
}

impl Storage for MemoryStorage {
    async fn get(&self, key: StorageKey) -> Result<Option<String>, BoxError> {
        Ok(self.values.lock().map_err(|_| poisoned())?.get(&key).cloned())
    }

    async fn set(&self, key: StorageKey, value: String) -> Result<(), BoxError> {
        self.values.lock().map_err(|_| poisoned())?.insert(key, value);
        Ok(())
    }

    async fn delete(&self, key: StorageKey) -> Result<(), BoxError> {
        self.values.lock().map_err(|_| poisoned())?.remove(&key);
        Ok(())
    }

    async fn try_lock(&self, name: &'static str, ttl: Duration) -> Result<LockAttempt, BoxError> {
        let mut locks = self.locks.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        if locks.get(name).is_some_and(|(_, until)| *until > now) {
            return Ok(LockAttempt::Busy);
        }
        let token = crate::pkce::random_token(16);
        locks.insert(name, (token.clone(), now + ttl));
        Ok(LockAttempt::Acquired(token))
    }

    async fn unlock(&self, name: &'static str, token: String) -> Result<(), BoxError> {
        let mut locks = self.locks.lock().map_err(|_| poisoned())?;
        if locks.get(name).is_some_and(|(owner, _)| *owner == token) {
            locks.remove(name);
        }
        Ok(())
    }
}

/// Reads `key`, turning a backend failure into [`Error::Storage`].
pub(crate) async fn read<S: Storage>(storage: &S, key: StorageKey) -> Result<Option<String>> {
    storage.get(key).await.map_err(|source| Error::Storage {
        op: "get",
        key: key.as_str(),
        source,
    })
}

/// One write of a commit.
#[derive(Debug)]
pub(crate) enum Write {
    /// `set(key, value)`.
    Set(StorageKey, String),
    /// `delete(key)`.
    Delete(StorageKey),
}

impl Write {
    fn key(&self) -> StorageKey {
        match self {
            Self::Set(key, _) | Self::Delete(key) => *key,
        }
    }
}

async fn apply<S: Storage>(storage: &S, write: Write) -> Result<()> {
    let key = write.key();
    match write {
        Write::Set(_, value) => storage.set(key, value).await.map_err(|source| Error::Storage {
            op: "set",
            key: key.as_str(),
            source,
        }),
        Write::Delete(_) => storage.delete(key).await.map_err(|source| Error::Storage {
            op: "delete",
            key: key.as_str(),
            source,
        }),
    }
}

/// Applies `writes` in order, all or nothing: the previous values are read first, and if a write
/// fails, the writes already applied are undone (best effort) before the error is returned.
///
/// The storage is told [`must_finish`](Storage::must_finish) first, so the commit is never
/// abandoned halfway by a cancelled caller.
pub(crate) async fn commit<S: Storage>(storage: &S, writes: Vec<Write>) -> Result<()> {
    commit_keeping(storage, 0, writes).await
}

/// [`commit`], except that the first `keep` writes are never undone: once they are applied,
/// they stay whatever fails after them (a refresh token the provider has just rotated must
/// never be rolled back to the one it consumed).
pub(crate) async fn commit_keeping<S: Storage>(storage: &S, keep: usize, writes: Vec<Write>) -> Result<()> {
    storage.must_finish();
    let mut previous = Vec::with_capacity(writes.len());
    for write in writes.iter().skip(keep) {
        previous.push((write.key(), read(storage, write.key()).await?));
    }
    for (applied, write) in writes.into_iter().enumerate() {
        if let Err(error) = apply(storage, write).await {
            let undo_count = applied.saturating_sub(keep);
            for (key, value) in previous.into_iter().take(undo_count).rev() {
                let undo = match value {
                    Some(value) => Write::Set(key, value),
                    None => Write::Delete(key),
                };
                // The original error is what the caller needs; a failed undo cannot be reported better.
                let _ = apply(storage, undo).await;
            }
            return Err(error);
        }
    }
    Ok(())
}

/// Takes the session lock `name` (see [`Storage::try_lock`]), waiting at most `wait` for a
/// holder to release it, with a backoff from 5 to 100 ms between attempts. `Ok(None)` when the
/// storage has no locks.
///
/// # Errors
/// [`Error::Storage`] when the storage fails, or (`op` `lock`) when the lock is still held
/// after `wait`.
pub(crate) async fn lock<S: Storage>(
    storage: &S,
    name: &'static str,
    ttl: Duration,
    wait: Duration,
) -> Result<Option<String>> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    loop {
        let attempt = storage
            .try_lock(name, ttl)
            .await
            .map_err(|source| Error::Storage {
                op: "lock",
                key: name,
                source,
            })?;
        match attempt {
            LockAttempt::Acquired(token) => return Ok(Some(token)),
            LockAttempt::Unsupported => return Ok(None),
            LockAttempt::Busy => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Storage {
                op: "lock",
                key: name,
                source: format!("the session lock is still held after {} ms", wait.as_millis()).into(),
            });
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Releases the lock taken by [`lock`].
pub(crate) async fn unlock<S: Storage>(storage: &S, name: &'static str, token: String) -> Result<()> {
    storage
        .unlock(name, token)
        .await
        .map_err(|source| Error::Storage {
            op: "unlock",
            key: name,
            source,
        })
}

/// Moves the session to a new id (see [`Storage::rotate_id`]).
pub(crate) async fn rotate_id<S: Storage>(storage: &S) -> Result<()> {
    storage.must_finish();
    storage.rotate_id().await.map_err(|source| Error::Storage {
        op: "rotate",
        key: "session",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A storage whose n-th write fails.
    struct Flaky {
        inner: MemoryStorage,
        writes: AtomicUsize,
        fail_at: usize,
    }

    impl Storage for Flaky {
        async fn get(&self, key: StorageKey) -> Result<Option<String>, BoxError> {
            self.inner.get(key).await
        }
        async fn set(&self, key: StorageKey, value: String) -> Result<(), BoxError> {
            if self.writes.fetch_add(1, Ordering::SeqCst) == self.fail_at {
                return Err("disk full".into());
            }
            self.inner.set(key, value).await
        }
        async fn delete(&self, key: StorageKey) -> Result<(), BoxError> {
            if self.writes.fetch_add(1, Ordering::SeqCst) == self.fail_at {
                return Err("disk full".into());
            }
            self.inner.delete(key).await
        }
    }

    #[tokio::test]
    async fn a_failed_commit_leaves_the_storage_as_it_was() {
        let storage = Flaky {
            inner: MemoryStorage::new(),
            writes: AtomicUsize::new(0),
            fail_at: usize::MAX,
        };
        storage
            .inner
            .set(StorageKey::IdToken, "old-id".into())
            .await
            .unwrap();
        storage
            .inner
            .set(StorageKey::SignInSession, "session".into())
            .await
            .unwrap();
        let storage = Flaky {
            fail_at: 2,
            ..storage
        };
        let writes = vec![
            Write::Set(StorageKey::IdToken, "new-id".into()),
            Write::Set(StorageKey::RefreshToken, "new-refresh".into()),
            Write::Delete(StorageKey::SignInSession),
        ];
        let error = commit(&storage, writes).await.unwrap_err();
        assert!(matches!(
            error,
            Error::Storage {
                op: "delete",
                key: "signInSession",
                ..
            }
        ));
        assert_eq!(
            storage.inner.get(StorageKey::IdToken).await.unwrap().as_deref(),
            Some("old-id")
        );
        assert_eq!(storage.inner.get(StorageKey::RefreshToken).await.unwrap(), None);
        assert_eq!(
            storage
                .inner
                .get(StorageKey::SignInSession)
                .await
                .unwrap()
                .as_deref(),
            Some("session")
        );
    }
}
