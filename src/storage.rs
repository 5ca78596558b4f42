//! Where a user's session lives: the [`Storage`] trait, an in-memory implementation, and the
//! all-or-nothing write used to commit a sign-in, a callback or a sign-out.
//!
//! Values are strings, keys are the four [`StorageKey`]s, as in Logto's official SDKs. A storage
//! holds one user's session; a server keeps one storage per browser session.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

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

/// A session store. Implementations decide where values live (memory, a cookie session, Redis).
///
/// Methods may be called concurrently for different users, never concurrently on the same
/// storage by one client operation.
pub trait Storage: Send + Sync {
    /// The value under `key`, or `None`.
    fn get(&self, key: StorageKey) -> impl Future<Output = Result<Option<String>, BoxError>> + Send;
    /// Stores `value` under `key`.
    fn set(&self, key: StorageKey, value: String) -> impl Future<Output = Result<(), BoxError>> + Send;
    /// Removes `key` (no error if absent).
    fn delete(&self, key: StorageKey) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// A process-local storage. Each instance is one independent session.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    values: Mutex<HashMap<StorageKey, String>>,
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
pub(crate) async fn commit<S: Storage>(storage: &S, writes: Vec<Write>) -> Result<()> {
    let mut previous = Vec::with_capacity(writes.len());
    for write in &writes {
        previous.push((write.key(), read(storage, write.key()).await?));
    }
    for (applied, write) in writes.into_iter().enumerate() {
        if let Err(error) = apply(storage, write).await {
            for (key, value) in previous.into_iter().take(applied).rev() {
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
