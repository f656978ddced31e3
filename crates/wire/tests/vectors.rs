//! Frozen vectors for the relay protocol's byte layouts (`docs/relay-protocol.md`): one of every
//! client frame, every relay frame, every error code and every signature input, committed in
//! `tests/vectors/frames.json`.
//!
//! Each entry is decoded and must equal the frame built here, and the frame built here must
//! encode to exactly the committed bytes. A change of layout (a renamed field, a reordered map, a
//! new required field) therefore fails this test: it needs a `PROTOCOL_VERSION` bump, never a
//! silent change. New variants add entries. To add entries after a deliberate change, run
//! `SEALPOST_WRITE_VECTORS=1 cargo test -p sealpost-wire --test vectors` and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sealpost_wire::{
    AuthPublicKey, BlobDownload, BlobDownloadAuth, BlobDownloadId, BlobUploadAuth, BlobUploadId,
    ClientFrame, ErrorCode, MessageId, Nonce, OwnerCommand, PROTOCOL_VERSION, ReceiveId,
    RelayFrame, Request, Response, SendId, SendSecret, SignatureBytes, create_signature_input,
    decode_client_frame, decode_relay_frame, encode_client_frame, encode_relay_frame,
    owner_signature_input, sender_session_signature_input,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Vector {
    /// What the entry is.
    name: String,
    /// `client` (ClientFrame), `relay` (RelayFrame) or `signature-input`.
    kind: String,
    /// The exact bytes, lowercase hex.
    hex: String,
}

fn receive_id() -> ReceiveId {
    ReceiveId([0x11; 32])
}
fn send_id() -> SendId {
    SendId([0x22; 32])
}
fn auth_key() -> AuthPublicKey {
    AuthPublicKey([0x33; 32])
}
fn signature() -> SignatureBytes {
    SignatureBytes([0x44; 64])
}
fn nonce() -> Nonce {
    Nonce([0x55; 32])
}
fn send_secret() -> SendSecret {
    SendSecret::new([0x66; 32])
}

fn upload_id() -> BlobUploadId {
    BlobUploadId([0x77; 32])
}
fn upload_auth() -> BlobUploadAuth {
    BlobUploadAuth::new([0x88; 32])
}
fn download(byte: u8) -> BlobDownload {
    BlobDownload {
        download_id: BlobDownloadId([byte; 32]),
        download_auth: BlobDownloadAuth::new([byte ^ 0xFF; 32]),
    }
}

fn client(id: u64, body: Request) -> ClientFrame {
    ClientFrame {
        v: PROTOCOL_VERSION,
        id,
        body,
    }
}

fn relay(id: u64, body: Response) -> RelayFrame {
    RelayFrame {
        v: PROTOCOL_VERSION,
        id,
        body,
    }
}

