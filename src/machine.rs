//! Tokens without a user session: `client_credentials` (machine-to-machine apps) and RFC 8693
//! exchange of a reusable subject token (a personal access token, or a user's access token
//! delegated to another API, see [`crate::exchange`]), all cached in memory per client until
//! shortly before they expire, with one request for any number of concurrent callers.
//!
//! The cache is keyed by what a token is for ([`TokenTarget`]: resource, organization, scopes)
//! and, for an exchanged token, by the type and SHA-256 fingerprint of the subject token, never by
//! the token itself.
//!
//! A single-use subject token (impersonation) is spent once the request is sent, so its exchange
//! is never cached but runs to completion even when the caller is cancelled, and its token is
//! kept until a caller receives it: the retry of a cancelled call gets it, once
//! ([`MachineTokenCache::fetch_once`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::error::{Endpoint, Error, Result};
use crate::grant::{ACCESS_TOKEN_TYPE, ExchangeSubject, Grant, TokenResponse, TokenTarget};
use crate::jwt::now_epoch_seconds;
use crate::secret::{AccessToken, Fingerprint};
use crate::single_flight::{Lanes, poisoned, run_in_lane};
use crate::token_cache::is_fresh;

/// Most tokens one client keeps; past it, the one expiring first is dropped.
const MAX_CACHED_TOKENS: usize = 1024;

/// An access token from `client_credentials` or a token exchange. Its `Debug` redacts the token;
/// it serialises (camelCase) into the JSON the Python models read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MachineToken {
    /// The access token.
    pub access_token: AccessToken,
    /// `Bearer`.
    pub token_type: String,
    /// Expiry, seconds since the epoch.
    pub expires_at: u64,
    /// The granted scopes, space-separated (possibly empty: nothing is granted by default).
    pub scope: String,
    /// For a token exchange, the RFC 8693 type of the issued token (an access token).
    pub issued_token_type: Option<String>,
}

impl MachineToken {
    /// Reads a token response received at `now` (seconds since the epoch). A token exchange's
    /// answer is marked as an issued access token when the provider does not say (Logto does not).
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] when the token is empty, not a bearer token, or the exchange
    /// issued something other than an access token.
    pub fn from_response(response: &TokenResponse, grant: &Grant<'_>, now: u64) -> Result<Self> {
        let bad = |reason: &str| Error::UnexpectedResponse {
            endpoint: Endpoint::Token,
            status: 200,
            reason: reason.into(),
        };
        if response.access_token.secret().is_empty() {
            return Err(bad("the access token is empty"));
        }
        let token_type = response.token_type.as_deref().unwrap_or("Bearer");
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(bad("the token is not a bearer token"));
        }
        let exchange = matches!(grant, Grant::TokenExchange { .. });
        let issued_token_type = match response.issued_token_type.as_deref() {
            Some(issued) if issued != ACCESS_TOKEN_TYPE => {
                return Err(bad("the exchange issued a token that is not an access token"));
            }
            _ if exchange => Some(ACCESS_TOKEN_TYPE.to_owned()),
            _ => None,
        };
        Ok(Self {
            access_token: response.access_token.clone(),
            token_type: "Bearer".into(),
            expires_at: now.saturating_add(response.expires_in.unwrap_or(3600)),
            scope: response.scope.clone().unwrap_or_default(),
            issued_token_type,
        })
    }
}

/// What a cached machine token was issued for: the subject (the type and fingerprint of the
/// subject token; `None` for the client itself) and the target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    subject: Option<(&'static str, Fingerprint)>,
    /// The fingerprint of the actor token of an impersonation.
    actor: Option<Fingerprint>,
    target: TokenTarget,
}

impl CacheKey {
    /// The key of a `client_credentials` token.
    #[must_use]
    pub fn client(target: TokenTarget) -> Self {
        Self {
            subject: None,
            actor: None,
            target,
        }
    }

