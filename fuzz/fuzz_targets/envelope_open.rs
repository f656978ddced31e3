//! Fuzzes the envelope opener with arbitrary bytes (the relay's view of what it can send us),
//! and the parser behind the AEAD with arbitrary plaintexts. Neither may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost_crypto::envelope::decode_plaintext;
use sealpost_crypto::{MailboxSealingKey, SendId, open_envelope};

fuzz_target!(|data: &[u8]| {
    if let Ok(mailbox) = MailboxSealingKey::from_secret_bytes(&[0x11; 32]) {
        let _ = open_envelope(&mailbox, &SendId([0x22; 32]), data);
    }
    let _ = decode_plaintext(data);
});
