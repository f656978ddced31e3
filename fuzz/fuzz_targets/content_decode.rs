//! Fuzzes the decoder of what travels inside a ratchet message
//! (`sealpost_client::content::Content::from_bytes`, CBOR): after the ratchet opens, these bytes
//! come from a peer, who may be hostile. Decoding must return a content or a typed error and
//! never panic or allocate without bound; whatever decodes must encode and decode to the same
//! content.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost_client::content::Content;

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = Content::from_bytes(data) {
        let bytes = content.to_bytes().expect("a decoded content encodes");
        assert_eq!(Content::from_bytes(&bytes).ok(), Some(content));
    }
});
