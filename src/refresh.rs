//! Refresh-token coordination: at most one request per refresh token at a time, across every
//! resource and organization, and a rotated refresh token is never presented twice.
//!
//! Logto revokes the whole grant when a rotated refresh token is reused (the user is signed out),
//! so concurrent refreshes must not race. Each refresh takes the *lane* of the newest refresh
//! token known for the caller's one; the request runs in a spawned task that holds the lane until
//! the rotation is recorded, so even a cancelled caller cannot leave a stale refresh token to be
//! reused. Callers that queued for the same token and cache key reuse the result instead of
//! sending a second request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::grant::TokenResponse;
use crate::secret::{Fingerprint, RefreshToken};
use crate::single_flight::{Lanes, poisoned, run_in_lane};

/// How long a rotation (old → new refresh token) is remembered.
const ROTATION_MEMORY: Duration = Duration::from_secs(300);
/// How long a completed refresh is handed to callers that asked for the same thing.
const RESULT_MEMORY: Duration = Duration::from_secs(30);
/// Longest rotation chain followed (guards against a cycle).
const MAX_CHAIN: usize = 32;

// Refresh tokens are keyed by their SHA-256 fingerprint: the coordinator never keeps a token as a
// map key.
#[derive(Default)]
struct State {
    rotated: HashMap<Fingerprint, (RefreshToken, Instant)>,
    results: HashMap<(Fingerprint, String), (Arc<TokenResponse>, Instant)>,
}

impl State {
    /// The newest refresh token in `held`'s rotation chain, or a recent result for `key` found
    /// along the chain.
    fn resolve(&self, held: &RefreshToken, key: &str) -> (RefreshToken, Option<Arc<TokenResponse>>) {
        let mut current = held.clone();
        for _ in 0..MAX_CHAIN {
            let print = current.fingerprint();
            if let Some((response, at)) = self.results.get(&(print, key.to_owned()))
                && at.elapsed() < RESULT_MEMORY
            {
                return (current, Some(response.clone()));
            }
            match self.rotated.get(&print) {
                Some((next, at)) if at.elapsed() < ROTATION_MEMORY => current = next.clone(),
                _ => break,
            }
        }
        (current, None)
    }

    fn record(&mut self, used: &RefreshToken, key: String, response: &Arc<TokenResponse>) {
        self.rotated.retain(|_, (_, at)| at.elapsed() < ROTATION_MEMORY);
        self.results.retain(|_, (_, at)| at.elapsed() < RESULT_MEMORY);
        let print = used.fingerprint();
        if let Some(next) = &response.refresh_token
            && !next.ct_eq(used.secret())
        {
            self.rotated.insert(print, (next.clone(), Instant::now()));
        }
        self.results
            .insert((print, key), (response.clone(), Instant::now()));
    }
}

/// Serialises refreshes per refresh token. One per client, shared by all its users.
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

impl RefreshCoordinator {
    /// Refreshes `held` for the cache key `key` with `request`, coordinated as described in the
    /// module docs. `request` receives the refresh token to present (the newest of the chain).
    ///
    /// # Errors
    /// The request's error (shared by nobody: each caller that needs a request sends its own).
    pub async fn refresh<F, Fut>(
        self: &Arc<Self>,
        held: RefreshToken,
        key: String,
        request: F,
    ) -> Result<Arc<TokenResponse>>
    where
        F: FnOnce(RefreshToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<TokenResponse>> + Send + 'static,
    {
        loop {
            let latest = {
                let state = self.state.lock().map_err(|_| poisoned("refresh coordinator"))?;
                let (latest, hit) = state.resolve(&held, &key);
                if let Some(response) = hit {
                    return Ok(response);
                }
                latest
            };
            let guard = self.lanes.enter(&latest.fingerprint()).await?;
            {
                // While we queued, the token may have rotated or the result arrived: start over.
                let state = self.state.lock().map_err(|_| poisoned("refresh coordinator"))?;
                let (now_latest, hit) = state.resolve(&held, &key);
                if hit.is_some() || now_latest.fingerprint() != latest.fingerprint() {
                    continue;
                }
            }
            let coordinator = self.clone();
            return run_in_lane(guard, async move {
                let result = request(latest.clone()).await.map(Arc::new);
                if let Ok(response) = &result
                    && let Ok(mut state) = coordinator.state.lock()
                {
                    state.record(&latest, key, response);
                }
                result
            })
            .await;
        }
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
                    .refresh(RefreshToken::new("rt-0"), key, move |token| async move {
                        endpoint.refresh(token).await
                    })
                    .await
                    .unwrap()
            }));
        }
        let mut tokens = Vec::new();
        for task in tasks {
            tokens.push(task.await.unwrap().access_token.secret().to_owned());
        }
        // One request per cache key, each with the newest refresh token.
        assert_eq!(endpoint.requests.load(Ordering::SeqCst), 3);
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), 3);
        // A caller still holding the first token follows the rotation chain.
        let again = coordinator
            .refresh(RefreshToken::new("rt-0"), "https://api-9".into(), {
                let endpoint = endpoint.clone();
                move |token| async move { endpoint.refresh(token).await }
            })
            .await
            .unwrap();
        assert_eq!(again.refresh_token.as_ref().unwrap().secret(), "rt-4");
    }
}
