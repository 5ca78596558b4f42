//! The provider's signing keys: a JWKS fetched lazily and cached for its `max-age`, refetched
//! when a token names an unknown `kid` (rate-limited, so a flood of forged key ids cannot make
//! the client hammer the provider, nor keep a real key rotation out), with backoff while the
//! provider fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Endpoint, Error, Result, ValidationError};
use crate::http::HttpClient;
use crate::jwk::{Algorithm, VerifyingKey};
use crate::jwt::UnverifiedJwt;
use crate::process::PerProcess;
use crate::token_bucket::{Rate, TokenBucket};

/// A parsed JWKS.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    /// SHA-256 of the document's `keys` array, to tell a changed key set from a refetched one.
    fingerprint: [u8; 32],
    /// Names the key set's content: equal for refetches of the same keys, new once they change
    /// (see [`generation`](Self::generation)).
    generation: u64,
}

/// The last [`KeySet::generation`] handed out, shared by every cache so that no two different
/// key sets ever carry the same number.
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl KeySet {
    /// Parses a JWKS document, skipping keys that cannot verify an allowed algorithm.
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] when the document has no `keys` array.
    pub fn from_document(document: &Value) -> Result<Self> {
        let keys =
            document
                .get("keys")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::UnexpectedResponse {
                    endpoint: Endpoint::Jwks,
                    status: 200,
                    reason: "the JWKS has no keys array".into(),
                })?;
        let fingerprint = serde_json::to_vec(keys).map_or([0; 32], |text| crate::secret::sha256(&text));
        let keys = keys.iter().filter_map(VerifyingKey::from_jwk).collect();
        Ok(Self {
            keys,
            fingerprint,
            generation: 0,
        })
    }

    /// A number naming this key set's content: a refetch of the same keys keeps it, any change
    /// (a key added, withdrawn or replaced) gives a new one. What was decided with one
    /// generation's keys may be reused while it is current (the verified-token cache).
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The key for a token: the one with its `kid`, or, for a token without `kid`, the only key
    /// that supports its algorithm.
    #[must_use]
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid() == Some(kid) && k.supports(alg)),
            None => {
                let mut candidates = self.keys.iter().filter(|k| k.supports(alg));
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        }
    }

    /// Number of usable keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// How long a fetched JWKS is used when its answer has no `Cache-Control: max-age`.
pub const DEFAULT_KEYS_MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// The longest a fetched JWKS is used, whatever its `max-age` says.
pub const MAX_KEYS_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// The first wait after a failed JWKS fetch; it doubles with each further failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts while the JWKS cannot be fetched.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Refetches for unknown key ids allowed in a burst; one more is earned per cooldown.
const UNKNOWN_KID_BURST: f64 = 2.0;
/// Most keys remembered as absent from the current key set (see [`State::absent`]).
const MAX_ABSENT_KEYS: usize = 32;

/// A key a token asks for: its `kid` (if any) and algorithm.
type WantedKey = (Option<String>, Algorithm);

struct Fetched {
    keys: Arc<KeySet>,
    at: Instant,
    /// The keys are used until `at + max_age`, then fetched again.
    max_age: Duration,
}

impl Fetched {
    fn fresh(&self) -> bool {
        self.at.elapsed() < self.max_age
    }
}

/// The last failed fetch: no new attempt before `retry_at`; callers meanwhile get `error` again.
struct Failure {
    at: Instant,
    retry_at: Instant,
    failures: u32,
    error: Error,
}

#[derive(Default)]
struct State {
    current: Option<Arc<Fetched>>,
    failure: Option<Failure>,
    /// Refetches for unknown key ids still allowed.
    unknown_kid_budget: TokenBucket,
    /// Keys that tokens asked for and the current key set lacked when it was fetched: for a
    /// cooldown after that fetch, asking for one of them again fetches nothing (the answer would
    /// be the same document), while a key id not yet looked for still refetches at once.
    absent: Vec<WantedKey>,
}

impl State {
    /// Whether `(kid, alg)` was looked for by the current key set's fetch less than `cooldown`
    /// ago.
    fn known_absent(&self, kid: Option<&str>, alg: Algorithm, cooldown: Duration) -> bool {
        self.current
            .as_ref()
            .is_some_and(|current| current.at.elapsed() < cooldown)
            && self.absent.iter().any(|(k, a)| k.as_deref() == kid && *a == alg)
    }
}

