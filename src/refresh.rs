//! Refresh-token coordination inside one process: at most one request per refresh token at a
//! time, across every client, resource and organization, and a rotated refresh token is never
//! presented twice by this process.
//!
//! Logto revokes the whole grant when a rotated refresh token comes back (the user is signed
//! out), so concurrent refreshes must not race. Each refresh takes the *lane* of the newest
//! refresh token known for the caller's one; the request runs in a spawned task that holds the
//! lane until the outcome is recorded, so even a cancelled caller cannot let a consumed refresh
//! token be presented again.
//!
//! An outcome is shared only with the callers that raced it:
//! - callers that arrived while it was in flight, or while the caller that made it was still
//!   storing it (its [`Pending`] guard is alive), for the same token and cache key;
//! - callers that present the token it rotated away, within [`RACE_WINDOW`] (a request that
//!   carried a copy of the session made before the rotation). They are forwarded to the new
//!   token.
//!
//! A caller that comes after the refresh with the same, unrotated token sends a request of its
//! own (a confidential client keeps its refresh token for days: its old results are not
//! reused), and an older token than the race window reaches the provider, which sees the reuse.
//!
//! Coordination across processes and hosts is the storage's session lock (see
//! [`crate::storage::Storage::try_lock`]); this module is the in-process half. The coordinator
//! is one per process ([`coordinator`]): several clients sharing a storage coordinate too.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, OAuthError, Result};
use crate::grant::TokenResponse;
use crate::jwt::now_epoch_seconds;
use crate::process::PerProcess;
use crate::secret::{Fingerprint, RefreshToken};
use crate::single_flight::{Lanes, poisoned, run_in_lane};
use crate::token_cache::is_fresh;

/// How long a rotation (old → new refresh token), and the result that made it, is handed to
/// callers that still present the old token: seconds, the time a browser's parallel requests
/// take to land.
pub const RACE_WINDOW: Duration = Duration::from_secs(10);
/// Longest rotation chain followed (guards against a cycle).
const MAX_CHAIN: usize = 32;

/// A refresh the provider answered with 200.
#[derive(Debug)]
pub struct Refreshed {
    /// The token response.
    pub response: TokenResponse,
    /// When it was received, seconds since the epoch: the origin of `expires_in`.
    pub received_at: u64,
}

impl Refreshed {
    /// Whether its access token has more than `margin` seconds of life left.
    #[must_use]
    pub fn is_fresh(&self, margin: u64) -> bool {
        let expires_at = self
            .received_at
            .saturating_add(self.response.expires_in.unwrap_or(3600));
        is_fresh(expires_at, now_epoch_seconds(), margin)
    }
}

type Outcome = std::result::Result<Arc<Refreshed>, OAuthError>;

struct Recorded {
    outcome: Outcome,
    at: Instant,
    seq: u64,
    /// The caller that made the request has not finished storing it.
    storing: bool,
}

// Refresh tokens are keyed by their SHA-256 fingerprint: the coordinator never keeps a token as a
// map key.
#[derive(Default)]
struct State {
    seq: u64,
    rotated: HashMap<Fingerprint, (RefreshToken, Instant)>,
    outcomes: HashMap<(Fingerprint, String), Recorded>,
}

impl State {
    /// The newest refresh token in `held`'s rotation chain, and an outcome for `key` that the
    /// caller who arrived at `ticket` raced (see the module docs), if any.
    fn resolve(
        &self,
        held: &RefreshToken,
        key: &str,
        ticket: u64,
        margin: u64,
    ) -> (RefreshToken, Option<Outcome>) {
        let mut current = held.clone();
        for _ in 0..MAX_CHAIN {
            let print = current.fingerprint();
            let rotation = self
                .rotated
                .get(&print)
                .filter(|(_, at)| at.elapsed() < RACE_WINDOW);
            if let Some(recorded) = self.outcomes.get(&(print, key.to_owned()))
                && recorded.at.elapsed() < RACE_WINDOW
            {
                let raced = recorded.seq > ticket || recorded.storing;
                let usable = match &recorded.outcome {
                    Ok(refreshed) => (raced || rotation.is_some()) && refreshed.is_fresh(margin),
                    // A refusal is shared only with the callers that waited for it: they would
                    // present the same, possibly consumed, token.
                    Err(_) => raced,
                };
                if usable {
                    return (current, Some(recorded.outcome.clone()));
                }
            }
            match rotation {
                Some((next, _)) => current = next.clone(),
                None => break,
            }
        }
        (current, None)
    }

