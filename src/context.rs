//! The signed-in user's context in one call, as `@logto/node`'s `getContext` gives it: the ID
//! token, optionally the userinfo, and the access tokens of the configured resources and of the
//! user's organizations.
//!
//! The session is read once ([`SessionSnapshot`]); the tokens still fresh come from that read,
//! and only the missing or expiring ones are refreshed, each through
//! [`LogtoClient::access_token`] (the session lock and the process-wide single flight).

use serde_json::{Map, Value};

use crate::client::LogtoClient;
use crate::config::ORGANIZATIONS_RESOURCE;
use crate::error::{Endpoint, Error, Result};
use crate::jwt;
use crate::secret::{AccessToken, IdToken};
use crate::storage::{self, Storage, StorageKey};

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
    pub access: Vec<(String, Option<AccessToken>)>,
    /// Per organization of the ID token.
    pub organizations: Vec<(String, Option<AccessToken>)>,
    /// The resource-less token the userinfo request takes, when the userinfo is wanted.
    pub user_info: Option<Option<AccessToken>>,
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
fn organizations(claims: &Map<String, Value>) -> Vec<String> {
    claims
        .get("organizations")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

impl LogtoClient {
    /// Reads the session once: the ID token, and the access-token map when someone is signed
    /// in.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn read_session<S: Storage>(&self, storage: &S) -> Result<SessionSnapshot> {
        let id_token = storage::read(storage, StorageKey::IdToken).await?;
        let access_token_map = match id_token {
            Some(_) => storage::read(storage, StorageKey::AccessTokenMap).await?,
            None => None,
        };
        Ok(SessionSnapshot {
            id_token,
            access_token_map,
        })
    }

    /// The tokens a context wants, found in the stored access-token map `stored_map`: pure and
    /// synchronous (the per-request path when every token is fresh). `organization_ids` are the
    /// ID token's `organizations`; they are wanted only with the organizations scope configured.
    #[must_use]
    pub fn context_tokens(
        &self,
        stored_map: Option<&str>,
        organization_ids: &[String],
        options: ContextOptions,
    ) -> ContextTokens {
        let cached = |resource: &str, organization_id: Option<&str>| {
            self.cached_access_token(stored_map, resource, organization_id)
                .map(|cached| cached.token)
        };
        let access = if options.access_tokens {
            let resources = self.config().resources().iter();
            let apis = resources.filter(|r| *r != ORGANIZATIONS_RESOURCE);
            apis.map(|r| (r.clone(), cached(r, None))).collect()
        } else {
            Vec::new()
        };
        let organizations = if options.organization_tokens && self.config().has_organizations_scope() {
            let ids = organization_ids.iter();
            ids.map(|id| (id.clone(), cached("", Some(id)))).collect()
        } else {
            Vec::new()
        };
        let user_info = options.fetch_user_info.then(|| cached("", None));
        ContextTokens {
            access,
            organizations,
            user_info,
        }
    }

    /// The signed-in user's context, from `snapshot` when the caller has read the session
    /// already, else from one read of it. Tokens the snapshot lacks (or that expire within
    /// `accessTokenMargin`) are refreshed as [`access_token`](Self::access_token) refreshes; a
    /// refresh the provider rejects (the session is cleared) gives the signed-out context.
    ///
    /// # Errors
    /// Storage, network, OAuth (such as `access_denied` for an organization the user left) and
    /// token validation errors; [`Error::TokenValidation`] (`sub`) for a userinfo of another user.
    pub async fn context<S: Storage>(
        &self,
        storage: &S,
        snapshot: Option<SessionSnapshot>,
        options: ContextOptions,
    ) -> Result<Context> {
        let snapshot = match snapshot {
            Some(snapshot) => snapshot,
            None => self.read_session(storage).await?,
        };
        let Some(id_token) = snapshot.id_token else {
            return Ok(Context::default());
        };
        match self
            .fill_context(storage, id_token, snapshot.access_token_map, options)
            .await
        {
            Err(Error::SignInRequired(_)) => Ok(Context::default()),
            result => result,
        }
    }

    async fn fill_context<S: Storage>(
        &self,
        storage: &S,
        id_token: String,
        stored_map: Option<String>,
        options: ContextOptions,
    ) -> Result<Context> {
        let claims = jwt::decode_claims_unverified(&id_token)?;
        let tokens = self.context_tokens(stored_map.as_deref(), &organizations(&claims), options);
        let mut access_tokens = Vec::with_capacity(tokens.access.len());
        for (resource, found) in tokens.access {
            if let Some(token) = self.found_or_refreshed(storage, found, &resource, None).await? {
                access_tokens.push((resource, token));
            }
        }
        let mut organization_tokens = Vec::with_capacity(tokens.organizations.len());
        for (id, found) in tokens.organizations {
            if let Some(token) = self.found_or_refreshed(storage, found, "", Some(&id)).await? {
                organization_tokens.push((id, token));
            }
        }
        let user_info = match tokens.user_info {
            Some(found) => {
                let token = self.found_or_refreshed(storage, found, "", None).await?.ok_or(
                    Error::NotAuthenticated("no access token or refresh token is stored"),
                )?;
                Some(self.request_user_info(&token, &claims).await?)
            }
            None => None,
        };
        Ok(Context {
            id_token: Some(IdToken::new(id_token)),
            user_info,
            access_tokens,
            organization_tokens,
        })
    }

    /// `found` when the snapshot held it; else the token [`access_token`](Self::access_token)
    /// gives (a refresh, or another task's or process's answer under the lock).
    async fn found_or_refreshed<S: Storage>(
        &self,
        storage: &S,
        found: Option<AccessToken>,
        resource: &str,
        organization_id: Option<&str>,
    ) -> Result<Option<AccessToken>> {
        match found {
            Some(token) => Ok(Some(token)),
            None => self.access_token(storage, resource, organization_id).await,
        }
    }

    /// The userinfo fetched with `token`; its `sub` must be `id_claims`'.
    ///
    /// # Errors
    /// [`Error::TokenValidation`] (`sub`) on a subject mismatch; OAuth and network errors.
    pub(crate) async fn request_user_info(
        &self,
        token: &AccessToken,
        id_claims: &Map<String, Value>,
    ) -> Result<Map<String, Value>> {
        let metadata = self.provider_metadata().await?;
        let endpoint = metadata
            .userinfo_endpoint
            .as_deref()
            .ok_or_else(|| Error::UnexpectedResponse {
                endpoint: Endpoint::Discovery,
                status: 200,
                reason: "the provider has no userinfo_endpoint".into(),
            })?;
        let info: Map<String, Value> = self
            .http()
            .get_json_bearer(Endpoint::UserInfo, endpoint, token.secret())
            .await?;
        crate::user_info::check_subject(&info, id_claims)?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn organizations_are_the_string_ids_of_the_claim() {
        let claims = json!({"organizations": ["o1", 7, "o2"]});
        assert_eq!(organizations(claims.as_object().unwrap()), ["o1", "o2"]);
        assert!(organizations(json!({}).as_object().unwrap()).is_empty());
    }
}