    /// The key of a token exchanged for `subject`: keeps its fingerprint, not the token.
    #[must_use]
    pub fn exchange(subject: &ExchangeSubject, target: TokenTarget) -> Self {
        Self {
            subject: Some((subject.token_type(), subject.fingerprint())),
            actor: None,
            target,
        }
    }

    /// The key of an impersonation: the subject token, the actor token (each by fingerprint)
    /// and the target, everything the request names.
    #[must_use]
    pub fn impersonation(
        subject: &ExchangeSubject,
        actor: Option<&AccessToken>,
        target: TokenTarget,
    ) -> Self {
        Self {
            actor: actor.map(AccessToken::fingerprint),
            ..Self::exchange(subject, target)
        }
    }
}

struct Entry {
    token: MachineToken,
    /// Which fetch stored it (a caller that waited for the lane knows a fetch happened meanwhile).
    fetch: u64,
    /// Never served from the cache at or after this time (seconds since the epoch): the expiry
    /// of the subject token it was exchanged for, when known.
    not_after: Option<u64>,
}

impl Entry {
    /// Whether the cache may still serve it at `now` at all (it has not expired, nor has the
    /// subject token it came from).
    fn usable(&self, now: u64) -> bool {
        self.token.expires_at > now && self.not_after.is_none_or(|limit| now < limit)
    }
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<CacheKey, Entry>,
    fetches: u64,
    /// Tokens of single-use exchanges that no caller has received yet (a cancelled caller's).
    unclaimed: HashMap<CacheKey, Entry>,
}

/// Inserts `entry`, first dropping the entries that can no longer be served and, when `map` is
/// full, the one expiring first.
fn insert_bounded(map: &mut HashMap<CacheKey, Entry>, key: CacheKey, entry: Entry, now: u64) {
    map.retain(|_, e| e.usable(now));
    if map.len() >= MAX_CACHED_TOKENS
        && let Some(first) = map
            .iter()
            .min_by_key(|(_, e)| e.token.expires_at)
            .map(|(k, _)| k.clone())
    {
        map.remove(&first);
    }
    map.insert(key, entry);
}

impl CacheState {
    fn store(&mut self, key: CacheKey, token: MachineToken, not_after: Option<u64>, now: u64) {
        self.fetches += 1;
        let entry = Entry {
            token,
            fetch: self.fetches,
            not_after,
        };
        insert_bounded(&mut self.entries, key, entry, now);
    }

    fn keep_unclaimed(&mut self, key: CacheKey, token: MachineToken, now: u64) {
        let entry = Entry {
            token,
            fetch: 0,
            not_after: None,
        };
        insert_bounded(&mut self.unclaimed, key, entry, now);
    }

    /// The unclaimed token under `key`, removed (it is handed out once), if it has not expired.
    fn claim(&mut self, key: &CacheKey, now: u64) -> Option<MachineToken> {
        self.unclaimed
            .remove(key)
            .filter(|e| e.usable(now))
            .map(|e| e.token)
    }
}

/// Machine tokens of one client, in memory. One request per key at a time: callers that queue
/// behind a fetch get its token.
#[derive(Default)]
pub struct MachineTokenCache {
    state: Mutex<CacheState>,
    lanes: Lanes<CacheKey>,
}

impl std::fmt::Debug for MachineTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineTokenCache").finish_non_exhaustive()
    }
}