    fn record(&mut self, used: &RefreshToken, key: String, outcome: Outcome) -> u64 {
        self.rotated.retain(|_, (_, at)| at.elapsed() < RACE_WINDOW);
        self.outcomes
            .retain(|_, recorded| recorded.at.elapsed() < RACE_WINDOW);
        let print = used.fingerprint();
        if let Ok(refreshed) = &outcome
            && let Some(next) = &refreshed.response.refresh_token
            && !next.ct_eq(used.secret())
        {
            self.rotated.insert(print, (next.clone(), Instant::now()));
        }
        self.seq += 1;
        let storing = outcome.is_ok();
        self.outcomes.insert(
            (print, key),
            Recorded {
                outcome,
                at: Instant::now(),
                seq: self.seq,
                storing,
            },
        );
        self.seq
    }

    fn stored(&mut self, print: Fingerprint, key: String, seq: u64) {
        if let Some(recorded) = self.outcomes.get_mut(&(print, key))
            && recorded.seq == seq
        {
            recorded.storing = false;
        }
    }
}

/// Held by the caller whose request answered, while it stores the answer: callers that arrive
/// meanwhile raced it and share it. Dropping it (stored, failed or cancelled) ends that.
pub struct Pending {
    coordinator: Arc<RefreshCoordinator>,
    print: Fingerprint,
    key: String,
    seq: u64,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Ok(mut state) = self.coordinator.state.lock() {
            state.stored(self.print, std::mem::take(&mut self.key), self.seq);
        }
    }
}

/// Serialises refreshes per refresh token. One per process: see [`coordinator`].
#[derive(Default)]
pub struct RefreshCoordinator {
    state: Mutex<State>,
    lanes: Lanes<Fingerprint>,
}

impl std::fmt::Debug for RefreshCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshCoordinator").finish_non_exhaustive()
    }
}

static COORDINATOR: PerProcess<RefreshCoordinator> = PerProcess::new();

/// This process's coordinator (a forked child gets a new one: the parent's lanes may be held by
/// tasks that do not exist in the child).
#[must_use]
pub fn coordinator() -> Arc<RefreshCoordinator> {
    COORDINATOR.get(|_| RefreshCoordinator::default())
}

