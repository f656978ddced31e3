//! A fake relay (a tiny tokio-tungstenite server on 127.0.0.1:0) that sends garbage: every bad
//! frame must end in a typed error and a dropped connection, never a panic or a hang.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{bounded, connector, connector_with_timeouts, key};
use futures_util::{SinkExt, StreamExt};
use sealpost_relay_client::{ClientError, RelayUrl, SendSecret, Timeouts};
use sealpost_wire::{
    MessageId, Nonce, PROTOCOL_VERSION, ReceiveId, RelayFrame, Response, encode_relay_frame,
};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

fn frame(id: u64, body: Response) -> Vec<u8> {
    encode_relay_frame(&RelayFrame {
        v: PROTOCOL_VERSION,
        id,
        body,
    })
    .unwrap()
}

fn hello() -> Vec<u8> {
    frame(
        0,
        Response::Hello {
            nonce: Nonce([1; 32]),
            max_envelope: 1000,
            window: 8,
        },
    )
}

/// Serves one connection: sends `script` in order, then keeps reading until the client leaves.
async fn fake_relay(script: Vec<Message>) -> RelayUrl {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        for message in script {
            if socket.send(message).await.is_err() {
                return;
            }
        }
        while let Some(Ok(_)) = socket.next().await {}
    });
    RelayUrl::parse(&format!("ws://{address}")).unwrap()
}

/// Bytes that are not a relay frame of this version.
fn garbage_cases() -> Vec<(&'static str, Vec<u8>)> {
    let valid = frame(
        0,
        Response::End {
            receive_id: ReceiveId([3; 32]),
        },
    );
    let mut truncated = valid.clone();
    truncated.truncate(valid.len() / 2);
    let mut trailing = valid.clone();
    trailing.push(0);
    let wrong_version = encode_relay_frame(&RelayFrame {
        v: PROTOCOL_VERSION + 1,
        id: 0,
        body: Response::End {
            receive_id: ReceiveId([3; 32]),
        },
    })
    .unwrap();
    // A MESSAGE whose receive id is 31 bytes long: the CBOR is fine, the frame is not.
    let short_id = {
        let mut bytes = frame(
            0,
            Response::Message {
                receive_id: ReceiveId([4; 32]),
                message_id: MessageId(1),
                received_at: 0,
                envelope: vec![9; 3],
            },
        );
        // 0x58 0x20 = byte string of 32; make it 31 and drop one byte.
        let at = bytes.windows(2).position(|w| w == [0x58, 0x20]).unwrap();
        bytes[at + 1] = 0x1f;
        bytes.remove(at + 2);
        bytes
    };
    vec![
        ("empty", Vec::new()),
        ("one byte", vec![0xff]),
        (
            "random",
            (0..200u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
        ("truncated", truncated),
        ("trailing byte", trailing),
        ("wrong version", wrong_version),
        ("short receive id", short_id),
        ("cbor integer", vec![0x01]),
    ]
}

#[tokio::test]
async fn garbage_instead_of_hello_fails_the_connect() {
    for (name, bytes) in garbage_cases() {
        let url = fake_relay(vec![Message::Binary(bytes.into())]).await;
        let error = bounded(name, connector().connect_send(&url))
            .await
            .err()
            .expect(name);
        assert!(
            matches!(error, ClientError::Protocol(_)),
            "{name}: {error:?}"
        );
    }
    for (name, message) in [
        ("text frame", Message::Text("hello".into())),
        (
            "OK instead of HELLO",
            Message::Binary(frame(0, Response::Ok {}).into()),
        ),
        (
            "HELLO with an id",
            Message::Binary(
                frame(
                    5,
                    Response::Hello {
                        nonce: Nonce([1; 32]),
                        max_envelope: 1,
                        window: 1,
                    },
                )
                .into(),
            ),
        ),
    ] {
        let url = fake_relay(vec![message]).await;
        let error = bounded(name, connector().connect_send(&url))
            .await
            .err()
            .expect(name);
        assert!(
            matches!(error, ClientError::Protocol(_)),
            "{name}: {error:?}"
        );
    }
}

#[tokio::test]
async fn garbage_after_hello_ends_the_connection_with_a_protocol_error() {
    let mut cases: Vec<(&str, Message)> = garbage_cases()
        .into_iter()
        .map(|(name, bytes)| (name, Message::Binary(bytes.into())))
        .collect();
    cases.push(("text frame", Message::Text("{}".into())));
    cases.push(("second HELLO", Message::Binary(hello().into())));
    cases.push((
        "OK pushed with id 0",
        Message::Binary(frame(0, Response::Ok {}).into()),
    ));
    cases.push((
        "reply to an unknown id",
        Message::Binary(frame(77, Response::Ok {}).into()),
    ));
    cases.push((
        "oversized frame",
        Message::Binary(vec![0u8; 200 * 1024].into()),
    ));
    for (name, message) in cases {
        let url = fake_relay(vec![Message::Binary(hello().into()), message]).await;
        let (connection, mut pushes) = bounded(name, connector().connect_subscribe(&url))
            .await
            .unwrap();
        let error = bounded(name, pushes.next()).await.expect_err(name);
        assert!(
            matches!(error, ClientError::Protocol(_)),
            "{name}: {error:?}"
        );
        // Requests on the dead connection fail with the same typed error, promptly.
        let owner = key(1);
        let request = connection.subscribe(ReceiveId([1; 32]), &owner);
        let later = bounded(name, request).await.expect_err(name);
        assert_eq!(later, error, "{name}");
        assert!(connection.is_closed(), "{name}");
        // Repeated reads keep answering the terminal error.
        assert_eq!(bounded(name, pushes.next()).await.expect_err(name), error);
    }
}

#[tokio::test]
async fn a_reply_of_the_wrong_kind_is_a_protocol_error() {
    // The fake answers the client's first request (id 1) with END instead of CREATED.
    let url = fake_relay(vec![
        Message::Binary(hello().into()),
        Message::Binary(
            frame(
                1,
                Response::End {
                    receive_id: ReceiveId([3; 32]),
                },
            )
            .into(),
        ),
    ])
    .await;
    let connection = connector().connect_owner(&url).await.unwrap();
    let owner = key(1);
    let secret = SendSecret::new([2; 32]);
    let error = bounded("reply", connection.create(&owner, &secret, None))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Protocol(_)), "{error:?}");
}

