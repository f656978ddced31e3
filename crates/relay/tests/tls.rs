//! wss://: the relay serves the protocol over rustls with a certificate from PEM files, and a
//! client that checks the certificate against its trust root gets full service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use sealpost_relay::{Relay, RelayConfig, TlsConfig};
use sealpost_wire::{
    ClientFrame, Response, SendSecret, decode_relay_frame, encode_client_frame, requests,
};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn wss_serves_create_send_and_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let config = RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: dir.path().join("relay.db").into(),
        tls: Some(TlsConfig {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        }),
        password: None,
        metrics_listen: None,
        client_address: Default::default(),
        limits: common::test_limits(),
    };
    let relay = Relay::start(config).await.unwrap();

    let mut roots = RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client_config));
    let tcp = tokio::net::TcpStream::connect(relay.addr()).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/", tls)
        .await
        .unwrap();

    let hello = loop {
        if let Message::Binary(bytes) = ws.next().await.unwrap().unwrap() {
            break decode_relay_frame(&bytes).unwrap();
        }
    };
    let Response::Hello { nonce, .. } = hello.body else {
        panic!("no Hello")
    };
    let auth = ed25519_dalek::SigningKey::from_bytes(&common::random32());
    let secret = common::random32();
    let create = requests::create(&nonce, &auth, SendSecret::new(secret), None);
    let bytes = encode_client_frame(&ClientFrame::new(1, create)).unwrap();
    ws.send(Message::Binary(bytes.into())).await.unwrap();
    let reply = loop {
        if let Message::Binary(bytes) = ws.next().await.unwrap().unwrap() {
            break decode_relay_frame(&bytes).unwrap();
        }
    };
    let Response::Created {
        receive_id,
        send_id,
    } = reply.body
    else {
        panic!("{reply:?}")
    };
    for (id, request) in [
        (
            2,
            requests::send(send_id, SendSecret::new(secret), b"over tls".to_vec()),
        ),
        (3, requests::subscribe(&nonce, &auth, receive_id)),
    ] {
        let bytes = encode_client_frame(&ClientFrame::new(id, request)).unwrap();
        ws.send(Message::Binary(bytes.into())).await.unwrap();
    }
    let mut delivered = None;
    let mut replies = 0;
    while delivered.is_none() || replies < 2 {
        let Message::Binary(bytes) = ws.next().await.unwrap().unwrap() else {
            continue;
        };
        let frame = decode_relay_frame(&bytes).unwrap();
        match frame.body {
            Response::Ok {} => replies += 1,
            Response::Message { envelope, .. } => delivered = Some(envelope),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delivered.unwrap(), b"over tls");
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_missing_certificate_is_a_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: dir.path().join("relay.db").into(),
        tls: Some(TlsConfig {
            cert: dir.path().join("none.pem"),
            key: dir.path().join("none.key"),
        }),
        password: None,
        metrics_listen: None,
        client_address: Default::default(),
        limits: common::test_limits(),
    };
    assert!(matches!(
        Relay::start(config).await,
        Err(sealpost_relay::RelayError::Tls(_))
    ));
}
