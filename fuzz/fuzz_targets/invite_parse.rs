//! Fuzzes the invite decoder (`sealpost_client::invite::Invite::parse`) the way a pasted or
//! deep-linked invite reaches it: arbitrary text, and arbitrary signed bytes wrapped in a valid
//! `sealpost:` prefix, base64url and checksum, so that the fuzzer gets past the checksum into the
//! body layout, the key decoders and signature verification. Nothing may panic; an invite that
//! parses must give back the body it was made of.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use sealpost_client::invite::{INVITE_PREFIX, Invite};
use sha2::{Digest, Sha256};

/// Bytes of the SHA-256 of the signed bytes that end an invite (`docs/engine.md` § Invites).
const CHECKSUM_LEN: usize = 4;
/// Length of the identity signature that ends the signed bytes.
const SIGNATURE_LEN: usize = 64;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Invite::parse(text);
    }
    // `data` as body ‖ signature, with the checksum a real invite carries.
    let mut signed = data.to_vec();
    let checksum = Sha256::digest(&signed);
    signed.extend_from_slice(&checksum[..CHECKSUM_LEN]);
    let text = format!("{INVITE_PREFIX}{}", URL_SAFE_NO_PAD.encode(&signed));
    if let Ok(invite) = Invite::parse(&text) {
        let body = invite.body_bytes().expect("a parsed invite re-encodes");
        assert_eq!(body.as_slice(), &data[..data.len() - SIGNATURE_LEN]);
    }
});