/// The provider's JWKS: fetched on first use, kept for its `Cache-Control: max-age` (bounded by
/// the cooldown and 24 hours; 10 minutes when absent), refetched when a token names an unknown
/// `kid`. Unknown-kid refetches are rate-limited with a token bucket (a burst of two, one more
/// per cooldown), so a published key is found by the very next token even right after a fetch,
/// and a stream of forged key ids cannot make the client hammer the provider nor keep a real
/// rotation out. A key id a fetch has just looked for in vain is not looked for again within
/// the cooldown: any number of tokens naming it cost one fetch. A failed fetch is remembered
/// with exponential backoff (1 s doubling to 60 s): callers during the backoff share its error
/// without a request, and concurrent callers share one request. During an outage the keys
/// already fetched keep serving.
///
/// The state and the fetch lock belong to one process: a forked child starts with the keys its
/// parent had and locks of its own (a task holding the parent's fetch lock does not exist there).
pub struct JwksCache {
    process: PerProcess<ProcessState>,
    cooldown: Duration,
}

#[derive(Default)]
struct ProcessState {
    state: std::sync::Mutex<State>,
    fetch_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("cooldown", &self.cooldown)
            .finish_non_exhaustive()
    }
}

/// Why a fetch is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Nothing cached, or the cached keys are past their age.
    Load,
    /// The cached keys are fresh but lack a token's key.
    UnknownKid,
}

impl JwksCache {
    /// An empty cache; `cooldown` paces refetches caused by unknown kids (a burst of two, then
    /// one per cooldown) and is the shortest time a fetched JWKS is kept.
    #[must_use]
    pub fn new(cooldown: Duration) -> Self {
        Self {
            process: PerProcess::new(),
            cooldown,
        }
    }

