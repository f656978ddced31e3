//! Property tests of the frame codec: every frame round-trips, and decoding arbitrary or
//! mutated bytes never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use sealpost_wire::{
    AuthPublicKey, ClientFrame, DecodeError, ErrorCode, MessageId, Nonce, PROTOCOL_VERSION,
    ReceiveId, RelayFrame, Request, Response, SendId, SendSecret, SignatureBytes,
    decode_client_frame, decode_relay_frame, encode_client_frame, encode_relay_frame,
};

fn bytes32() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

fn signature() -> impl Strategy<Value = SignatureBytes> {
    proptest::collection::vec(any::<u8>(), 64)
        .prop_map(|v| SignatureBytes(<[u8; 64]>::try_from(v.as_slice()).unwrap()))
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (
            bytes32(),
            bytes32(),
            proptest::option::of(".{0,20}"),
            signature()
        )
            .prop_map(|(auth_key, secret, password, signature)| Request::Create {
                auth_key: AuthPublicKey(auth_key),
                send_secret: SendSecret::new(secret),
                password,
                signature,
            }),
        (bytes32(), signature()).prop_map(|(r, signature)| Request::Subscribe {
            receive_id: ReceiveId(r),
            signature
        }),
        (
            bytes32(),
            proptest::collection::vec(any::<u64>(), 1..40),
            proptest::option::of(signature())
        )
            .prop_map(|(r, m, signature)| Request::Ack {
                receive_id: ReceiveId(r),
                message_ids: m.into_iter().map(MessageId).collect(),
                signature
            }),
        (bytes32(), signature()).prop_map(|(r, signature)| Request::Delete {
            receive_id: ReceiveId(r),
            signature
        }),
        (bytes32(), bytes32(), signature()).prop_map(|(r, k, signature)| Request::Secure {
            receive_id: ReceiveId(r),
            sender_key: AuthPublicKey(k),
            signature
        }),
        (
            bytes32(),
            bytes32(),
            proptest::collection::vec(any::<u8>(), 0..2048)
        )
            .prop_map(|(s, secret, envelope)| Request::Send {
                send_id: SendId(s),
                send_secret: SendSecret::new(secret),
                envelope,
            }),
        (bytes32(), bytes32(), bytes32(), signature()).prop_map(|(s, secret, k, signature)| {
            Request::SenderSession {
                send_id: SendId(s),
                send_secret: SendSecret::new(secret),
                sender_key: AuthPublicKey(k),
                signature,
            }
        }),
    ]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::Malformed),
        Just(ErrorCode::UnsupportedVersion),
        Just(ErrorCode::Auth),
        Just(ErrorCode::Password),
        Just(ErrorCode::SenderAuth),
        Just(ErrorCode::AlreadySecured),
        Just(ErrorCode::TooLarge),
        Just(ErrorCode::QuotaExceeded),
        Just(ErrorCode::RateLimited),
        Just(ErrorCode::LimitExceeded),
        Just(ErrorCode::ShuttingDown),
        Just(ErrorCode::Internal),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (bytes32(), any::<u32>(), any::<u16>()).prop_map(|(n, max_envelope, window)| {
            Response::Hello {
                nonce: Nonce(n),
                max_envelope,
                window,
            }
        }),
        Just(Response::Ok {}),
        (bytes32(), bytes32()).prop_map(|(r, s)| Response::Created {
            receive_id: ReceiveId(r),
            send_id: SendId(s)
        }),
        (
            bytes32(),
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..2048)
        )
            .prop_map(|(r, m, t, envelope)| Response::Message {
                receive_id: ReceiveId(r),
                message_id: MessageId(m),
                received_at: t,
                envelope
            }),
        bytes32().prop_map(|r| Response::End {
            receive_id: ReceiveId(r)
        }),
        error_code().prop_map(|code| Response::Error { code }),
    ]
}

proptest! {
    #[test]
    fn client_frames_round_trip(id in any::<u64>(), body in request()) {
        let frame = ClientFrame { v: PROTOCOL_VERSION, id, body };
        let bytes = encode_client_frame(&frame).unwrap();
        prop_assert_eq!(decode_client_frame(&bytes).unwrap(), frame);
    }

    #[test]
    fn relay_frames_round_trip(id in any::<u64>(), body in response()) {
        let frame = RelayFrame { v: PROTOCOL_VERSION, id, body };
        let bytes = encode_relay_frame(&frame).unwrap();
        prop_assert_eq!(decode_relay_frame(&bytes).unwrap(), frame);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_client_frame(&bytes);
        let _ = decode_relay_frame(&bytes);
    }

    #[test]
    fn decoding_mutated_frames_never_panics(
        id in any::<u64>(),
        body in request(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let frame = ClientFrame { v: PROTOCOL_VERSION, id, body };
        let mut bytes = encode_client_frame(&frame).unwrap();
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] ^= value;
        }
        let _ = decode_client_frame(&bytes);
        let truncated = &bytes[..cut.index(bytes.len())];
        prop_assert!(decode_client_frame(truncated).is_err());
    }

    #[test]
    fn other_versions_are_refused_with_their_id(id in any::<u64>(), v in any::<u16>(), body in request()) {
        prop_assume!(v != PROTOCOL_VERSION);
        let bytes = encode_client_frame(&ClientFrame { v, id, body }).unwrap();
        prop_assert_eq!(
            decode_client_frame(&bytes),
            Err(DecodeError::UnsupportedVersion { version: v, id })
        );
    }
}

