//! The signed-in user's context in one call, as `@logto/node`'s `getContext` gives it: the ID
//! token, optionally the userinfo, and the access tokens of the configured resources and of the
//! user's organizations.
//!
//! The session is read once ([`SessionSnapshot`]); the tokens still fresh come from that read,
//! and only the missing or expiring ones are refreshed, each through
//! [`LogtoClient::access_token`](crate::client::LogtoClient::access_token) (the session lock and the process-wide single flight).

use serde_json::{Map, Value};

use crate::secret::{AccessToken, IdToken};
use crate::token_cache::CachedAccessToken;

/// What a context holds besides the ID token.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextOptions {
    /// Fetch the userinfo (one request with the resource-less access token).
    pub fetch_user_info: bool,
    /// An access token for each resource of the configuration but Logto's reserved
    /// organizations resource (added with the organizations scope; organization tokens are
    /// `organization_tokens`).
    pub access_tokens: bool,
    /// An organization token for each organization of the ID token's `organizations` claim
    /// (when the organizations scope is configured).
    pub organization_tokens: bool,
}

/// The session as read once: the stored ID token and access-token map.
#[derive(Debug, Clone, Default)]
pub struct SessionSnapshot {
    /// The value under [`StorageKey::IdToken`].
    pub id_token: Option<String>,
    /// The value under [`StorageKey::AccessTokenMap`].
    pub access_token_map: Option<String>,
}

/// The tokens a context wants, each with the fresh one the snapshot holds (`None`: to refresh).
#[derive(Debug, Default)]
pub struct ContextTokens {
    /// Per configured resource.
    pub access: Vec<(String, Option<CachedAccessToken>)>,
    /// Per organization of the ID token.
    pub organizations: Vec<(String, Option<CachedAccessToken>)>,
    /// The resource-less token the userinfo request takes, when the userinfo is wanted.
    pub user_info: Option<Option<CachedAccessToken>>,
}

impl ContextTokens {
    /// Whether every wanted token came from the snapshot (nothing to refresh).
    #[must_use]
    pub fn complete(&self) -> bool {
        self.access
            .iter()
            .chain(&self.organizations)
            .all(|(_, token)| token.is_some())
            && !matches!(self.user_info, Some(None))
    }

    /// The earliest expiry among the tokens found (`u64::MAX` without any): once
    /// `accessTokenMargin` before it, one of them is due for a refresh.
    #[must_use]
    pub fn earliest_expiry(&self) -> u64 {
        let found = self.access.iter().chain(&self.organizations).map(|(_, t)| t);
        found
            .chain(self.user_info.iter())
            .flatten()
            .map(|cached| cached.expires_at)
            .min()
            .unwrap_or(u64::MAX)
    }
}

/// A signed-in user's context; `id_token` is `None` when nobody is signed in (everything else
/// is then empty).
#[derive(Debug, Default)]
pub struct Context {
    /// The stored ID token (its claims were verified when it was stored).
    pub id_token: Option<IdToken>,
    /// The userinfo, when asked for.
    pub user_info: Option<Map<String, Value>>,
    /// Access tokens by resource.
    pub access_tokens: Vec<(String, AccessToken)>,
    /// Organization tokens by organization id.
    pub organization_tokens: Vec<(String, AccessToken)>,
}

/// The organization ids of an ID token's `organizations` claim.
pub(crate) fn organizations(claims: &Map<String, Value>) -> Vec<String> {
    claims
        .get("organizations")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::client::LogtoClient;

    fn client(scopes: &[&str]) -> LogtoClient {
        let config = crate::LogtoConfig::builder("https://tenant.logto.app", "app")
            .scopes(scopes.iter().map(|s| (*s).to_owned()).collect())
            .resources(vec!["https://api.example.com".into()])
            .build()
            .unwrap();
        LogtoClient::new(config).unwrap()
    }

    #[test]
    fn the_tokens_wanted_and_those_the_stored_map_holds() {
        let fresh = json!({"token": "t", "scope": "", "expiresAt": u64::MAX / 2});
        let stored =
            json!({"https://api.example.com": fresh, "urn:logto:organization:o1": fresh}).to_string();
        let all = ContextOptions {
            fetch_user_info: false,
            access_tokens: true,
            organization_tokens: true,
        };
        let ids = ["o1".to_owned(), "o2".to_owned()];
        let with_organizations = client(&[crate::config::ORGANIZATIONS_SCOPE]);
        let tokens = with_organizations.context_tokens(Some(&stored), &ids, all);
        // The reserved organizations resource the scope added is no API of the app.
        let resources: Vec<_> = tokens
            .access
            .iter()
            .map(|(r, t)| (r.as_str(), t.is_some()))
            .collect();
        assert_eq!(resources, [("https://api.example.com", true)]);
        let organizations: Vec<_> = tokens
            .organizations
            .iter()
            .map(|(o, t)| (o.as_str(), t.is_some()))
            .collect();
        assert_eq!(organizations, [("o1", true), ("o2", false)]);
        assert!(!tokens.complete());
        let served = with_organizations.context_tokens(Some(&stored), &ids[..1], all);
        assert!(served.complete() && served.earliest_expiry() == u64::MAX / 2);
        // Without the scope no organization token is wanted; without a map every token is missing.
        assert!(
            client(&[])
                .context_tokens(Some(&stored), &ids, all)
                .organizations
                .is_empty()
        );
        let user_info = ContextOptions {
            fetch_user_info: true,
            ..ContextOptions::default()
        };
        assert!(!client(&[]).context_tokens(None, &ids, user_info).complete());
    }

    #[test]
    fn organizations_are_the_string_ids_of_the_claim() {
        let claims = json!({"organizations": ["o1", 7, "o2"]});
        assert_eq!(organizations(claims.as_object().unwrap()), ["o1", "o2"]);
        assert!(organizations(json!({}).as_object().unwrap()).is_empty());
    }
}