fn client_frames() -> Vec<(&'static str, ClientFrame)> {
    vec![
        (
            "create",
            client(
                1,
                Request::Create {
                    auth_key: auth_key(),
                    send_secret: send_secret(),
                    password: None,
                    signature: signature(),
                },
            ),
        ),
        (
            "create-with-password",
            client(
                2,
                Request::Create {
                    auth_key: auth_key(),
                    send_secret: send_secret(),
                    password: Some("correct horse".to_owned()),
                    signature: signature(),
                },
            ),
        ),
        (
            "subscribe",
            client(
                3,
                Request::Subscribe {
                    receive_id: receive_id(),
                    signature: signature(),
                },
            ),
        ),
        (
            "ack",
            client(
                u64::MAX,
                Request::Ack {
                    receive_id: receive_id(),
                    message_ids: vec![MessageId(0x0102_0304_0506_0708)],
                    signature: Some(signature()),
                },
            ),
        ),
        (
            "ack-several",
            client(
                4,
                Request::Ack {
                    receive_id: receive_id(),
                    message_ids: vec![MessageId(7), MessageId(u64::MAX), MessageId(0x0102)],
                    signature: Some(signature()),
                },
            ),
        ),
        (
            // Protocol version 4: on the connection that subscribes the mailbox, no signature.
            "ack-subscribed",
            client(
                9,
                Request::Ack {
                    receive_id: receive_id(),
                    message_ids: vec![MessageId(7), MessageId(u64::MAX), MessageId(0x0102)],
                    signature: None,
                },
            ),
        ),
        (
            "delete",
            client(
                5,
                Request::Delete {
                    receive_id: receive_id(),
                    signature: signature(),
                },
            ),
        ),
        (
            "secure",
            client(
                6,
                Request::Secure {
                    receive_id: receive_id(),
                    sender_key: auth_key(),
                    signature: signature(),
                },
            ),
        ),
        (
            "send",
            client(
                7,
                Request::Send {
                    send_id: send_id(),
                    send_secret: send_secret(),
                    envelope: vec![0xAB; 40],
                },
            ),
        ),
        (
            "sender-session",
            client(
                8,
                Request::SenderSession {
                    send_id: send_id(),
                    send_secret: send_secret(),
                    sender_key: auth_key(),
                    signature: signature(),
                },
            ),
        ),
        (
            "blob-create",
            client(
                20,
                Request::BlobCreate {
                    upload_id: upload_id(),
                    upload_auth: upload_auth(),
                    chunk_count: 3,
                    downloads: vec![download(0x91), download(0x92)],
                    password: None,
                },
            ),
        ),
        (
            "blob-create-with-password",
            client(
                21,
                Request::BlobCreate {
                    upload_id: upload_id(),
                    upload_auth: upload_auth(),
                    chunk_count: 70_000,
                    downloads: vec![download(0x93)],
                    password: Some("correct horse".to_owned()),
                },
            ),
        ),
        (
            "blob-put",
            client(
                22,
                Request::BlobPut {
                    upload_id: upload_id(),
                    upload_auth: upload_auth(),
                    index: 2,
                    // A real chunk is BLOB_CHUNK_BYTES long; the layout does not depend on it.
                    chunk: vec![0x5A; 4],
                },
            ),
        ),
        (
            "blob-status",
            client(
                23,
                Request::BlobStatus {
                    upload_id: upload_id(),
                    upload_auth: upload_auth(),
                },
            ),
        ),
        (
            "blob-get",
            client(
                24,
                Request::BlobGet {
                    download_id: download(0x91).download_id,
                    download_auth: download(0x91).download_auth,
                    index: 1,
                },
            ),
        ),
        (
            "blob-delete",
            client(
                25,
                Request::BlobDelete {
                    upload_id: upload_id(),
                    upload_auth: upload_auth(),
                },
            ),
        ),
    ]
}

fn relay_frames() -> Vec<(String, RelayFrame)> {
    let mut frames = vec![
        (
            "hello".to_owned(),
            relay(
                0,
                Response::Hello {
                    nonce: nonce(),
                    max_envelope: 65_536 + 1024,
                    window: 8,
                },
            ),
        ),
        ("ok".to_owned(), relay(9, Response::Ok {})),
        (
            "created".to_owned(),
            relay(
                10,
                Response::Created {
                    receive_id: receive_id(),
                    send_id: send_id(),
                },
            ),
        ),
        (
            "message".to_owned(),
            relay(
                0,
                Response::Message {
                    receive_id: receive_id(),
                    message_id: MessageId(42),
                    received_at: 1_764_892_800,
                    envelope: vec![0xEF; 17],
                },
            ),
        ),
        (
            "blob-state".to_owned(),
            relay(
                23,
                Response::BlobState {
                    chunk_count: 3,
                    stored: 2,
                },
            ),
        ),
        (
            "blob-chunk".to_owned(),
            relay(
                24,
                Response::BlobChunk {
                    index: 1,
                    chunk: vec![0xA5; 4],
                },
            ),
        ),
        (
            "end".to_owned(),
            relay(
                0,
                Response::End {
                    receive_id: receive_id(),
                },
            ),
        ),
    ];
    let codes = [
        ErrorCode::Malformed,
        ErrorCode::UnsupportedVersion,
        ErrorCode::Auth,
        ErrorCode::Password,
        ErrorCode::SenderAuth,
        ErrorCode::AlreadySecured,
        ErrorCode::TooLarge,
        ErrorCode::QuotaExceeded,
        ErrorCode::RateLimited,
        ErrorCode::LimitExceeded,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
        ErrorCode::BlobGone,
        ErrorCode::ChunkSize,
        ErrorCode::ChunkIndex,
        ErrorCode::OutOfOrder,
        ErrorCode::ChunkMissing,
        ErrorCode::IdInUse,
    ];
    for code in codes {
        frames.push((
            format!("error-{code:?}"),
            relay(11, Response::Error { code }),
        ));
    }
    frames
}

