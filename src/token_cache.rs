//! The access tokens of a session, stored as one JSON map under
//! [`StorageKey::AccessTokenMap`](crate::storage::StorageKey::AccessTokenMap), keyed by resource
//! (`""` for the token without a resource) or by organization audience
//! (`urn:logto:organization:<id>`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::ORGANIZATION_AUDIENCE_PREFIX;
use crate::grant::TokenResponse;
use crate::secret::AccessToken;

/// One cached access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedAccessToken {
    /// The token.
    pub token: AccessToken,
    /// Granted scopes, space-separated.
    #[serde(default)]
    pub scope: String,
    /// Expiry, seconds since the epoch.
    pub expires_at: u64,
}

/// The stored map of access tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccessTokenMap(HashMap<String, CachedAccessToken>);

/// The cache key of a token: the resource; `urn:logto:organization:<id>` for an organization
/// token; `<resource>#<id>` for an organization-scoped resource token.
#[must_use]
pub fn cache_key(resource: &str, organization_id: Option<&str>) -> String {
    match organization_id {
        Some(org) if resource.is_empty() => format!("{ORGANIZATION_AUDIENCE_PREFIX}{org}"),
        Some(org) => format!("{resource}#{org}"),
        None => resource.to_owned(),
    }
}

/// Whether a token expiring at `expires_at` has more than `margin` seconds of life at `now`:
/// the one freshness rule of the cache.
#[must_use]
pub fn is_fresh(expires_at: u64, now: u64, margin: u64) -> bool {
    expires_at > now.saturating_add(margin)
}

/// The `aud` a token for `resource` / `organization_id` carries (`None`: opaque, no audience).
#[must_use]
pub fn audience(resource: &str, organization_id: Option<&str>) -> Option<String> {
    match organization_id {
        Some(org) if resource.is_empty() => Some(format!("{ORGANIZATION_AUDIENCE_PREFIX}{org}")),
        _ if resource.is_empty() => None,
        _ => Some(resource.to_owned()),
    }
}

impl AccessTokenMap {
    /// Parses the stored JSON; a corrupt value reads as an empty map (the tokens are refetched).
    #[must_use]
    pub fn from_stored(value: Option<&str>) -> Self {
        value
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    }

    /// The JSON to store.
    #[must_use]
    pub fn to_stored(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    /// The token under `key` if it still has more than `margin` seconds of life at `now`.
    #[must_use]
    pub fn fresh(&self, key: &str, now: u64, margin: u64) -> Option<&CachedAccessToken> {
        self.0
            .get(key)
            .filter(|t| t.expires_at > now.saturating_add(margin))
    }

    /// Stores the access token of `response` under `key`.
    pub fn insert(&mut self, key: String, response: &TokenResponse, now: u64) {
        let expires_at = now.saturating_add(response.expires_in.unwrap_or(3600));
        let scope = response.scope.clone().unwrap_or_default();
        self.0.insert(
            key,
            CachedAccessToken {
                token: response.access_token.clone(),
                scope,
                expires_at,
            },
        );
    }

    /// Removes the token under `key`.
    pub fn remove(&mut self, key: &str) -> Option<CachedAccessToken> {
        self.0.remove(key)
    }

    /// Whether no token is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Remembers the last stored map it parsed, so repeated cache hits on an unchanged map do not
/// parse the same JSON again (the stored text is compared in full, so a change is never missed).
/// Its lock is only tried, never waited for: a memo busy in another thread (or held by a thread
/// that a fork left behind) just means parsing once more.
#[derive(Debug, Default)]
pub struct ParsedMapMemo {
    last: Mutex<Option<(String, Arc<AccessTokenMap>)>>,
}

impl ParsedMapMemo {
    /// The map stored as `stored`.
    #[must_use]
    pub fn parse(&self, stored: Option<&str>) -> Arc<AccessTokenMap> {
        let Some(raw) = stored else {
            return Arc::default();
        };
        if let Ok(last) = self.last.try_lock()
            && let Some((text, map)) = last.as_ref()
            && text == raw
        {
            return map.clone();
        }
        let map = Arc::new(AccessTokenMap::from_stored(Some(raw)));
        if let Ok(mut last) = self.last.try_lock() {
            *last = Some((raw.to_owned(), map.clone()));
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_expiry() {
        let response: TokenResponse =
            serde_json::from_str(r#"{"access_token":"at","expires_in":100,"scope":"read"}"#).unwrap();
        let mut map = AccessTokenMap::default();
        map.insert(cache_key("https://api", None), &response, 1000);
        map.insert(cache_key("", Some("org-1")), &response, 1000);
        assert_eq!(cache_key("https://api", Some("org-1")), "https://api#org-1");
        assert_eq!(
            audience("", Some("o")).as_deref(),
            Some("urn:logto:organization:o")
        );
        assert_eq!(audience("https://api", Some("o")).as_deref(), Some("https://api"));
        assert_eq!(audience("", None), None);
        let stored = map.to_stored();
        let map = AccessTokenMap::from_stored(Some(&stored));
        assert_eq!(map.fresh("https://api", 1000, 60).unwrap().token.secret(), "at");
        assert!(map.fresh("https://api", 1041, 60).is_none());
        assert!(map.fresh("urn:logto:organization:org-1", 1000, 60).is_some());
        assert!(AccessTokenMap::from_stored(Some("{corrupt")).is_empty());

        let memo = ParsedMapMemo::default();
        assert!(memo.parse(Some(&stored)).fresh("https://api", 1000, 60).is_some());
        assert!(memo.parse(Some(&stored)).fresh("https://api", 1000, 60).is_some());
        assert!(memo.parse(Some("{}")).fresh("https://api", 1000, 60).is_none());
        assert!(memo.parse(None).is_empty());
    }
}