impl MachineTokenCache {
    /// The token under `key` if it has more than `margin` seconds of life left, else the one
    /// `fetch` gets (stored under `key`, and never served at or after `not_after` when given).
    /// Concurrent callers with the same key share one fetch.
    ///
    /// # Errors
    /// `fetch`'s error (a failed fetch is not cached: the next caller tries again).
    pub async fn get_or_fetch<F, Fut>(
        self: &Arc<Self>,
        key: CacheKey,
        margin: u64,
        not_after: Option<u64>,
        fetch: F,
    ) -> Result<MachineToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<MachineToken>> + Send + 'static,
    {
        let seen = match self.lookup(&key, margin, None)? {
            Lookup::Hit(token) => return Ok(token),
            Lookup::Miss(seen) => seen,
        };
        let guard = self.lanes.enter(&key).await?;
        if let Lookup::Hit(token) = self.lookup(&key, margin, Some(seen))? {
            return Ok(token);
        }
        let cache = self.clone();
        let request = fetch();
        run_in_lane(guard, async move {
            let token = request.await?;
            cache
                .state
                .lock()
                .map_err(|_| poisoned("machine token cache"))?
                .store(key, token.clone(), not_after, now_epoch_seconds());
            Ok(token)
        })
        .await
    }

    /// The token `fetch` gets for a single-use subject token, never cached: the request runs to
    /// completion even if the caller is cancelled, and its token is kept under `key` until a
    /// caller receives it, so the retry of a cancelled call gets it (once, then it is dropped;
    /// an expired one is dropped unseen). Concurrent callers with the same key queue for it.
    ///
    /// # Errors
    /// `fetch`'s error (nothing is kept).
    pub async fn fetch_once<F, Fut>(self: &Arc<Self>, key: CacheKey, fetch: F) -> Result<MachineToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<MachineToken>> + Send + 'static,
    {
        let state = || self.state.lock().map_err(|_| poisoned("machine token cache"));
        let guard = self.lanes.enter(&key).await?;
        if let Some(token) = state()?.claim(&key, now_epoch_seconds()) {
            return Ok(token);
        }
        let cache = self.clone();
        let request = fetch();
        let kept = key.clone();
        let token = run_in_lane(guard, async move {
            let token = request.await?;
            cache
                .state
                .lock()
                .map_err(|_| poisoned("machine token cache"))?
                .keep_unclaimed(kept, token.clone(), now_epoch_seconds());
            Ok(token)
        })
        .await?;
        // Received: no retry needs it now.
        state()?.unclaimed.remove(&key);
        Ok(token)
    }

    /// A fresh token under `key`; after waiting for the lane (`seen`: the fetch stored when the
    /// caller first looked), also one another caller fetched meanwhile, if it has not expired.
    fn lookup(&self, key: &CacheKey, margin: u64, seen: Option<Option<u64>>) -> Result<Lookup> {
        let state = self.state.lock().map_err(|_| poisoned("machine token cache"))?;
        let now = now_epoch_seconds();
        Ok(match state.entries.get(key) {
            Some(e) if e.usable(now) && is_fresh(e.token.expires_at, now, margin) => {
                Lookup::Hit(e.token.clone())
            }
            Some(e) if e.usable(now) && seen.is_some_and(|s| s != Some(e.fetch)) => {
                Lookup::Hit(e.token.clone())
            }
            entry => Lookup::Miss(entry.map(|e| e.fetch)),
        })
    }
}

enum Lookup {
    Hit(MachineToken),
    Miss(Option<u64>),
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::grant::PERSONAL_ACCESS_TOKEN_TYPE;
    use crate::secret::PersonalAccessTokenValue;

    fn response(json: serde_json::Value) -> TokenResponse {
        serde_json::from_value(json).unwrap()
    }

    fn target(resource: &str) -> TokenTarget {
        TokenTarget::new(Some(resource), None, &["read"]).unwrap()
    }

    fn token(value: &str, expires_at: u64) -> MachineToken {
        MachineToken {
            access_token: AccessToken::new(value),
            token_type: "Bearer".into(),
            expires_at,
            scope: String::new(),
            issued_token_type: None,
        }
    }

