use super::*;

const NOW: u64 = 1_800_000_000;

fn key(seed: u8) -> SealKey {
    let bytes: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(seed)).collect();
    SealKey::from_bytes(&bytes).unwrap()
}

fn sealer(seeds: &[u8]) -> Sealer {
    Sealer::new(seeds.iter().map(|&s| key(s)).collect()).unwrap()
}

fn sealed(s: &Sealer, value: &[u8], name: &str) -> String {
    s.seal(value, name, Some(NOW + 60)).unwrap()
}

#[test]
fn round_trip() {
    let s = sealer(&[1]);
    let value = br#"{"logto_idToken":"eyJhbGciOi.secret.sig"}"#;
    let text = sealed(&s, value, "session");
    assert_eq!(s.open(&text, "session", NOW), Ok(value.to_vec()));
    assert_eq!(text.len(), s.sealed_len(value.len()));
    assert!(!text.contains("secret"));
    assert!(text.starts_with("v1."));
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    );
}

#[test]
fn every_seal_has_a_fresh_nonce() {
    let s = sealer(&[1]);
    assert_ne!(sealed(&s, b"same", "session"), sealed(&s, b"same", "session"));
}

#[test]
fn empty_value_and_no_expiry() {
    let s = sealer(&[1]);
    let text = s.seal(b"", "session", None).unwrap();
    assert_eq!(s.open(&text, "session", u64::MAX), Ok(Vec::new()));
}

#[test]
fn rotation_old_key_opens_new_key_seals() {
    let old = sealer(&[1]);
    let rotated = sealer(&[2, 1]);
    let from_old = sealed(&old, b"before", "session");
    assert_eq!(rotated.open(&from_old, "session", NOW), Ok(b"before".to_vec()));
    let from_new = sealed(&rotated, b"after", "session");
    assert_eq!(from_new.split('.').nth(1), Some(key(2).id()));
    // The old key alone cannot open what the new one sealed.
    assert_eq!(old.open(&from_new, "session", NOW), Err(UnsealError::UnknownKey));
    // Once the old key is dropped, its values no longer open.
    assert_eq!(
        sealer(&[2]).open(&from_old, "session", NOW),
        Err(UnsealError::UnknownKey)
    );
}

#[test]
fn tampering_with_any_byte_is_refused() {
    let s = sealer(&[1]);
    let text = sealed(&s, b"{\"sub\":\"alice\"}", "session");
    let (header, body) = text.split_at(text.rfind('.').unwrap_or(0) + 1);
    let mut raw = URL_SAFE_NO_PAD.decode(body).unwrap_or_default();
    // Nonce, expiry, value and tag: flipping any bit of any byte breaks authentication.
    for index in 0..raw.len() {
        raw[index] ^= 0x01;
        let forged = format!("{header}{}", URL_SAFE_NO_PAD.encode(&raw));
        assert_eq!(
            s.open(&forged, "session", NOW),
            Err(UnsealError::Invalid),
            "byte {index}"
        );
        raw[index] ^= 0x01;
    }
}

#[test]
fn tampering_with_the_header_is_refused() {
    let s = sealer(&[1, 2]);
    let text = sealed(&s, b"value", "session");
    let body = text.rsplit('.').next().unwrap_or_default();
    // Another version, another (known) key id, or none.
    assert_eq!(
        s.open(&format!("v2.{}.{body}", key(1).id()), "session", NOW),
        Err(UnsealError::Malformed)
    );
    assert_eq!(
        s.open(&format!("v1.{}.{body}", key(2).id()), "session", NOW),
        Err(UnsealError::Invalid)
    );
    assert_eq!(
        s.open(&format!("v1.AAAAAAAA.{body}"), "session", NOW),
        Err(UnsealError::UnknownKey)
    );
    assert_eq!(
        s.open(&format!("v1.{body}"), "session", NOW),
        Err(UnsealError::Malformed)
    );
}

#[test]
fn truncated_or_garbled_values_are_malformed() {
    let s = sealer(&[1]);
    // 42 bytes of nonce, expiry, value and tag: 56 base64url characters, no partial quantum.
    let text = sealed(&s, b"value!", "session");
    for bad in [
        "",
        "v1",
        "v1..",
        "null",
        &text[..text.len() - 20],
        &format!("{text}!"),
        &format!("{}{}", &text[..20], "é"),
    ] {
        let result = s.open(bad, "session", NOW);
        assert!(
            matches!(result, Err(UnsealError::Malformed | UnsealError::Invalid)),
            "{bad:?}: {result:?}"
        );
    }
    // Cut by whole base64 quanta: still decodes, no longer authenticates.
    assert_eq!(
        s.open(&text[..text.len() - 4], "session", NOW),
        Err(UnsealError::Invalid)
    );
    assert_eq!(
        s.open(&format!("v1.{}.AAAA", key(1).id()), "session", NOW),
        Err(UnsealError::Malformed)
    );
}