    /// This process's state; a child's starts with the keys of its parent's, when that one's
    /// lock is free (a thread the fork left behind may hold it: then the keys are fetched again).
    fn local(&self) -> Arc<ProcessState> {
        self.process.get(|parent| {
            let current = parent
                .and_then(|p| p.state.try_lock().ok())
                .and_then(|state| state.current.clone());
            ProcessState {
                state: std::sync::Mutex::new(State {
                    current,
                    ..State::default()
                }),
                fetch_lock: tokio::sync::Mutex::new(()),
            }
        })
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let local = self.local();
        let mut guard = local
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    fn snapshot(&self) -> Option<Arc<Fetched>> {
        self.with_state(|state| state.current.clone())
    }

    /// The keys fetched last, without any I/O; `None` before the first fetch.
    #[must_use]
    pub fn cached(&self) -> Option<Arc<KeySet>> {
        self.snapshot().map(|fetched| fetched.keys.clone())
    }

    /// Puts `keys` in the cache as if just fetched (unit tests of the verifier).
    #[cfg(test)]
    pub(crate) fn insert_for_tests(&self, keys: KeySet) {
        self.store(keys, None, &[]);
    }

    /// Stores a fetched key set, remembering which of the `wanted` keys it lacks.
    fn store(
        &self,
        mut keys: KeySet,
        max_age: Option<Duration>,
        wanted: &[(Option<&str>, Algorithm)],
    ) -> Arc<Fetched> {
        let max_age = max_age
            .unwrap_or(DEFAULT_KEYS_MAX_AGE)
            .clamp(self.cooldown, MAX_KEYS_MAX_AGE.max(self.cooldown));
        self.with_state(|state| {
            keys.generation = match &state.current {
                Some(current) if current.keys.fingerprint == keys.fingerprint => current.keys.generation,
                _ => GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            };
            let fetched = Arc::new(Fetched {
                keys: Arc::new(keys),
                at: Instant::now(),
                max_age,
            });
            state.absent = wanted
                .iter()
                .filter(|(kid, alg)| fetched.keys.find(*kid, *alg).is_none())
                .take(MAX_ABSENT_KEYS)
                .map(|(kid, alg)| (kid.map(str::to_owned), *alg))
                .collect();
            state.current = Some(fetched.clone());
            state.failure = None;
            fetched
        })
    }

    /// The pace of unknown-kid refetches: a burst of two, then one per cooldown.
    fn unknown_kid_rate(&self) -> Rate {
        Rate {
            burst: UNKNOWN_KID_BURST,
            every: self.cooldown,
        }
    }

    fn backing_off(state: &State) -> bool {
        state
            .failure
            .as_ref()
            .is_some_and(|failure| Instant::now() < failure.retry_at)
    }

    /// Whether a token naming `(kid, alg)`, which the cached keys cannot verify, would cause a
    /// fetch now: none are cached, they are past their age, or an unknown-kid refetch is within
    /// the rate limit and the last fetch did not just look for this key in vain; and the last
    /// fetch did not fail within its backoff.
    #[must_use]
    pub fn refetch_allowed(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        self.with_state(|state| {
            if Self::backing_off(state) {
                return state.current.is_none();
            }
            match &state.current {
                Some(fetched) if fetched.fresh() => {
                    !state.known_absent(kid, alg, self.cooldown)
                        && state.unknown_kid_budget.available(self.unknown_kid_rate()) >= 1.0
                }
                _ => true,
            }
        })
    }

    /// Whether the cached keys are past their age and a fetch may be tried: a token should not
    /// be decided with them before that (during a fetch backoff they keep serving).
    #[must_use]
    pub fn stale(&self) -> bool {
        self.with_state(|state| {
            !Self::backing_off(state) && state.current.as_ref().is_some_and(|f| !f.fresh())
        })
    }

    /// The key set to verify a token with `kid` and `alg`: the cached one when it is fresh and
    /// has a matching key; otherwise the JWKS is fetched (on first use, once the keys are past
    /// their age, and, within the rate limit, when the `kid` is unknown). The returned set may
    /// still lack the key. When a fetch fails but keys are cached, the cached keys are returned
    /// (so an unknown `kid` is rejected as such, not as an outage).
    ///
    /// # Errors
    /// The JWKS fetch's error, when no keys are cached.
    pub async fn keys_for(
        &self,
        http: &HttpClient,
        jwks_uri: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<KeySet>> {
        self.refresh(http, jwks_uri, &[(kid, alg)]).await
    }

    /// Makes sure usable keys are cached for tokens: fetches the JWKS when none are cached or
    /// they are past their age, and otherwise refetches it, within the unknown-kid rate limit,
    /// when the cached keys lack one of the `(kid, alg)` pairs in `wanted`. A concurrent
    /// caller's fetch counts: keys that arrived since the caller looked are not fetched again.
    /// Returns the keys to decide with.
    ///
    /// # Errors
    /// The JWKS fetch's error, when no keys are cached.
    pub async fn refresh(
        &self,
        http: &HttpClient,
        jwks_uri: &str,
        wanted: &[(Option<&str>, Algorithm)],
    ) -> Result<Arc<KeySet>> {
        let seen = self.snapshot();
        let need = match &seen {
            Some(fetched) if fetched.fresh() => {
                if wanted
                    .iter()
                    .all(|(kid, alg)| fetched.keys.find(*kid, *alg).is_some())
                {
                    return Ok(fetched.keys.clone());
                }
                Need::UnknownKid
            }
            _ => Need::Load,
        };
        Ok(self
            .fetch(http, jwks_uri, seen.as_ref(), need, wanted)
            .await?
            .keys
            .clone())
    }

    /// Verifies `jwt`'s signature with the provider's key for its `kid`, fetching the JWKS when
    /// needed (see [`keys_for`](Self::keys_for)).
    ///
    /// # Errors
    /// [`ValidationError::UnknownKey`], [`ValidationError::Signature`], or the JWKS fetch's error.
    pub async fn verify(&self, http: &HttpClient, jwks_uri: &str, jwt: &UnverifiedJwt<'_>) -> Result<()> {
        let keys = self.keys_for(http, jwks_uri, jwt.kid.as_deref(), jwt.alg).await?;
        let key = keys
            .find(jwt.kid.as_deref(), jwt.alg)
            .ok_or(ValidationError::UnknownKey)?;
        Ok(jwt.verify_signature(key)?)
    }

    /// Fetches the JWKS unless another caller replaced `seen` meanwhile (its result is shared),
    /// the last fetch failed within its backoff, or (for an unknown kid) every missing key of
    /// `wanted` was just looked for in vain, or the rate limit says no. Then the cached keys are
    /// returned when there are any, else the failure's error.
    async fn fetch(
        &self,
        http: &HttpClient,
        jwks_uri: &str,
        seen: Option<&Arc<Fetched>>,
        need: Need,
        wanted: &[(Option<&str>, Algorithm)],
    ) -> Result<Arc<Fetched>> {
        let asked = Instant::now();
        let local = self.local();
        let _guard = local.fetch_lock.lock().await;
        let decision = self.with_state(|state| {
            if let Some(current) = &state.current {
                let replaced = seen.is_none_or(|s| !Arc::ptr_eq(s, current));
                if replaced {
                    return Err(Some(Ok(current.clone())));
                }
            }
            if let Some(failure) = &state.failure
                && (failure.at >= asked || Instant::now() < failure.retry_at)
            {
                // Another caller's attempt failed while this one waited, or the backoff runs.
                return Err(Some(match &state.current {
                    Some(current) => Ok(current.clone()),
                    None => Err(failure.error.replay()),
                }));
            }
            if need == Need::UnknownKid {
                let looked_for = |(kid, alg): &(Option<&str>, Algorithm)| {
                    state
                        .current
                        .as_ref()
                        .is_some_and(|c| c.keys.find(*kid, *alg).is_some())
                        || state.known_absent(*kid, *alg, self.cooldown)
                };
                if wanted.iter().all(looked_for) || !state.unknown_kid_budget.take(self.unknown_kid_rate()) {
                    return Err(state.current.clone().map(Ok));
                }
            }
            Ok(())
        });
        match decision {
            Err(Some(answer)) => return answer,
            Err(None) => return Err(Error::from(ValidationError::UnknownKey)),
            Ok(()) => {}
        }
        match self.download(http, jwks_uri).await {
            Ok((keys, max_age)) => Ok(self.store(keys, max_age, wanted)),
            Err(error) => self.with_state(|state| {
                let failures = state.failure.as_ref().map_or(0, |f| f.failures) + 1;
                let backoff = FIRST_BACKOFF
                    .saturating_mul(1 << (failures - 1).min(16))
                    .min(MAX_BACKOFF);
                let now = Instant::now();
                state.failure = Some(Failure {
                    at: now,
                    retry_at: now + backoff,
                    failures,
                    error: error.replay(),
                });
                match &state.current {
                    Some(current) => Ok(current.clone()),
                    None => Err(error),
                }
            }),
        }
    }

    async fn download(&self, http: &HttpClient, jwks_uri: &str) -> Result<(KeySet, Option<Duration>)> {
        let (document, max_age): (Value, _) = http.get_json_cacheable(Endpoint::Jwks, jwks_uri).await?;
        Ok((KeySet::from_document(&document)?, max_age))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_of_fetched_keys_is_bounded() {
        let cache = JwksCache::new(Duration::from_secs(30));
        let age = |max_age| cache.store(KeySet::default(), max_age, &[]).max_age;
        assert_eq!(age(None), DEFAULT_KEYS_MAX_AGE);
        assert_eq!(age(Some(Duration::ZERO)), Duration::from_secs(30));
        assert_eq!(age(Some(Duration::from_secs(300))), Duration::from_secs(300));
        assert_eq!(age(Some(Duration::from_secs(10 * 86_400))), MAX_KEYS_MAX_AGE);
    }

    #[test]
    fn a_key_id_looked_for_in_vain_is_not_looked_for_again_within_the_cooldown() {
        let gone = [(Some("gone"), Algorithm::ES384)];
        let cache = JwksCache::new(Duration::from_secs(3600));
        cache.store(KeySet::default(), None, &gone);
        assert!(!cache.refetch_allowed(Some("gone"), Algorithm::ES384));
        assert!(cache.refetch_allowed(Some("new"), Algorithm::ES384));
        cache.store(KeySet::default(), None, &[]);
        assert!(cache.refetch_allowed(Some("gone"), Algorithm::ES384));
        let eager = JwksCache::new(Duration::ZERO);
        eager.store(KeySet::default(), None, &gone);
        assert!(eager.refetch_allowed(Some("gone"), Algorithm::ES384));
    }

    #[test]
    fn unknown_kid_refetches_come_in_a_burst_of_two_then_one_per_cooldown() {
        let cache = JwksCache::new(Duration::from_secs(3600));
        cache.store(KeySet::default(), None, &[]);
        for (i, expected) in [true, true, false].into_iter().enumerate() {
            assert_eq!(
                cache.refetch_allowed(Some(&format!("kid-{i}")), Algorithm::ES384),
                expected
            );
            cache.with_state(|state| state.unknown_kid_budget.take(cache.unknown_kid_rate()));
        }
        let eager = JwksCache::new(Duration::ZERO);
        eager.store(KeySet::default(), None, &[]);
        for _ in 0..10 {
            assert!(eager.refetch_allowed(Some("kid"), Algorithm::ES384));
        }
    }
}