fn signature_inputs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("create", create_signature_input(&nonce(), &auth_key())),
        (
            "owner-subscribe",
            owner_signature_input(&nonce(), OwnerCommand::Subscribe, &receive_id()),
        ),
        (
            "owner-ack",
            owner_signature_input(&nonce(), OwnerCommand::Ack(&[MessageId(7)]), &receive_id()),
        ),
        (
            "owner-ack-several",
            owner_signature_input(
                &nonce(),
                OwnerCommand::Ack(&[MessageId(7), MessageId(u64::MAX), MessageId(0x0102)]),
                &receive_id(),
            ),
        ),
        (
            "owner-delete",
            owner_signature_input(&nonce(), OwnerCommand::Delete, &receive_id()),
        ),
        (
            "owner-secure",
            owner_signature_input(&nonce(), OwnerCommand::Secure(auth_key()), &receive_id()),
        ),
        (
            "sender-session",
            sender_session_signature_input(&nonce(), &send_id(), &auth_key()),
        ),
    ]
}

/// Every entry as built by the code today.
fn built() -> Vec<Vector> {
    let mut out = Vec::new();
    for (name, frame) in client_frames() {
        let bytes = encode_client_frame(&frame).expect("encodes");
        out.push(Vector {
            name: name.to_owned(),
            kind: "client".to_owned(),
            hex: hex::encode(bytes),
        });
    }
    for (name, frame) in relay_frames() {
        let bytes = encode_relay_frame(&frame).expect("encodes");
        out.push(Vector {
            name,
            kind: "relay".to_owned(),
            hex: hex::encode(bytes),
        });
    }
    for (name, bytes) in signature_inputs() {
        out.push(Vector {
            name: name.to_owned(),
            kind: "signature-input".to_owned(),
            hex: hex::encode(bytes),
        });
    }
    out
}

fn vector_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/frames.json")
}

fn committed() -> Vec<Vector> {
    if std::env::var_os("SEALPOST_WRITE_VECTORS").is_some() {
        // Written to a temporary file and renamed, so the other test never reads half a file.
        let json = serde_json::to_string_pretty(&built()).expect("serialises");
        let temporary =
            vector_file().with_extension(format!("json.{:?}", std::thread::current().id()));
        std::fs::write(&temporary, json + "\n").expect("writes the vector file");
        std::fs::rename(&temporary, vector_file()).expect("moves the vector file in place");
    }
    let text = std::fs::read_to_string(vector_file()).expect("the committed vector file");
    serde_json::from_str(&text).expect("the vector file parses")
}

#[test]
fn every_frame_and_signature_input_encodes_to_the_committed_bytes() {
    let committed = committed();
    let built = built();
    for vector in &built {
        let frozen = committed
            .iter()
            .find(|entry| entry.kind == vector.kind && entry.name == vector.name)
            .unwrap_or_else(|| panic!("{} {} has no committed vector", vector.kind, vector.name));
        assert_eq!(
            vector.hex, frozen.hex,
            "{} {} no longer encodes to its frozen bytes",
            vector.kind, vector.name
        );
    }
    assert_eq!(
        committed.len(),
        built.len(),
        "a committed vector is no longer built (a removed variant needs a version bump)"
    );
}

