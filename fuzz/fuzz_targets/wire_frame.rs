//! Fuzzes the relay protocol's frame decoders (sealpost-wire) with arbitrary bytes, as a relay
//! reads them from any client and a client reads them from any relay: decoding must return a
//! frame or a typed error and never panic, and a frame that decodes must encode again and
//! decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost_wire::{
    decode_client_frame, decode_relay_frame, encode_client_frame, encode_relay_frame,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode_client_frame(data) {
        if let Ok(bytes) = encode_client_frame(&frame) {
            assert_eq!(decode_client_frame(&bytes).ok(), Some(frame));
        }
    }
    if let Ok(frame) = decode_relay_frame(data) {
        if let Ok(bytes) = encode_relay_frame(&frame) {
            assert_eq!(decode_relay_frame(&bytes).ok(), Some(frame));
        }
    }
});
