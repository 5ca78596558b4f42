//! Sealed values: AES-256-GCM encryption of what a web app keeps in a cookie.
//!
//! A [`Sealer`] holds one or more 32-byte keys. It seals with the first and opens with any, so a
//! key is rotated by putting the new one first and keeping the old one until every cookie it
//! sealed has expired. A sealed value is compact, URL-safe text:
//!
//! ```text
//! v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>
//! ```
//!
//! - the nonce is 96 random bits per value;
//! - the key id is 8 characters derived from the key by SHA-256 (it names the key, and reveals
//!   nothing usable about it), so opening tries one key, not all of them;
//! - the plaintext is an 8-byte big-endian expiry (Unix seconds, 0 for none) followed by the
//!   value, so an expired value cannot be replayed even if the browser kept it;
//! - the associated data binds the format version, the key id and a name (the cookie's name):
//!   a value sealed for one cookie does not open as another.
//!
//! Every failure to open is one [`UnsealError`]; none says more than what failed (never a key,
//! a value, or where they differ).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

pub use crate::error::UnsealError;
use crate::error::{Error, Result};
use crate::secret::sha256;

/// Bytes of a key: AES-256.
pub const KEY_BYTES: usize = 32;

/// The format's version prefix.
const VERSION: &str = "v1";

/// Characters of a key id.
const KEY_ID_CHARS: usize = 8;

/// Bytes of the expiry that starts every plaintext.
const EXPIRY_BYTES: usize = 8;

/// Bytes of the GCM tag.
const TAG_BYTES: usize = 16;

/// Fewest distinct byte values in a key: 32 random bytes have about 30 (fewer than 16 happens
/// with a probability far below 2^-100), while a repeated pattern or a counter has few.
const MIN_DISTINCT_BYTES: usize = 16;

/// One AES-256-GCM key and its id. Its `Debug` shows the id only.
pub struct SealKey {
    id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey({})", self.id)
    }
}

impl SealKey {
    /// A key from its 32 bytes. Refuses another length, and bytes with too little variety to be
    /// random (a repeated pattern, a counter, text).
    ///
    /// # Errors
    /// [`Error::Config`], naming what is wrong, never the key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != KEY_BYTES {
            return Err(Error::config(format!(
                "a session key must be {KEY_BYTES} bytes, not {}",
                bytes.len()
            )));
        }
        let mut seen = [false; 256];
        for &byte in bytes {
            seen[usize::from(byte)] = true;
        }
        if seen.iter().filter(|&&s| s).count() < MIN_DISTINCT_BYTES {
            return Err(Error::config(
                "a session key must be random: this one repeats too few byte values \
                 (generate one with logto_rs.sessions.generate_key())",
            ));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| Error::config("the session key was refused by AES-256-GCM"))?;
        let digest = sha256(&[b"logto-rs seal key id\0".as_slice(), bytes].concat());
        let mut id = URL_SAFE_NO_PAD.encode(digest);
        id.truncate(KEY_ID_CHARS);
        Ok(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }

    /// A key from text: 64 hexadecimal digits, or 32 bytes in base64url or base64 (with or
    /// without padding), surrounding whitespace ignored.
    ///
    /// # Errors
    /// [`Error::Config`] when the text is none of these, or the bytes are refused by
    /// [`SealKey::from_bytes`]. The message never contains the text.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = if text.len() == 2 * KEY_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            decode_hex(text)
        } else {
            let unpadded = text.trim_end_matches('=');
            URL_SAFE_NO_PAD
                .decode(unpadded)
                .or_else(|_| STANDARD_NO_PAD.decode(unpadded))
                .ok()
        };
        match bytes {
            Some(bytes) if bytes.len() == KEY_BYTES => Self::from_bytes(&bytes),
            _ => Err(Error::config(format!(
                "a session key must be {KEY_BYTES} random bytes written as 64 hexadecimal digits \
                 or 43 base64url characters (generate one with logto_rs.sessions.generate_key())"
            ))),
        }
    }

    /// The key's id, as written in the values it seals.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// A new random key, base64url-encoded (43 characters).