#[test]
fn every_committed_frame_decodes_to_the_frame_it_names() {
    let committed = committed();
    let clients = client_frames();
    let relays = relay_frames();
    for vector in committed {
        let bytes = hex::decode(&vector.hex).expect("hex");
        match vector.kind.as_str() {
            "client" => {
                let decoded = decode_client_frame(&bytes)
                    .unwrap_or_else(|e| panic!("client {} does not decode: {e}", vector.name));
                let expected = clients
                    .iter()
                    .find(|(name, _)| *name == vector.name)
                    .map(|(_, frame)| frame)
                    .expect("named frame");
                assert_eq!(&decoded, expected, "client {}", vector.name);
                assert_eq!(encode_client_frame(&decoded).expect("encodes"), bytes);
            }
            "relay" => {
                let decoded = decode_relay_frame(&bytes)
                    .unwrap_or_else(|e| panic!("relay {} does not decode: {e}", vector.name));
                let expected = relays
                    .iter()
                    .find(|(name, _)| *name == vector.name)
                    .map(|(_, frame)| frame)
                    .expect("named frame");
                assert_eq!(&decoded, expected, "relay {}", vector.name);
                assert_eq!(encode_relay_frame(&decoded).expect("encodes"), bytes);
            }
            "signature-input" => {}
            other => panic!("unknown vector kind {other}"),
        }
    }
}

/// A version-1 client's ACK (one id per signed frame), as the version-1 vectors froze it.
const VERSION_1_ACK: &str = "a36176016269641bffffffffffffffff64626f6479a16341636ba36a726563656976655f6964582011111111111111111111111111111111111111111111111111111111111111116a6d6573736167655f69641b0102030405060708697369676e6174757265584044444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444";

#[test]
fn a_version_1_ack_is_refused_as_an_unsupported_version_with_its_id() {
    let bytes = hex::decode(VERSION_1_ACK).expect("hex");
    assert_eq!(
        decode_client_frame(&bytes),
        Err(sealpost_wire::DecodeError::UnsupportedVersion {
            version: 1,
            id: u64::MAX,
        })
    );
}

/// A version-2 client's SEND to a secured mailbox (a sender signature on every SEND), as the
/// version-2 vectors froze it.
const VERSION_2_SIGNED_SEND: &str = "a36176026269640864626f6479a16453656e64a46773656e645f6964582022222222222222222222222222222222222222222222222222222222222222226b73656e645f7365637265745820666666666666666666666666666666666666666666666666666666666666666668656e76656c6f706543cdcdcd7073656e6465725f7369676e6174757265584044444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444";

#[test]
fn a_version_2_signed_send_is_refused_as_an_unsupported_version_with_its_id() {
    let bytes = hex::decode(VERSION_2_SIGNED_SEND).expect("hex");
    assert_eq!(
        decode_client_frame(&bytes),
        Err(sealpost_wire::DecodeError::UnsupportedVersion { version: 2, id: 8 })
    );
}

/// A version-3 client's ACK (every ACK signed), as the version-3 vectors froze it (`ack-several`).
/// Its layout is a version-4 signed ACK's; only `v` differs, and that alone refuses it.
const VERSION_3_SIGNED_ACK: &str = "a36176036269640464626f6479a16341636ba36a726563656976655f6964582011111111111111111111111111111111111111111111111111111111111111116b6d6573736167655f69647383071bffffffffffffffff190102697369676e6174757265584044444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444";

#[test]
fn a_version_3_ack_is_refused_as_an_unsupported_version_with_its_id() {
    let bytes = hex::decode(VERSION_3_SIGNED_ACK).expect("hex");
    assert_eq!(
        decode_client_frame(&bytes),
        Err(sealpost_wire::DecodeError::UnsupportedVersion { version: 3, id: 4 })
    );
    // The same bytes with `v = 4` are today's signed ACK.
    let mut current = bytes.clone();
    current[3] = 0x04;
    let frame = decode_client_frame(&current).expect("a version-4 signed ACK");
    assert!(matches!(
        frame.body,
        Request::Ack {
            signature: Some(_),
            ..
        }
    ));
}