    #[test]
    fn responses_are_read_and_checked() {
        let pat = ExchangeSubject::PersonalAccessToken(PersonalAccessTokenValue::new("pat_x"));
        let bare = TokenTarget::new(None, None, &[] as &[&str]).unwrap();
        let exchange = Grant::TokenExchange {
            subject: &pat,
            actor_token: None,
            target: &bare,
        };
        let m2m = Grant::ClientCredentials { target: &bare };
        let ok = response(serde_json::json!({
            "access_token": "at-secret", "expires_in": 600, "token_type": "Bearer", "scope": "read"
        }));
        let exchanged = MachineToken::from_response(&ok, &exchange, 1000).unwrap();
        assert_eq!(exchanged.expires_at, 1600);
        assert_eq!(exchanged.scope, "read");
        assert_eq!(exchanged.issued_token_type.as_deref(), Some(ACCESS_TOKEN_TYPE));
        assert!(!format!("{exchanged:?}").contains("at-secret"));
        let json = serde_json::to_value(&exchanged).unwrap();
        assert_eq!(json["accessToken"], "at-secret");
        assert_eq!(json["expiresAt"], 1600);
        let machine = MachineToken::from_response(&ok, &m2m, 1000).unwrap();
        assert_eq!(machine.issued_token_type, None);

        for bad in [
            serde_json::json!({"access_token": "", "expires_in": 1}),
            serde_json::json!({"access_token": "a", "token_type": "DPoP"}),
            serde_json::json!({"access_token": "a", "issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}),
        ] {
            assert!(matches!(
                MachineToken::from_response(&response(bad), &exchange, 0),
                Err(Error::UnexpectedResponse { .. })
            ));
        }
    }

    #[test]
    fn keys_hold_a_fingerprint_of_the_token_not_the_token() {
        let pat = ExchangeSubject::PersonalAccessToken(PersonalAccessTokenValue::new("pat_the_secret_value"));
        let key = CacheKey::exchange(&pat, target("https://api"));
        assert!(!format!("{key:?}").contains("pat_the_secret_value"));
        assert_eq!(key.subject, Some((PERSONAL_ACCESS_TOKEN_TYPE, pat.fingerprint())));
        assert_eq!(key, CacheKey::exchange(&pat, target("https://api")));
        assert_ne!(key, CacheKey::client(target("https://api")));
        assert_ne!(key, CacheKey::exchange(&pat, target("https://other")));
        let other = ExchangeSubject::PersonalAccessToken(PersonalAccessTokenValue::new("pat_another_value"));
        assert_ne!(key, CacheKey::exchange(&other, target("https://api")));
        // The same string as another kind of subject token is another subject.
        let delegated = ExchangeSubject::AccessToken(AccessToken::new("pat_the_secret_value"));
        assert_ne!(key, CacheKey::exchange(&delegated, target("https://api")));
    }

    #[test]
    fn the_cache_is_bounded_and_drops_expired_tokens() {
        let mut state = CacheState::default();
        state.store(CacheKey::client(target("https://old")), token("old", 5), None, 0);
        state.store(
            CacheKey::client(target("https://subject-expired")),
            token("t", 9999),
            Some(8),
            0,
        );
        for i in 0..MAX_CACHED_TOKENS {
            state.store(
                CacheKey::client(target(&format!("https://api/{i}"))),
                token("t", 100 + i as u64),
                None,
                10,
            );
        }
        assert!(
            !state
                .entries
                .contains_key(&CacheKey::client(target("https://subject-expired")))
        );
        assert!(
            !state
                .entries
                .contains_key(&CacheKey::client(target("https://old")))
        );
        assert_eq!(state.entries.len(), MAX_CACHED_TOKENS);
        state.store(
            CacheKey::client(target("https://new")),
            token("t", 9999),
            None,
            10,
        );
        assert_eq!(state.entries.len(), MAX_CACHED_TOKENS);
        assert!(
            !state
                .entries
                .contains_key(&CacheKey::client(target("https://api/0")))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_fetch_and_expired_tokens_are_refetched() {
        let cache = Arc::new(MachineTokenCache::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let get = |lifetime: u64, margin: u64| {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            async move {
                cache
                    .get_or_fetch(
                        CacheKey::client(target("https://api")),
                        margin,
                        None,
                        move || async move {
                            let n = fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(token(&format!("at-{n}"), now_epoch_seconds() + lifetime))
                        },
                    )
                    .await
            }
        };
        let tasks: Vec<_> = (0..20).map(|_| tokio::spawn(get(3600, 60))).collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().access_token.secret(), "at-0");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(get(3600, 60).await.unwrap().access_token.secret(), "at-0");

        // A token within the margin is refetched; callers that queued behind that fetch take its
        // token even though it is within the margin too (it has not expired).
        let tasks: Vec<_> = (0..5).map(|_| tokio::spawn(get(30, 3600))).collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().access_token.secret(), "at-1");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // A later caller does not: the token is within its margin.
        assert_eq!(get(30, 3600).await.unwrap().access_token.secret(), "at-2");
    }

    #[tokio::test]
    async fn a_single_use_exchange_outlives_its_cancelled_caller_and_is_handed_out_once() {
        let cache = Arc::new(MachineTokenCache::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let pat = ExchangeSubject::PersonalAccessToken(PersonalAccessTokenValue::new("sub_x"));
        let key = CacheKey::impersonation(&pat, None, target("https://api"));
        let exchange = |delay: u64| {
            let (cache, fetches, key) = (cache.clone(), fetches.clone(), key.clone());
            async move {
                cache
                    .fetch_once(key, move || async move {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        let n = fetches.fetch_add(1, Ordering::SeqCst);
                        Ok(token(&format!("at-{n}"), now_epoch_seconds() + 600))
                    })
                    .await
            }
        };
        let cancelled = tokio::spawn(exchange(200));
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancelled.abort();
        assert!(cancelled.await.unwrap_err().is_cancelled());
        // The retry waits for the exchange in flight and gets its token, without a request.
        assert_eq!(exchange(0).await.unwrap().access_token.secret(), "at-0");
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // Handed out once: the next call exchanges again, and a received token is not kept.
        assert_eq!(exchange(0).await.unwrap().access_token.secret(), "at-1");
        assert_eq!(exchange(0).await.unwrap().access_token.secret(), "at-2");
        // Another actor is another request.
        let actor = AccessToken::new("actor");
        assert_ne!(
            CacheKey::impersonation(&pat, Some(&actor), target("https://api")),
            key
        );
    }

    #[tokio::test]
    async fn a_failed_fetch_is_not_cached() {
        let cache = Arc::new(MachineTokenCache::default());
        let key = CacheKey::client(target("https://api"));
        let failed = cache
            .get_or_fetch(key.clone(), 0, None, || async { Err(Error::config("boom")) })
            .await;
        assert!(failed.is_err());
        let ok = cache
            .get_or_fetch(key, 0, None, || async {
                Ok(token("at", now_epoch_seconds() + 60))
            })
            .await
            .unwrap();
        assert_eq!(ok.access_token.secret(), "at");
    }

    #[tokio::test]
    async fn a_token_is_not_served_after_its_subject_token_expired() {
        let cache = Arc::new(MachineTokenCache::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let get = |not_after: u64| {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            async move {
                cache
                    .get_or_fetch(
                        CacheKey::client(target("https://api")),
                        0,
                        Some(not_after),
                        move || async move {
                            let n = fetches.fetch_add(1, Ordering::SeqCst);
                            Ok(token(&format!("at-{n}"), now_epoch_seconds() + 3600))
                        },
                    )
                    .await
                    .unwrap()
            }
        };
        let now = now_epoch_seconds();
        assert_eq!(get(now + 100).await.access_token.secret(), "at-0");
        assert_eq!(get(now + 100).await.access_token.secret(), "at-0");
        // Once the subject token has expired, the hour the token has left does not matter.
        cache
            .state
            .lock()
            .unwrap()
            .entries
            .values_mut()
            .for_each(|e| e.not_after = Some(now));
        assert_eq!(get(now + 100).await.access_token.secret(), "at-1");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }
}
