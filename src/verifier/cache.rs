//! [`TokenCache`]: what an API decided about a bearer token, kept so that the next request with
//! the same token skips the expensive part (a signature check, or an introspection request).
//!
//! Entries are keyed by the SHA-256 of the token: collision resistant, so no other token can
//! ever hit an entry, and no token text is kept in memory. A fast keyed hash (SipHash with a
//! per-process random key) would cost about 0.1 µs instead of about 1 µs for a 1 KiB token, but
//! its 64 bits would make the map key alone not enough to tell two tokens apart (the entry would
//! have to keep the token to compare), and its key would have to be drawn again in every forked
//! worker; the microsecond is nothing next to the 200 µs signature check a hit saves. Entries
//! hold only what the caller stores (for a JWT: the claims, so every hit rechecks
//! `exp`/`nbf`/`iat` and the call's requirements). Only decided tokens are stored (for a JWT:
//! verified ones), so an attacker cannot fill the cache with forged tokens.
//! The cache is bounded three ways: entries (oldest expiry evicted first), the time an entry
//! lives, and the size of the tokens it takes. It is split into shards with a lock each, so
//! threads verifying different tokens rarely wait for each other; a lookup holds its shard's
//! lock only for a hash-map probe. The entries belong to one process: a forked child starts
//! with an empty cache and locks of its own (see [`crate::process`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::process::PerProcess;

/// The key of an entry: the SHA-256 of the token.
pub(crate) type TokenDigest = crate::secret::Fingerprint;

/// Number of independently locked shards (a power of two).
const SHARDS: usize = 16;

/// The SHA-256 of `token`.
pub(crate) fn token_digest(token: &str) -> TokenDigest {
    crate::secret::sha256(token.as_bytes())
}

/// The bounds of a verified-token cache (see
/// [`AccessTokenVerifierBuilder::cache`](super::AccessTokenVerifierBuilder::cache)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most entries held (0 turns the cache off).
    pub max_entries: usize,
    /// Longest time an entry is used after it was stored.
    pub max_age: Duration,
    /// Longest token cached (longer tokens are decided every time).
    pub max_token_bytes: usize,
}

impl CacheLimits {
    /// No cache.
    pub const OFF: Self = Self {
        max_entries: 0,
        max_age: Duration::ZERO,
        max_token_bytes: 0,
    };

    /// Whether these limits allow any entry.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.max_entries > 0 && !self.max_age.is_zero() && self.max_token_bytes > 0
    }
}

struct Entry<V> {
    value: Arc<V>,
    expires: Instant,
}

type Shard<V> = Mutex<HashMap<TokenDigest, Entry<V>>>;

struct Shards<V> {
    shards: Vec<Shard<V>>,
}

/// A bounded, sharded, per-process map from token digests to decided values.
pub(crate) struct TokenCache<V> {
    process: PerProcess<Shards<V>>,
    limits: CacheLimits,
}

impl<V> std::fmt::Debug for TokenCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<V> TokenCache<V> {
    pub(crate) fn new(limits: CacheLimits) -> Self {
        Self {
            process: PerProcess::new(),
            limits,
        }
    }

    pub(crate) fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// The digest to use for `token`, or `None` when the token is not cached (cache off, or the
    /// token longer than the limit).
    pub(crate) fn key(&self, token: &str) -> Option<TokenDigest> {
        (self.limits.enabled() && token.len() <= self.limits.max_token_bytes).then(|| token_digest(token))
    }

    fn shards(&self) -> Arc<Shards<V>> {
        self.process.get(|_| Shards {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    fn with_shard<R>(
        &self,
        key: &TokenDigest,
        f: impl FnOnce(&mut HashMap<TokenDigest, Entry<V>>) -> R,
    ) -> R {
        let shards = self.shards();
        let shard = &shards.shards[usize::from(key[0]) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut map)
    }

    /// The value stored under `key`, if it has not expired.
    pub(crate) fn get(&self, key: &TokenDigest) -> Option<Arc<V>> {
        let now = Instant::now();
        self.with_shard(key, |map| match map.get(key) {
            Some(entry) if entry.expires > now => Some(entry.value.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        })
    }

    /// Stores `value` under `key` for at most `ttl` (and the configured maximum age). A full
    /// shard first drops its expired entries, then the one closest to expiry.
    pub(crate) fn insert(&self, key: TokenDigest, value: Arc<V>, ttl: Duration) {
        let ttl = ttl.min(self.limits.max_age);
        if ttl.is_zero() || !self.limits.enabled() {
            return;
        }
        let now = Instant::now();
        let per_shard = self.limits.max_entries.div_ceil(SHARDS);
        self.with_shard(&key, |map| {
            if map.len() >= per_shard && !map.contains_key(&key) {
                map.retain(|_, entry| entry.expires > now);
                if map.len() >= per_shard
                    && let Some(first) = map.iter().min_by_key(|(_, entry)| entry.expires).map(|(k, _)| *k)
                {
                    map.remove(&first);
                }
            }
            map.insert(
                key,
                Entry {
                    value,
                    expires: now + ttl,
                },
            );
        });
    }

    /// Removes `key`'s entry.
    pub(crate) fn remove(&self, key: &TokenDigest) {
        self.with_shard(key, |map| map.remove(key));
    }

    /// Removes every entry of this process.
    pub(crate) fn clear(&self) {
        if !self.process.is_built_here() {
            return;
        }
        let shards = self.shards();
        for shard in &shards.shards {
            shard.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// Number of entries of this process (expired ones included until they are dropped).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let shards = self.shards();
        shards
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_entries: usize) -> CacheLimits {
        CacheLimits {
            max_entries,
            max_age: Duration::from_secs(60),
            max_token_bytes: 64,
        }
    }

    #[test]
    fn entries_are_bounded_and_expire() {
        let cache = TokenCache::new(limits(SHARDS));
        for i in 0..200 {
            let key = cache.key(&format!("token-{i}")).unwrap();
            cache.insert(key, Arc::new(i), Duration::from_secs(10));
        }
        assert!(cache.len() <= SHARDS);
        let key = cache.key("short-lived").unwrap();
        cache.insert(key, Arc::new(1), Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get(&key).is_none());
        assert!(
            cache.key(&"x".repeat(65)).is_none(),
            "longer tokens are not cached"
        );
        assert!(TokenCache::<u8>::new(CacheLimits::OFF).key("t").is_none());
        let key = cache.key("kept").unwrap();
        cache.insert(key, Arc::new(7), Duration::from_secs(3600));
        assert_eq!(cache.get(&key).as_deref(), Some(&7));
        cache.clear();
        assert!(cache.get(&key).is_none());
    }

    #[test]
    fn a_full_shard_evicts_the_entry_closest_to_expiry() {
        let cache = TokenCache::new(limits(1));
        let (a, b) = (token_digest("a"), token_digest("b"));
        // One entry per shard: force both into one shard by reusing the first byte.
        let mut b_same = b;
        b_same[0] = a[0];
        cache.insert(a, Arc::new(1), Duration::from_secs(5));
        cache.insert(b_same, Arc::new(2), Duration::from_secs(50));
        assert!(cache.get(&a).is_none());
        assert_eq!(cache.get(&b_same).as_deref(), Some(&2));
    }
}
