//! The conversions of `getContext` (`crate::context`) for `CoreClient`.

use crate::context::{Context, ContextTokens};
use crate::secret::AccessToken;

/// Token pairs as `(key, token)` tuples Python turns into a dict.
pub(crate) type TokenPairs = Vec<(String, String)>;

/// The tokens the snapshot held, when it held every one wanted (`None`: run `get_context`).
pub(crate) fn found_tokens(tokens: ContextTokens) -> Option<(TokenPairs, TokenPairs)> {
    if !tokens.complete() {
        return None;
    }
    let pairs = |found: Vec<(String, Option<AccessToken>)>| {
        found
            .into_iter()
            .filter_map(|(key, token)| token.map(|t| (key, t.secret().to_owned())))
            .collect()
    };
    Some((pairs(tokens.access), pairs(tokens.organizations)))
}

/// A context as the JSON object Python reads: `idToken`, `userInfo`, `accessTokens`,
/// `organizationTokens`.
pub(crate) fn context_json(context: &Context) -> String {
    let pairs = |tokens: &[(String, AccessToken)]| {
        tokens
            .iter()
            .map(|(key, token)| (key.clone(), serde_json::Value::from(token.secret())))
            .collect::<serde_json::Map<_, _>>()
    };
    serde_json::json!({
        "idToken": context.id_token.as_ref().map(|t| t.secret()),
        "userInfo": context.user_info,
        "accessTokens": pairs(&context.access_tokens),
        "organizationTokens": pairs(&context.organization_tokens),
    })
    .to_string()
}
