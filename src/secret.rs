//! Secret newtypes: tokens, codes, verifiers, state, nonce and the client secret.
//!
//! Each one has a redacted `Debug`, no `Display`, no derived `PartialEq` (use
//! [`ct_eq`](ClientSecret::ct_eq), which compares in constant time), and exposes its value only
//! through an explicit `secret()` call.

use aws_lc_rs::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// SHA-256 of a secret: what caches and coordinators key on instead of the secret itself.
pub type Fingerprint = [u8; 32];

/// The SHA-256 of `bytes`.
#[must_use]
pub fn sha256(bytes: &[u8]) -> Fingerprint {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

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

            /// SHA-256 of the value, for use as a map key where the value must not be kept.
            #[must_use]
            pub fn fingerprint(&self) -> Fingerprint {
                sha256(self.0.as_bytes())
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
secret_type!(
    /// The `device_code` of a device sign-in (RFC 8628), presented when polling for the tokens.
    DeviceCode
);
secret_type!(
    /// A Logto personal access token (`pat_…`): the subject token of a token exchange, and the
    /// `value` the Management API returns.
    PersonalAccessTokenValue
);
secret_type!(
    /// A Logto impersonation subject token (`sub_…`, from the Management API's
    /// `POST /api/subject-tokens`): single-use, the subject token of an impersonation exchange.
    SubjectTokenValue
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

    #[test]
    fn fingerprint_is_the_sha256_of_the_value() {
        let pat = PersonalAccessTokenValue::new("pat_abc");
        assert_eq!(format!("{pat:?}"), "PersonalAccessTokenValue([redacted])");
        // echo -n pat_abc | sha256sum
        let hex: String = pat.fingerprint().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "28d38ed101bae184d6a39ab52ee9f7f1d56698cdb256b10670bc37577ccad3d2"
        );
        assert_eq!(
            pat.fingerprint(),
            PersonalAccessTokenValue::new("pat_abc").fingerprint()
        );
        assert_ne!(
            pat.fingerprint(),
            PersonalAccessTokenValue::new("pat_abd").fingerprint()
        );
    }
}