impl RefreshCoordinator {
    /// Refreshes `held` for the cache key `key` with `request`, coordinated as described in the
    /// module docs. `request` receives the refresh token to present (the newest of the chain).
    /// A shared outcome is used only if its access token has more than `margin` seconds left.
    ///
    /// The caller whose request answered also gets a [`Pending`] guard: keep it until the answer
    /// is stored.
    ///
    /// # Errors
    /// The request's error; an OAuth refusal is shared with the callers that raced it.
    pub async fn refresh<F, Fut>(
        self: &Arc<Self>,
        held: RefreshToken,
        key: String,
        margin: u64,
        request: F,
    ) -> Result<(Arc<Refreshed>, Option<Pending>)>
    where
        F: FnOnce(RefreshToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<TokenResponse>> + Send + 'static,
    {
        let ticket = self.lock_state()?.seq;
        loop {
            let latest = {
                let (latest, hit) = self.lock_state()?.resolve(&held, &key, ticket, margin);
                if let Some(outcome) = hit {
                    return outcome.map(|refreshed| (refreshed, None)).map_err(Error::OAuth);
                }
                latest
            };
            let guard = self.lanes.enter(&latest.fingerprint()).await?;
            {
                // While we queued, the token may have rotated or an outcome arrived: start over.
                let (now_latest, hit) = self.lock_state()?.resolve(&held, &key, ticket, margin);
                if hit.is_some() || now_latest.fingerprint() != latest.fingerprint() {
                    continue;
                }
            }
            let coordinator = self.clone();
            return run_in_lane(guard, async move {
                let result = request(latest.clone()).await.map(|response| {
                    Arc::new(Refreshed {
                        response,
                        received_at: now_epoch_seconds(),
                    })
                });
                let shared = match &result {
                    Ok(refreshed) => Some(Ok(refreshed.clone())),
                    Err(Error::OAuth(error)) => Some(Err(error.clone())),
                    Err(_) => None,
                };
                let seq = match shared {
                    Some(outcome) => coordinator
                        .state
                        .lock()
                        .ok()
                        .map(|mut state| state.record(&latest, key.clone(), outcome)),
                    None => None,
                };
                result.map(|refreshed| {
                    let pending = seq.map(|seq| Pending {
                        coordinator: coordinator.clone(),
                        print: latest.fingerprint(),
                        key,
                        seq,
                    });
                    (refreshed, pending)
                })
            })
            .await;
        }
    }

    fn lock_state(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| poisoned("refresh coordinator"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn response(access: &str, refresh: &str) -> TokenResponse {
        serde_json::from_value(
            serde_json::json!({"access_token": access, "refresh_token": refresh, "expires_in": 3600}),
        )
        .unwrap()
    }

    /// A fake token endpoint that rotates on every use and revokes on reuse, like Logto.
    #[derive(Default)]
    struct Endpoint {
        requests: AtomicUsize,
        used: Mutex<Vec<String>>,
    }

    impl Endpoint {
        async fn refresh(&self, token: RefreshToken) -> Result<TokenResponse> {
            let n = self.requests.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut used = self.used.lock().unwrap();
            assert!(
                !used.contains(&token.secret().to_owned()),
                "refresh token reused: the grant would be revoked"
            );
            used.push(token.secret().to_owned());
            Ok(response(&format!("at-{n}"), &format!("rt-{}", n + 1)))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_request_and_never_reuse_a_token() {
        let coordinator = Arc::new(RefreshCoordinator::default());
        let endpoint = Arc::new(Endpoint::default());
        let mut tasks = Vec::new();
        for i in 0..30 {
            let (coordinator, endpoint) = (coordinator.clone(), endpoint.clone());
            // Three different cache keys with the same refresh token.
            let key = format!("https://api-{}", i % 3);
            tasks.push(tokio::spawn(async move {
                coordinator
                    .refresh(RefreshToken::new("rt-0"), key, 0, move |token| async move {
                        endpoint.refresh(token).await
                    })
                    .await
                    .unwrap()
            }));
        }
        let mut tokens = Vec::new();
        for task in tasks {
            tokens.push(task.await.unwrap().0.response.access_token.secret().to_owned());
        }
        // One request per cache key, each with the newest refresh token.
        assert_eq!(endpoint.requests.load(Ordering::SeqCst), 3);
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), 3);
        // A caller still holding the first token follows the rotation chain.
        let again = coordinator
            .refresh(RefreshToken::new("rt-0"), "https://api-9".into(), 0, {
                let endpoint = endpoint.clone();
                move |token| async move { endpoint.refresh(token).await }
            })
            .await
            .unwrap();
        assert_eq!(again.0.response.refresh_token.as_ref().unwrap().secret(), "rt-4");
    }

    /// A token endpoint that keeps the refresh token, as Logto does for a confidential client.
    #[derive(Default)]
    struct Keeping {
        requests: AtomicUsize,
    }

    impl Keeping {
        async fn refresh(&self, _token: RefreshToken) -> Result<TokenResponse> {
            let n = self.requests.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(response(&format!("at-{n}"), "rt-same"))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_later_caller_with_an_unrotated_token_gets_a_new_answer() {
        let coordinator = Arc::new(RefreshCoordinator::default());
        let endpoint = Arc::new(Keeping::default());
        let call = || {
            let endpoint = endpoint.clone();
            coordinator.refresh(
                RefreshToken::new("rt-same"),
                "https://api".into(),
                0,
                move |t| async move { endpoint.refresh(t).await },
            )
        };
        // Racers share one request.
        let (a, b) = tokio::join!(call(), call());
        assert_eq!(endpoint.requests.load(Ordering::SeqCst), 1);
        let ((a, a_pending), (b, b_pending)) = (a.unwrap(), b.unwrap());
        assert_eq!(a.response.access_token.secret(), b.response.access_token.secret());
        // One of them made the request and is storing it: a caller arriving now raced it.
        assert!(a_pending.is_some() != b_pending.is_some());
        let raced = call().await.unwrap();
        assert_eq!(raced.0.response.access_token.secret(), "at-0");
        assert_eq!(endpoint.requests.load(Ordering::SeqCst), 1);
        // Once stored, a caller after it (say, after clearAccessToken) is not handed it.
        drop((a_pending, b_pending));
        let later = call().await.unwrap();
        assert_eq!(endpoint.requests.load(Ordering::SeqCst), 2);
        assert_eq!(later.0.response.access_token.secret(), "at-1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refusal_is_shared_with_racers_only() {
        let coordinator = Arc::new(RefreshCoordinator::default());
        let requests = Arc::new(AtomicUsize::new(0));
        let call = || {
            let requests = requests.clone();
            coordinator.refresh(
                RefreshToken::new("rt-x"),
                "https://api".into(),
                0,
                move |_| async move {
                    requests.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err(Error::OAuth(OAuthError {
                        endpoint: crate::error::Endpoint::Token,
                        status: 403,
                        error: "access_denied".into(),
                        description: None,
                    }))
                },
            )
        };
        let (a, b, c) = tokio::join!(call(), call(), call());
        assert!(
            matches!(a, Err(Error::OAuth(_)))
                && matches!(b, Err(Error::OAuth(_)))
                && matches!(c, Err(Error::OAuth(_)))
        );
        assert_eq!(
            requests.load(Ordering::SeqCst),
            1,
            "racers presented the refused token again"
        );
        assert!(call().await.is_err());
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }
}