#[must_use]
pub fn generate_key() -> String {
    crate::pkce::random_token(KEY_BYTES)
}

/// Seals with its first key and opens with any of them.
#[derive(Debug)]
pub struct Sealer {
    keys: Vec<SealKey>,
}

/// The associated data of a value: the version, the key id and the name.
fn associated_data(key_id: &str, name: &str) -> Vec<u8> {
    [
        VERSION.as_bytes(),
        b"\0",
        key_id.as_bytes(),
        b"\0",
        name.as_bytes(),
    ]
    .concat()
}

impl Sealer {
    /// A sealer over `keys`: the first seals, every one opens.
    ///
    /// # Errors
    /// [`Error::Config`] when there is no key, or two are the same key.
    pub fn new(keys: Vec<SealKey>) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::config("at least one session key is needed"));
        }
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].iter().any(|other| other.id == key.id) {
                return Err(Error::config(format!(
                    "session key {} is the same key as an earlier one",
                    index + 1
                )));
            }
        }
        Ok(Self { keys })
    }

    /// The ids of the keys, the sealing one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(SealKey::id)
    }

    /// The length of the sealed text of a value of `len` bytes.
    #[must_use]
    pub fn sealed_len(&self, len: usize) -> usize {
        let body = NONCE_LEN + EXPIRY_BYTES + len + TAG_BYTES;
        VERSION.len() + 1 + KEY_ID_CHARS + 1 + (body * 4).div_ceil(3)
    }

    /// Seals `value` for the cookie (or other slot) `name`, to expire at `expires_at` (Unix
    /// seconds; `None`: never).
    ///
    /// # Errors
    /// [`Error::Config`] when AES-GCM refuses the value (longer than it can seal).
    pub fn seal(&self, value: &[u8], name: &str, expires_at: Option<u64>) -> Result<String> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::config("the OS random number generator failed"))?;
        let mut body = Vec::with_capacity(NONCE_LEN + EXPIRY_BYTES + value.len() + TAG_BYTES);
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&expires_at.unwrap_or(0).to_be_bytes());
        body.extend_from_slice(value);
        let tag = key
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(&key.id, name)),
                &mut body[NONCE_LEN..],
            )
            .map_err(|_| Error::config("the value is too large to seal"))?;
        body.extend_from_slice(tag.as_ref());
        Ok(format!("{VERSION}.{}.{}", key.id, URL_SAFE_NO_PAD.encode(&body)))
    }

    /// Opens a value sealed for `name`, at the time `now` (Unix seconds); it has expired once `now`
    /// is past its expiry.
    ///
    /// # Errors
    /// The [`UnsealError`] that names why it does not open.
    pub fn open(&self, sealed: &str, name: &str, now: u64) -> Result<Vec<u8>, UnsealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(UnsealError::Malformed);
        };
        let mut body = URL_SAFE_NO_PAD.decode(body).map_err(|_| UnsealError::Malformed)?;
        if body.len() < NONCE_LEN + EXPIRY_BYTES + TAG_BYTES {
            return Err(UnsealError::Malformed);
        }
        let key = self
            .keys
            .iter()
            .find(|key| key.id == key_id)
            .ok_or(UnsealError::UnknownKey)?;
        let (nonce, ciphertext) = body.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| UnsealError::Malformed)?;
        let plaintext = key
            .key
            .open_in_place(nonce, Aad::from(associated_data(key_id, name)), ciphertext)
            .map_err(|_| UnsealError::Invalid)?;
        let (expiry, value) = plaintext.split_at(EXPIRY_BYTES);
        let mut expires_at = [0u8; EXPIRY_BYTES];
        expires_at.copy_from_slice(expiry);
        let expires_at = u64::from_be_bytes(expires_at);
        // Whole seconds, as the signed cookies' `max_age`: a value lives more than its ttl and
        // less than a second longer.
        if expires_at != 0 && now > expires_at {
            return Err(UnsealError::Expired);
        }
        Ok(value.to_vec())
    }
}

#[cfg(test)]
mod tests;