#[test]
fn trailing_bytes_are_malformed() {
    let frame = RelayFrame {
        v: PROTOCOL_VERSION,
        id: 7,
        body: Response::Ok {},
    };
    let mut bytes = encode_relay_frame(&frame).unwrap();
    bytes.push(0);
    assert_eq!(
        decode_relay_frame(&bytes),
        Err(DecodeError::Malformed { id: None })
    );
}

#[test]
fn ok_frame_has_the_documented_bytes() {
    // {"v": 4, "id": 7, "body": {"Ok": {}}} — the example in docs/relay-protocol.md.
    let frame = RelayFrame {
        v: PROTOCOL_VERSION,
        id: 7,
        body: Response::Ok {},
    };
    let bytes = encode_relay_frame(&frame).unwrap();
    let expected: Vec<u8> = vec![
        0xa3, 0x61, b'v', 0x04, 0x62, b'i', b'd', 0x07, 0x64, b'b', b'o', b'd', b'y', 0xa1, 0x62,
        b'O', b'k', 0xa0,
    ];
    assert_eq!(bytes, expected);
}

#[test]
fn unknown_error_codes_decode_as_unknown() {
    // {"v":4,"id":0,"body":{"Error":{"code":"Zzz"}}}
    let bytes: Vec<u8> = vec![
        0xa3, 0x61, b'v', 0x04, 0x62, b'i', b'd', 0x00, 0x64, b'b', b'o', b'd', b'y', 0xa1, 0x65,
        b'E', b'r', b'r', b'o', b'r', 0xa1, 0x64, b'c', b'o', b'd', b'e', 0x63, b'Z', b'z', b'z',
    ];
    let frame = decode_relay_frame(&bytes).unwrap();
    assert_eq!(
        frame.body,
        Response::Error {
            code: ErrorCode::Unknown
        }
    );
}

#[test]
fn an_ack_signature_of_cbor_null_is_an_unsigned_ack() {
    // {"v":4,"id":9,"body":{"Ack":{"receive_id":…,"message_ids":[7],"signature":null}}}: a null
    // optional field counts as absent (docs/relay-protocol.md § 3.1).
    use ciborium::Value;
    let text = |s: &str| Value::Text(s.to_owned());
    let ack = Value::Map(vec![
        (text("receive_id"), Value::Bytes(vec![0x11; 32])),
        (
            text("message_ids"),
            Value::Array(vec![Value::Integer(7.into())]),
        ),
        (text("signature"), Value::Null),
    ]);
    let frame = Value::Map(vec![
        (text("v"), Value::Integer(PROTOCOL_VERSION.into())),
        (text("id"), Value::Integer(9.into())),
        (text("body"), Value::Map(vec![(text("Ack"), ack)])),
    ]);
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&frame, &mut bytes).unwrap();
    let decoded = decode_client_frame(&bytes).unwrap();
    assert_eq!(
        decoded.body,
        Request::Ack {
            receive_id: ReceiveId([0x11; 32]),
            message_ids: vec![MessageId(7)],
            signature: None,
        }
    );
}

/// Random CBOR documents shaped like frames (known keys, random values), so decoding is
/// exercised past the first bytes.
fn cbor_value() -> impl Strategy<Value = ciborium::Value> {
    use ciborium::Value;
    let leaf = prop_oneof![
        any::<u64>().prop_map(|n| Value::Integer(n.into())),
        any::<i64>().prop_map(|n| Value::Integer(n.into())),
        proptest::collection::vec(any::<u8>(), 0..70).prop_map(Value::Bytes),
        prop_oneof![
            Just("v"),
            Just("id"),
            Just("body"),
            Just("Send"),
            Just("Create"),
            Just("Ok"),
            Just("Error"),
            Just("code"),
            Just("envelope"),
            Just("send_id"),
            Just("Message"),
            Just("receive_id"),
            Just("signature"),
            Just("message_id"),
            Just("Auth"),
        ]
        .prop_map(|s| Value::Text(s.to_owned())),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(ciborium::Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..6).prop_map(ciborium::Value::Map),
        ]
    })
}

proptest! {
    #[test]
    fn decoding_frame_shaped_cbor_never_panics(
        id in any::<u64>(),
        version in prop_oneof![Just(1u64), any::<u64>()],
        body in cbor_value(),
    ) {
        use ciborium::Value;
        let document = Value::Map(vec![
            (Value::Text("v".into()), Value::Integer(version.into())),
            (Value::Text("id".into()), Value::Integer(id.into())),
            (Value::Text("body".into()), body),
        ]);
        let mut bytes = Vec::new();
        ciborium::ser::into_writer(&document, &mut bytes).unwrap();
        let _ = decode_client_frame(&bytes);
        let _ = decode_relay_frame(&bytes);
    }
}
