//! Property tests: URL parsing and the connection's frame handling never panic on any input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use sealpost_relay_client::{ClientError, Pushed, RelayUrl, TransportPolicy};
use sealpost_wire::{Nonce, PROTOCOL_VERSION, RelayFrame, Response, encode_relay_frame};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

proptest! {
    /// Any text: parse returns a value or a typed error, and what parses re-parses to itself.
    #[test]
    fn relay_url_parse_never_panics_and_round_trips(text in ".{0,80}") {
        if let Ok(url) = RelayUrl::parse(&text) {
            let again = RelayUrl::parse(url.as_str()).unwrap();
            prop_assert_eq!(&again, &url);
            let _ = TransportPolicy::default().check(&url);
        }
    }

    /// URL-shaped text with arbitrary hosts, ports and paths.
    #[test]
    fn relay_url_shaped_inputs_never_panic(
        scheme in "(ws|wss|http|WS|Wss)",
        host in "[a-zA-Z0-9.:\\[\\]-]{0,30}",
        port in proptest::option::of(any::<u32>()),
        path in "[/a-z%?#@]{0,12}",
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let text = format!("{scheme}://{host}{port}{path}");
        if let Ok(url) = RelayUrl::parse(&text) {
            prop_assert!(url.as_str().starts_with("ws"));
            let _ = url.is_loopback();
        }
    }
}

/// A fake relay that sends HELLO and then `bytes` as one binary frame.
async fn serve_once(bytes: Vec<u8>) -> RelayUrl {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        let hello = encode_relay_frame(&RelayFrame {
            v: PROTOCOL_VERSION,
            id: 0,
            body: Response::Hello {
                nonce: Nonce([1; 32]),
                max_envelope: 1000,
                window: 8,
            },
        })
        .unwrap();
        let _ = socket.send(Message::Binary(hello.into())).await;
        let _ = socket.send(Message::Binary(bytes.into())).await;
        while let Some(Ok(_)) = socket.next().await {}
    });
    RelayUrl::parse(&format!("ws://{address}")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Arbitrary bytes after HELLO: a push, or a typed protocol error; never a panic or a hang.
    #[test]
    fn arbitrary_relay_bytes_give_a_push_or_a_typed_error(
        bytes in proptest::collection::vec(any::<u8>(), 0..300)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let url = serve_once(bytes).await;
            let (_connection, mut pushes) = common::connector().connect_subscribe(&url).await.unwrap();
            match common::bounded("the frame", pushes.next()).await {
                Ok(Pushed::Message { .. } | Pushed::End { .. }) => {}
                Err(ClientError::Protocol(_)) => {}
                Err(other) => panic!("unexpected error {other:?}"),
            }
        });
    }
}
