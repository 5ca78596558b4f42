//! The authorization request: PKCE S256, fresh `state` and `nonce`, Logto's extension
//! parameters (validated here, because one invalid value makes Logto silently drop all of them),
//! and the [`SignInSession`] stored until the callback.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{LogtoConfig, normalise_prompt};
use crate::error::{Error, Result};
use crate::pkce;
use crate::secret::{CodeVerifier, Nonce, State};

const FIRST_SCREENS: [&str; 7] = [
    "sign_in",
    "register",
    "reset_password",
    "identifier:sign_in",
    "identifier:register",
    "single_sign_on",
    "signIn",
];
const IDENTIFIERS: [&str; 3] = ["email", "phone", "username"];
const INTERACTION_MODES: [&str; 2] = ["signIn", "signUp"];
/// Parameters the client sets itself; `extra_params` may not override them.
const RESERVED_PARAMS: [&str; 12] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "prompt",
    "response_mode",
    "request",
];

/// Options of one sign-in (the official SDKs' `signIn` arguments).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SignInOptions {
    /// Where the provider sends the user back; must be registered for the application.
    pub redirect_uri: String,
    /// Where the application wants to go after the callback (kept in the session, not sent).
    pub post_redirect_uri: Option<String>,
    /// `signIn` or `signUp` (deprecated by Logto; ignored when `first_screen` is set).
    pub interaction_mode: Option<String>,
    /// Logto's `first_screen`.
    pub first_screen: Option<String>,
    /// Logto's `identifier` (with `first_screen=identifier:*`).
    pub identifiers: Vec<String>,
    /// Logto's `direct_sign_in`: `social:<target>` or `sso:<connector id>`.
    pub direct_sign_in: Option<String>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// Overrides the configured `prompt` for this sign-in.
    pub prompt: Option<String>,
    /// Further parameters (`organization_id`, `ui_locales`, …).
    pub extra_params: Vec<(String, String)>,
}

impl SignInOptions {
    /// Options with only a redirect URI.
    #[must_use]
    pub fn new(redirect_uri: impl Into<String>) -> Self {
        Self {
            redirect_uri: redirect_uri.into(),
            ..Self::default()
        }
    }
}

/// What a sign-in stores until its callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInSession {
    /// The redirect URI sent with the request.
    pub redirect_uri: String,
    /// The application's post-sign-in destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_redirect_uri: Option<String>,
    /// PKCE verifier.
    pub code_verifier: CodeVerifier,
    /// The request's `state`.
    pub state: State,
    /// The request's `nonce`.
    pub nonce: Nonce,
}

impl SignInSession {
    /// A session with fresh random verifier, state and nonce.
    #[must_use]
    pub fn new(redirect_uri: String, post_redirect_uri: Option<String>) -> Self {
        Self {
            redirect_uri,
            post_redirect_uri,
            code_verifier: pkce::new_code_verifier(),
            state: pkce::new_state(),
            nonce: pkce::new_nonce(),
        }
    }
}

fn one_of(name: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "{name} {value:?} is not one of {}",
            allowed.join(", ")
        )))
    }
}

/// Checks that a redirect URI is an absolute URL without a fragment.
pub(crate) fn validate_redirect_uri(name: &str, uri: &str) -> Result<Url> {
    let url = Url::parse(uri).map_err(|_| Error::config(format!("{name} is not an absolute URL")))?;
    if url.fragment().is_some() {
        return Err(Error::config(format!("{name} must not have a fragment")));
    }
    Ok(url)
}

