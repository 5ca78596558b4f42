//! Secret newtypes: tokens, codes, verifiers, state, nonce and the client secret.
//!
//! Each one has a redacted `Debug`, no `Display`, no derived `PartialEq` (use
//! [`ct_eq`](ClientSecret::ct_eq), which compares in constant time), and exposes its value only
//! through an explicit `secret()` call.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            #[must_use]
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value. Every call site is a place a secret leaves its type.
            #[must_use]
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Constant-time comparison with another value.
            #[must_use]
            pub fn ct_eq(&self, other: &str) -> bool {
                self.0.as_bytes().ct_eq(other.as_bytes()).into()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// The application secret (`appSecret`).
    ClientSecret
);
secret_type!(
    /// An OAuth access token (opaque or JWT).
    AccessToken
);
secret_type!(
    /// An OAuth refresh token.
    RefreshToken
);
secret_type!(
    /// An OpenID Connect ID token (JWT).
    IdToken
);
secret_type!(
    /// An authorization code from the callback.
    AuthorizationCode
);
secret_type!(
    /// The PKCE code verifier (RFC 7636).
    CodeVerifier
);
secret_type!(
    /// The `state` of an authorization request.
    State
);
secret_type!(
    /// The `nonce` of an authorization request.
    Nonce
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_comparison_works() {
        let token = AccessToken::new("eyJ.secret.value");
        assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
        assert!(token.ct_eq("eyJ.secret.value"));
        assert!(!token.ct_eq("eyJ.secret.valuf"));
        assert!(!token.ct_eq("short"));
    }
}
