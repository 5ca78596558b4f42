//! PKCE (RFC 7636, S256) and the random `state` / `nonce` of an authorization request.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret::{CodeVerifier, Nonce, State};

/// Random bytes in each verifier, state and nonce (256 bits).
const RANDOM_BYTES: usize = 32;

/// `n` bytes from the system CSPRNG, base64url-encoded without padding.
#[must_use]
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // SystemRandom reads the OS CSPRNG; it fails only if the OS cannot provide randomness,
    // in which case no safe sign-in is possible at all.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the OS random number generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new random code verifier (43 characters).
#[must_use]
pub fn new_code_verifier() -> CodeVerifier {
    CodeVerifier::new(random_token(RANDOM_BYTES))
}

/// A new random `state`.
#[must_use]
pub fn new_state() -> State {
    State::new(random_token(RANDOM_BYTES))
}

/// A new random `nonce`.
#[must_use]
pub fn new_nonce() -> Nonce {
    Nonce::new(random_token(RANDOM_BYTES))
}

/// The S256 code challenge: `BASE64URL(SHA256(ASCII(code_verifier)))`.
#[must_use]
pub fn code_challenge_s256(verifier: &CodeVerifier) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.secret().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = CodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            code_challenge_s256(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_values_are_long_and_distinct() {
        let a = new_code_verifier();
        let b = new_code_verifier();
        assert_eq!(a.secret().len(), 43);
        assert!(!a.ct_eq(b.secret()));
        assert!(
            new_state()
                .secret()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(new_nonce().secret().len(), 43);
    }
}