#[tokio::test]
async fn a_relay_that_never_says_hello_times_out() {
    let url = fake_relay(Vec::new()).await;
    let quick = connector_with_timeouts(Timeouts {
        handshake: Duration::from_millis(200),
        ..Timeouts::default()
    });
    let error = bounded("handshake", quick.connect_send(&url))
        .await
        .err()
        .expect("timeout");
    assert_eq!(
        error,
        ClientError::HandshakeTimeout(Duration::from_millis(200))
    );
}

#[tokio::test]
async fn a_relay_that_never_answers_times_the_request_out_and_drops_the_connection() {
    let url = fake_relay(vec![Message::Binary(hello().into())]).await;
    let quick = connector_with_timeouts(Timeouts {
        request: Duration::from_millis(200),
        ..Timeouts::default()
    });
    let (connection, mut pushes) = quick.connect_subscribe(&url).await.unwrap();
    let owner = key(1);
    let error = bounded("request", connection.subscribe(ReceiveId([1; 32]), &owner))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ClientError::RequestTimeout(Duration::from_millis(200))
    );
    assert_eq!(
        bounded("pushes end", pushes.next()).await.unwrap_err(),
        error
    );
}

#[tokio::test]
async fn a_closed_port_is_a_retryable_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = RelayUrl::parse(&format!("ws://{address}")).unwrap();
    let error = bounded("connect", connector().connect_send(&url))
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, ClientError::Connect(_)), "{error:?}");
    assert_eq!(error.retry(), sealpost_relay_client::Retry::Soon);
}