#[test]
fn a_value_does_not_open_under_another_name() {
    let s = sealer(&[1]);
    let text = sealed(&s, b"value", "session");
    assert_eq!(s.open(&text, "other_cookie", NOW), Err(UnsealError::Invalid));
    assert_eq!(s.open(&text, "", NOW), Err(UnsealError::Invalid));
}

#[test]
fn expiry() {
    let s = sealer(&[1]);
    let text = sealed(&s, b"value", "session");
    assert_eq!(s.open(&text, "session", NOW + 60), Ok(b"value".to_vec()));
    assert_eq!(s.open(&text, "session", NOW + 61), Err(UnsealError::Expired));
    assert_eq!(s.open(&text, "session", NOW + 3600), Err(UnsealError::Expired));
}

#[test]
fn key_lengths_and_encodings() {
    let bytes: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(1)).collect();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let id = key(1).id().to_owned();
    for text in [
        hex.clone(),
        hex.to_uppercase(),
        URL_SAFE_NO_PAD.encode(&bytes),
        base64::engine::general_purpose::STANDARD.encode(&bytes),
        STANDARD_NO_PAD.encode(&bytes),
        format!("  {}\n", URL_SAFE_NO_PAD.encode(&bytes)),
    ] {
        assert_eq!(
            SealKey::parse(&text).map(|k| k.id().to_owned()).ok(),
            Some(id.clone()),
            "{text}"
        );
    }
    for len in [0, 16, 31, 33, 64] {
        let short: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(37)).collect();
        assert!(
            matches!(SealKey::from_bytes(&short), Err(Error::Config(_))),
            "{len} bytes"
        );
        assert!(matches!(
            SealKey::parse(&URL_SAFE_NO_PAD.encode(&short)),
            Err(Error::Config(_))
        ));
    }
    assert!(matches!(SealKey::parse(&hex[..62]), Err(Error::Config(_))));
    assert!(matches!(
        SealKey::parse("not a key at all"),
        Err(Error::Config(_))
    ));
}

#[test]
fn weak_keys_are_refused_without_echoing_them() {
    let password = "correct-horse-battery-staple-32b";
    for weak in [
        vec![0u8; 32],
        vec![b'a'; 32],
        (0..32u8).map(|i| i % 4).collect::<Vec<u8>>(),
        password.as_bytes().to_vec(),
    ] {
        let error = SealKey::from_bytes(&weak).unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{weak:?}");
    }
    // The password itself, as text: not 32 bytes of any encoding.
    let error = SealKey::parse(password).unwrap_err();
    let message = error.to_string();
    assert!(!message.contains(password), "{message}");
    let zeros = "0".repeat(64);
    let message = SealKey::parse(&zeros).unwrap_err().to_string();
    assert!(!message.contains(&zeros), "{message}");
}

#[test]
fn duplicate_and_missing_keys_are_refused() {
    assert!(matches!(Sealer::new(Vec::new()), Err(Error::Config(_))));
    assert!(matches!(
        Sealer::new(vec![key(1), key(2), key(1)]),
        Err(Error::Config(_))
    ));
}

#[test]
fn debug_shows_only_key_ids() {
    let s = sealer(&[1, 2]);
    let debug = format!("{s:?}");
    assert!(
        debug.contains(key(1).id()) && debug.contains(key(2).id()),
        "{debug}"
    );
    let bytes: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(1)).collect();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !debug.contains(&hex) && !debug.contains(&URL_SAFE_NO_PAD.encode(&bytes)),
        "{debug}"
    );
    assert_eq!(s.key_ids().collect::<Vec<_>>(), [key(1).id(), key(2).id()]);
}

#[test]
fn generated_keys_are_accepted_and_distinct() {
    let (a, b) = (generate_key(), generate_key());
    assert_ne!(a, b);
    assert_eq!(a.len(), 43);
    assert!(SealKey::parse(&a).is_ok());
}

#[test]
fn standard_base64_with_or_without_padding() {
    // Bytes whose standard base64 has '+' and '/', which base64url writes '-' and '_'.
    let bytes: Vec<u8> = (0xe0..=0xff).collect();
    let padded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    assert!(padded.contains('+') && padded.contains('/'));
    let id = SealKey::from_bytes(&bytes).unwrap().id().to_owned();
    for text in [
        padded.clone(),
        STANDARD_NO_PAD.encode(&bytes),
        URL_SAFE_NO_PAD.encode(&bytes),
    ] {
        assert_eq!(SealKey::parse(&text).unwrap().id(), id, "{text}");
    }
}
