//! The binary codec: frames to and from CBOR (RFC 8949) bytes.
//!
//! Decoding never panics on any input: it returns a [`DecodeError`] that tells the relay which
//! typed error to answer, with the correlation id when it could still be read.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::PROTOCOL_VERSION;
use crate::frame::{ClientFrame, RelayFrame};

/// Why bytes are not a frame this version can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a CBOR frame of the documented shape (or trailing bytes after it).
    #[error("malformed frame")]
    Malformed {
        /// The correlation id, if the frame's head could be read.
        id: Option<u64>,
    },
    /// The frame's version is not [`PROTOCOL_VERSION`].
    #[error("unsupported protocol version {version}")]
    UnsupportedVersion {
        /// The version the frame carried.
        version: u16,
        /// The frame's correlation id.
        id: u64,
    },
}

impl DecodeError {
    /// The correlation id to answer with, when known.
    pub fn correlation_id(&self) -> Option<u64> {
        match self {
            DecodeError::Malformed { id } => *id,
            DecodeError::UnsupportedVersion { id, .. } => Some(*id),
        }
    }
}

/// Encoding failed (only possible if the writer fails, which a `Vec` never does).
#[derive(Debug, thiserror::Error)]
#[error("frame encoding failed: {0}")]
pub struct EncodeError(String);

/// Just the head of a frame, read when the whole frame does not decode.
#[derive(Deserialize)]
struct FrameHead {
    v: u16,
    id: u64,
}

fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let mut rest = bytes;
    let value: T = ciborium::de::from_reader(&mut rest).ok()?;
    if rest.is_empty() { Some(value) } else { None }
}

fn classify_failure(bytes: &[u8]) -> DecodeError {
    match decode_exact::<FrameHead>(bytes) {
        Some(head) if head.v != PROTOCOL_VERSION => DecodeError::UnsupportedVersion {
            version: head.v,
            id: head.id,
        },
        Some(head) => DecodeError::Malformed { id: Some(head.id) },
        None => DecodeError::Malformed { id: None },
    }
}

fn encode<T: serde::Serialize>(frame: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(128);
    ciborium::ser::into_writer(frame, &mut out).map_err(|e| EncodeError(e.to_string()))?;
    Ok(out)
}

/// Encodes a client frame to the bytes of one binary WebSocket message.
pub fn encode_client_frame(frame: &ClientFrame) -> Result<Vec<u8>, EncodeError> {
    encode(frame)
}

/// Encodes a relay frame to the bytes of one binary WebSocket message.
pub fn encode_relay_frame(frame: &RelayFrame) -> Result<Vec<u8>, EncodeError> {
    encode(frame)
}

/// Decodes a client frame. Refuses other versions with [`DecodeError::UnsupportedVersion`].
pub fn decode_client_frame(bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
    match decode_exact::<ClientFrame>(bytes) {
        Some(frame) if frame.v == PROTOCOL_VERSION => Ok(frame),
        Some(frame) => Err(DecodeError::UnsupportedVersion {
            version: frame.v,
            id: frame.id,
        }),
        None => Err(classify_failure(bytes)),
    }
}

/// Decodes a relay frame. Refuses other versions with [`DecodeError::UnsupportedVersion`].
pub fn decode_relay_frame(bytes: &[u8]) -> Result<RelayFrame, DecodeError> {
    match decode_exact::<RelayFrame>(bytes) {
        Some(frame) if frame.v == PROTOCOL_VERSION => Ok(frame),
        Some(frame) => Err(DecodeError::UnsupportedVersion {
            version: frame.v,
            id: frame.id,
        }),
        None => Err(classify_failure(bytes)),
    }
}
