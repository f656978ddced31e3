//! Outside test vectors through the exact code paths the protocol uses:
//! RFC 9180 Appendix A.2 (Base mode) through our HPKE wiring, and Wycheproof X25519,
//! ChaCha20-Poly1305 and HKDF-SHA256 through `sealpost_crypto::primitives`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_crypto::CryptoError;
use sealpost_crypto::envelope::hpke_wiring;
use sealpost_crypto::envelope::{MailboxSealingKey, MailboxSealingPublicKey};
use sealpost_crypto::primitives::{self, Secret32};
use serde_json::Value;
use test_case::test_case;
use x25519_dalek::{PublicKey, StaticSecret};

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex_field(value: &Value, key: &str) -> Vec<u8> {
    hex::decode(
        value[key]
            .as_str()
            .unwrap_or_else(|| panic!("missing {key}")),
    )
    .unwrap()
}

fn array32(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().unwrap()
}

/// RFC 9180 A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, mode Base:
/// key derivation, `enc`, every listed encryption (sealed and opened) and every export,
/// on both the sender and the receiver context.
#[test]
fn rfc9180_a2_base_mode_through_our_wiring() {
    let vectors = load("rfc9180_a2.json");
    let base: Vec<&Value> = vectors
        .as_array()
        .unwrap()
        .iter()
        .filter(|vector| vector["mode"] == "0")
        .collect();
    assert_eq!(base.len(), 1, "exactly one Base-mode vector for this suite");
    let vector = base[0];
    assert_eq!(vector["kem_id"], "32");
    assert_eq!(vector["kdf_id"], "1");
    assert_eq!(vector["aead_id"], "3");

    let info = hex_field(vector, "info");
    let ikm_e = array32(&hex_field(vector, "ikmE"));
    let ikm_r = hex_field(vector, "ikmR");

    // DeriveKeyPair(ikmR) → pkRm.
    let recipient = MailboxSealingKey::derive_from_ikm(&ikm_r);
    assert_eq!(
        recipient.public().to_bytes().to_vec(),
        hex_field(vector, "pkRm")
    );
    // DeriveKeyPair(ikmE) → pkEm = enc.
    let ephemeral = MailboxSealingKey::derive_from_ikm(&ikm_e);
    assert_eq!(
        ephemeral.public().to_bytes().to_vec(),
        hex_field(vector, "pkEm")
    );

    let recipient_public = MailboxSealingPublicKey::from_bytes(recipient.public().to_bytes());
    let (enc, mut sender) = hpke_wiring::setup_sender(&recipient_public, &info, &ikm_e).unwrap();
    assert_eq!(enc.to_vec(), hex_field(vector, "enc"));
    let mut receiver = hpke_wiring::setup_receiver(&recipient, &enc, &info).unwrap();

    let encryptions = vector["encryptions"].as_array().unwrap();
    assert_eq!(encryptions.len(), 6);
    let mut sequence = 0u64;
    for encryption in encryptions {
        let target: u64 = encryption["sequence number"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        // Advance both contexts through the sequence numbers the RFC does not list.
        while sequence < target {
            let filler = sender.seal(b"", b"").unwrap();
            receiver.open(&filler, b"").unwrap();
            sequence += 1;
        }
        let pt = hex_field(encryption, "pt");
        let aad = hex_field(encryption, "aad");
        let ct = hex_field(encryption, "ct");
        assert_eq!(sender.seal(&pt, &aad).unwrap(), ct, "seq {target}");
        assert_eq!(receiver.open(&ct, &aad).unwrap(), pt, "seq {target}");
        sequence += 1;
    }

    let exports = vector["exports"].as_array().unwrap();
    assert_eq!(exports.len(), 3);
    for export in exports {
        let context = hex_field(export, "exporter_context");
        let length: usize = export["L"].as_str().unwrap().parse().unwrap();
        let expected = hex_field(export, "exported_value");
        let mut from_sender = vec![0u8; length];
        let mut from_receiver = vec![0u8; length];
        sender.export(&context, &mut from_sender).unwrap();
        receiver.export(&context, &mut from_receiver).unwrap();
        assert_eq!(from_sender, expected);
        assert_eq!(from_receiver, expected);
    }
}

/// The opener refuses a wrong `info` with the RFC's keys (the binding our envelopes rely on).
#[test]
fn rfc9180_a2_wrong_info_does_not_open() {
    let vectors = load("rfc9180_a2.json");
    let vector = &vectors[0];
    let info = hex_field(vector, "info");
    let recipient = MailboxSealingKey::derive_from_ikm(&hex_field(vector, "ikmR"));
    let (enc, mut sender) = hpke_wiring::setup_sender(
        recipient.public(),
        &info,
        &array32(&hex_field(vector, "ikmE")),
    )
    .unwrap();
    let sealed = sender.seal(b"hello", b"").unwrap();
    let mut other_info = info.clone();
    other_info.push(0);
    let mut receiver = hpke_wiring::setup_receiver(&recipient, &enc, &other_info).unwrap();
    assert!(receiver.open(&sealed, b"").is_err());
}

fn wycheproof_tests(name: &str) -> Vec<(Value, Value)> {
    let file = load(name);
    let mut out = Vec::new();
    for group in file["testGroups"].as_array().unwrap() {
        for test in group["tests"].as_array().unwrap() {
            out.push((group.clone(), test.clone()));
        }
    }
    assert_eq!(out.len() as u64, file["numberOfTests"].as_u64().unwrap());
    out
}

/// Wycheproof X25519 through `primitives::x25519`: valid results match; every all-zero
/// ("ZeroSharedSecret") result is refused as non-contributory; other "acceptable" cases match.
#[test]
fn wycheproof_x25519() {
    let mut checked = 0;
    let mut refused = 0;
    for (_, test) in wycheproof_tests("x25519_test.json") {
        let secret = StaticSecret::from(array32(&hex_field(&test, "private")));
        let public = PublicKey::from(array32(&hex_field(&test, "public")));
        let shared = hex_field(&test, "shared");
        let flags: Vec<&str> = test["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|flag| flag.as_str().unwrap())
            .collect();
        let result = primitives::x25519(&secret, &public);
        if flags.contains(&"ZeroSharedSecret") {
            assert_eq!(shared, vec![0u8; 32]);
            assert!(
                matches!(result, Err(CryptoError::NonContributory)),
                "tc {}",
                test["tcId"]
            );
            refused += 1;
        } else {
            assert_ne!(
                test["result"], "invalid",
                "no invalid X25519 cases expected"
            );
            let output: Secret32 = result.unwrap();
            assert_eq!(output.expose().to_vec(), shared, "tc {}", test["tcId"]);
            checked += 1;
        }
    }
    assert!(
        checked > 400 && refused > 20,
        "{checked} checked, {refused} refused"
    );
}

/// Wycheproof ChaCha20-Poly1305 through `primitives::aead_seal` / `aead_open`. Nonces other
/// than 96 bits cannot even be expressed in our API (`[u8; 12]`), which the test checks.
#[test]
fn wycheproof_chacha20_poly1305() {
    let mut valid = 0;
    let mut refused = 0;
    for (_, test) in wycheproof_tests("chacha20_poly1305_test.json") {
        let key: [u8; 32] = hex_field(&test, "key").try_into().unwrap();
        let iv = hex_field(&test, "iv");
        let aad = hex_field(&test, "aad");
        let msg = hex_field(&test, "msg");
        let mut sealed = hex_field(&test, "ct");
        sealed.extend_from_slice(&hex_field(&test, "tag"));
        let Ok(nonce) = <[u8; 12]>::try_from(iv.as_slice()) else {
            assert_eq!(test["result"], "invalid", "tc {}", test["tcId"]);
            refused += 1;
            continue;
        };
        match test["result"].as_str().unwrap() {
            "valid" => {
                assert_eq!(
                    primitives::aead_seal(&key, &nonce, &aad, &msg).unwrap(),
                    sealed
                );
                assert_eq!(
                    primitives::aead_open(&key, &nonce, &aad, &sealed).unwrap(),
                    msg
                );
                valid += 1;
            }
            "invalid" => {
                assert!(matches!(
                    primitives::aead_open(&key, &nonce, &aad, &sealed),
                    Err(CryptoError::DecryptFailed)
                ));
                refused += 1;
            }
            other => panic!("unexpected result {other}"),
        }
    }
    assert!(
        valid > 200 && refused > 60,
        "{valid} valid, {refused} refused"
    );
}

/// Wycheproof HKDF-SHA256 through `primitives::hkdf_sha256` (empty salt = no salt, RFC 5869 §2.2).
#[test]
fn wycheproof_hkdf_sha256() {
    let mut valid = 0;
    let mut refused = 0;
    for (_, test) in wycheproof_tests("hkdf_sha256_test.json") {
        let ikm = hex_field(&test, "ikm");
        let salt = hex_field(&test, "salt");
        let info = hex_field(&test, "info");
        let size = test["size"].as_u64().unwrap() as usize;
        let mut okm = vec![0u8; size];
        let result = primitives::hkdf_sha256(Some(&salt), &ikm, &info, &mut okm);
        match test["result"].as_str().unwrap() {
            "valid" => {
                result.unwrap();
                assert_eq!(okm, hex_field(&test, "okm"), "tc {}", test["tcId"]);
                valid += 1;
            }
            "invalid" => {
                assert!(matches!(result, Err(CryptoError::KdfOutputLength)));
                refused += 1;
            }
            other => panic!("unexpected result {other}"),
        }
    }
    assert!(
        valid > 80 && refused == 3,
        "{valid} valid, {refused} refused"
    );
}

/// Our HKDF treats an absent salt and an empty salt the same way (RFC 5869 §2.2).
#[test_case(b"" ; "empty info")]
#[test_case(b"sealpost/v1/x3dh" ; "x3dh info")]
fn hkdf_absent_salt_equals_empty_salt(info: &[u8]) {
    let mut absent = [0u8; 32];
    let mut empty = [0u8; 32];
    primitives::hkdf_sha256(None, b"ikm", info, &mut absent).unwrap();
    primitives::hkdf_sha256(Some(b""), b"ikm", info, &mut empty).unwrap();
    assert_eq!(absent, empty);
}