/// Builds the authorization URL for `session` and validates every option.
///
/// # Errors
/// [`Error::Config`] naming the invalid option.
pub fn authorization_url(
    authorization_endpoint: &str,
    config: &LogtoConfig,
    options: &SignInOptions,
    session: &SignInSession,
) -> Result<String> {
    validate_redirect_uri("redirectUri", &options.redirect_uri)?;
    let mut url = Url::parse(authorization_endpoint)
        .map_err(|_| Error::config("the authorization endpoint is not a URL"))?;
    let prompt = match &options.prompt {
        Some(prompt) => normalise_prompt(prompt)?,
        None => config.prompt().to_owned(),
    };
    if let Some(screen) = &options.first_screen {
        one_of("firstScreen", screen, &FIRST_SCREENS)?;
    }
    for identifier in &options.identifiers {
        one_of("identifier", identifier, &IDENTIFIERS)?;
    }
    if !options.identifiers.is_empty()
        && !options
            .first_screen
            .as_deref()
            .is_some_and(|s| s.starts_with("identifier:"))
    {
        return Err(Error::config(
            "identifiers need firstScreen identifier:sign_in or identifier:register",
        ));
    }
    if let Some(mode) = &options.interaction_mode {
        one_of("interactionMode", mode, &INTERACTION_MODES)?;
    }
    if let Some(direct) = &options.direct_sign_in {
        let valid = direct
            .split_once(':')
            .is_some_and(|(method, target)| matches!(method, "social" | "sso") && !target.is_empty());
        if !valid {
            return Err(Error::config(
                "directSignIn must be social:<target> or sso:<connector id>",
            ));
        }
    }
    if let Some((name, _)) = options
        .extra_params
        .iter()
        .find(|(name, _)| RESERVED_PARAMS.contains(&name.as_str()))
    {
        return Err(Error::config(format!(
            "extraParams cannot set {name:?}; it is set by the client"
        )));
    }

    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("client_id", config.app_id())
            .append_pair("redirect_uri", &options.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", &config.scopes().join(" "))
            .append_pair("state", session.state.secret())
            .append_pair("nonce", session.nonce.secret())
            .append_pair(
                "code_challenge",
                &pkce::code_challenge_s256(&session.code_verifier),
            )
            .append_pair("code_challenge_method", "S256");
        if !prompt.is_empty() {
            query.append_pair("prompt", &prompt);
        }
        for resource in config.resources() {
            query.append_pair("resource", resource);
        }
        match (&options.first_screen, &options.interaction_mode) {
            (Some(screen), _) => {
                query.append_pair("first_screen", screen);
            }
            (None, Some(mode)) => {
                query.append_pair("interaction_mode", mode);
            }
            (None, None) => {}
        }
        if !options.identifiers.is_empty() {
            query.append_pair("identifier", &options.identifiers.join(" "));
        }
        if let Some(direct) = &options.direct_sign_in {
            query.append_pair("direct_sign_in", direct);
        }
        if let Some(hint) = &options.login_hint {
            query.append_pair("login_hint", hint);
        }
        for (name, value) in &options.extra_params {
            query.append_pair(name, value);
        }
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config() -> LogtoConfig {
        LogtoConfig::builder("https://t.logto.app", "app")
            .resources(vec!["https://api.example.com".into()])
            .scopes(vec!["urn:logto:scope:organizations".into()])
            .build()
            .unwrap()
    }

    fn query(url: &str) -> Vec<(String, String)> {
        Url::parse(url).unwrap().query_pairs().into_owned().collect()
    }

    #[test]
    fn builds_a_pkce_authorization_url() {
        let session = SignInSession::new("http://127.0.0.1:5000/callback".into(), None);
        let mut options = SignInOptions::new("http://127.0.0.1:5000/callback");
        options.interaction_mode = Some("signUp".into());
        options.login_hint = Some("alice@example.com".into());
        options.extra_params = vec![("organization_id".into(), "org-1".into())];
        let url = authorization_url("https://t.logto.app/oidc/auth", &config(), &options, &session).unwrap();
        assert!(url.starts_with("https://t.logto.app/oidc/auth?"));
        let pairs = query(&url);
        let map: HashMap<_, _> = pairs.iter().cloned().collect();
        assert_eq!(map["client_id"], "app");
        assert_eq!(map["response_type"], "code");
        assert_eq!(
            map["scope"],
            "openid offline_access profile urn:logto:scope:organizations"
        );
        assert_eq!(
            map["code_challenge"],
            pkce::code_challenge_s256(&session.code_verifier)
        );
        assert_eq!(map["code_challenge_method"], "S256");
        assert!(session.state.ct_eq(&map["state"]));
        assert!(session.nonce.ct_eq(&map["nonce"]));
        assert_eq!(map["prompt"], "consent");
        assert_eq!(map["interaction_mode"], "signUp");
        assert_eq!(map["login_hint"], "alice@example.com");
        assert_eq!(map["organization_id"], "org-1");
        let resources: Vec<_> = pairs
            .iter()
            .filter(|(k, _)| k == "resource")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            resources,
            ["https://api.example.com", "urn:logto:resource:organizations"]
        );
        assert!(!map.contains_key("code_verifier"));
    }

    #[test]
    fn first_screen_replaces_interaction_mode() {
        let session = SignInSession::new("https://app/cb".into(), None);
        let mut options = SignInOptions::new("https://app/cb");
        options.interaction_mode = Some("signUp".into());
        options.first_screen = Some("identifier:register".into());
        options.identifiers = vec!["email".into(), "phone".into()];
        options.direct_sign_in = Some("social:google".into());
        options.prompt = Some("login consent".into());
        let url = authorization_url("https://t/oidc/auth", &config(), &options, &session).unwrap();
        let map: HashMap<_, _> = query(&url).into_iter().collect();
        assert_eq!(map["first_screen"], "identifier:register");
        assert!(!map.contains_key("interaction_mode"));
        assert_eq!(map["identifier"], "email phone");
        assert_eq!(map["direct_sign_in"], "social:google");
        assert_eq!(map["prompt"], "login consent");
    }

    #[test]
    fn invalid_options_are_rejected() {
        let session = SignInSession::new("https://app/cb".into(), None);
        type Mutation = Box<dyn Fn(&mut SignInOptions)>;
        let bad: Vec<Mutation> = vec![
            Box::new(|o| o.redirect_uri = "/relative".into()),
            Box::new(|o| o.redirect_uri = "https://app/cb#frag".into()),
            Box::new(|o| o.first_screen = Some("foo".into())),
            Box::new(|o| o.identifiers = vec!["email".into()]),
            Box::new(|o| o.interaction_mode = Some("register".into())),
            Box::new(|o| o.direct_sign_in = Some("google".into())),
            Box::new(|o| o.prompt = Some("always".into())),
            Box::new(|o| o.extra_params = vec![("state".into(), "x".into())]),
        ];
        for mutate in bad {
            let mut options = SignInOptions::new("https://app/cb");
            mutate(&mut options);
            assert!(matches!(
                authorization_url("https://t/oidc/auth", &config(), &options, &session),
                Err(Error::Config(_))
            ));
        }
    }
}
