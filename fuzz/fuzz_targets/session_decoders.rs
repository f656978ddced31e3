//! Fuzzes every decoder of stored or received session bytes: session state, session messages,
//! prekeys and safety-number QR payloads. None may panic; whatever decodes must re-encode the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost_crypto::{
    OneTimePrekey, OneTimePrekeyPair, Session, SessionMessage, SignedPrekey, SignedPrekeyPair,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(session) = Session::from_bytes(data) {
        if let Ok(bytes) = session.to_bytes() {
            assert_eq!(bytes.as_slice(), data);
        }
    }
    if let Ok(message) = SessionMessage::from_bytes(data) {
        assert_eq!(message.to_bytes(), data);
    }
    if let Ok(prekey) = SignedPrekey::from_bytes(data) {
        assert_eq!(prekey.to_bytes().as_slice(), data);
    }
    if let Ok(prekey) = OneTimePrekey::from_bytes(data) {
        assert_eq!(prekey.to_bytes().as_slice(), data);
    }
    let _ = SignedPrekeyPair::from_secret_bytes(data);
    let _ = OneTimePrekeyPair::from_secret_bytes(data);
});
