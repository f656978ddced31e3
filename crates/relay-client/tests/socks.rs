//! Every relay connection through a SOCKS5 proxy (Tor): a real SOCKS5 server (`fast-socks5`)
//! on loopback records what each connection asks for and forwards it to a real relay.
//! Names go to the proxy unresolved, each connection role has its own credentials, and a proxy
//! that is down fails the connection without any direct fallback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bounded, key, start_loopback_relay};
use fast_socks5::server::{Socks5ServerProtocol, run_tcp_proxy};
use fast_socks5::util::target_addr::TargetAddr;
use sealpost_relay_client::{
    ClientError, ConnectionState, Connector, ConnectorConfig, Inbound, RelayUrl, SendSecret,
    Sender, SocksProxy, Subscriber, SubscriberConfig, TlsRoots, TransportPolicy,
};

/// One connection as the proxy saw it: SOCKS user name, password and the requested target.
#[derive(Debug, Clone)]
struct Seen {
    user: String,
    password: String,
    target: TargetAddr,
}

/// Starts a SOCKS5 server (user/password auth, any credentials accepted) on 127.0.0.1:0 that
/// records each request and connects every one to `relay`, whatever name it asked for.
async fn socks_server(relay: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut credentials = None;
                let Ok((protocol, _)) =
                    Socks5ServerProtocol::accept_password_auth(socket, |user, password| {
                        credentials = Some((user, password));
                        true
                    })
                    .await
                else {
                    return;
                };
                let Ok((protocol, _command, target)) = protocol.read_command().await else {
                    return;
                };
                let (user, password) = credentials.unwrap();
                log.lock().unwrap().push(Seen {
                    user,
                    password,
                    target,
                });
                let _ = run_tcp_proxy(
                    protocol,
                    &TargetAddr::Ip(relay),
                    Duration::from_secs(10),
                    true,
                )
                .await;
            });
        }
    });
    (address, seen)
}

fn proxied_connector(proxy: SocketAddr) -> Connector {
    Connector::new(ConnectorConfig {
        roots: TlsRoots {
            skip_system_roots: true,
            extra_ca_pem: None,
        },
        // The test relay speaks plain ws:// under a name that is not loopback.
        policy: TransportPolicy {
            allow_insecure_remote: true,
        },
        proxy: Some(SocksProxy { address: proxy }),
        ..ConnectorConfig::default()
    })
    .unwrap()
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    address
}

#[tokio::test]
async fn every_role_goes_through_the_proxy_by_name_with_its_own_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_loopback_relay(dir.path()).await;
    let (proxy, seen) = socks_server(relay.addr()).await;
    let connector = proxied_connector(proxy);
    // No resolver knows this name (.test is reserved): only the proxy can reach it.
    let port = relay.addr().port();
    let url = RelayUrl::parse(&format!("ws://relay.sealpost.test:{port}")).unwrap();
    let owner = key(1);
    let secret = SendSecret::new([2; 32]);

    let (receive_id, send_id) = bounded("create", async {
        connector
            .connect_owner(&url)
            .await
            .unwrap()
            .create(&owner, &secret, None)
            .await
            .unwrap()
    })
    .await;
    let (other_receive_id, _) = bounded("second create", async {
        connector
            .connect_owner(&url)
            .await
            .unwrap()
            .create(&key(3), &secret, None)
            .await
            .unwrap()
    })
    .await;
    let (subscriber, mut inbound) =
        Subscriber::spawn(connector.clone(), url.clone(), SubscriberConfig::default());
    subscriber.add(receive_id, owner.clone()).unwrap();
    let sender = Sender::new(connector.clone());
    bounded(
        "send",
        sender.send(&url, send_id, &secret, b"via tor", None),
    )
    .await
    .unwrap();
    match bounded("the push", inbound.recv()).await.unwrap() {
        Inbound::Message(delivery) => assert_eq!(delivery.envelope, b"via tor"),
        other => panic!("expected the envelope, got {other:?}"),
    }
    let _ = other_receive_id;

    let seen = seen.lock().unwrap().clone();
    // Two owner connections, one send connection, one subscription: all through the proxy.
    assert_eq!(seen.len(), 4, "{seen:?}");
    for connection in &seen {
        match &connection.target {
            TargetAddr::Domain(name, target_port) => {
                assert_eq!(name, "relay.sealpost.test");
                assert_eq!(*target_port, port);
            }
            TargetAddr::Ip(address) => panic!("resolved locally to {address}"),
        }
    }
    let of = |user: &str| -> Vec<&Seen> { seen.iter().filter(|s| s.user == user).collect() };
    let (owners, sends, subscribes) = (
        of("sealpost-owner"),
        of("sealpost-send"),
        of("sealpost-subscribe"),
    );
    assert_eq!(
        (owners.len(), sends.len(), subscribes.len()),
        (2, 1, 1),
        "{seen:?}"
    );
    let passwords: std::collections::HashSet<&str> =
        seen.iter().map(|s| s.password.as_str()).collect();
    assert_eq!(
        passwords.len(),
        4,
        "every connection here has its own SOCKS password"
    );
    subscriber.shutdown().await;
    sender.close_all();
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_proxy_that_is_down_fails_every_role_and_nothing_goes_direct() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_loopback_relay(dir.path()).await;
    let connector = proxied_connector(closed_port().await);
    // The relay itself is reachable directly: a fallback would succeed.
    let url = RelayUrl::parse(&format!("ws://{}", relay.addr())).unwrap();
    assert!(matches!(
        connector.connect_send(&url).await.err(),
        Some(ClientError::Proxy(_))
    ));
    assert!(matches!(
        connector.connect_owner(&url).await.err(),
        Some(ClientError::Proxy(_))
    ));
    assert!(matches!(
        connector.connect_subscribe(&url).await.err(),
        Some(ClientError::Proxy(_))
    ));
    let (subscriber, _inbound) =
        Subscriber::spawn(connector.clone(), url.clone(), SubscriberConfig::default());
    let mut state = subscriber.state();
    bounded(
        "Offline with the proxy error",
        state.wait_for(|s| {
            matches!(
                s,
                ConnectionState::Offline {
                    error: ClientError::Proxy(_),
                    ..
                }
            )
        }),
    )
    .await
    .unwrap();
    subscriber.shutdown().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn onion_relays_are_refused_without_a_proxy() {
    let connector = common::connector();
    let url = RelayUrl::parse("ws://relay2wyxzabc.onion").unwrap();
    assert!(matches!(
        connector.connect_send(&url).await.err(),
        Some(ClientError::Url(
            sealpost_relay_client::UrlError::OnionWithoutProxy { .. }
        ))
    ));
}
