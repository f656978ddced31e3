//! Behind a load balancer: per-IP limits count the client address that a trusted proxy reports
//! (PROXY protocol v2 or `X-Forwarded-For`), and nobody else's report is believed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;

use common::*;
use sealpost_relay::{ClientAddressConfig, ClientAddressSource, Limits, Rate};
use sealpost_wire::{ErrorCode, Response};

/// Test limits with one CREATE per client address (and no refill during the test).
fn one_create_per_address() -> Limits {
    Limits {
        create_rate_per_ip: Rate {
            per_second: 1,
            burst: 1,
        },
        ..test_limits()
    }
}

fn behind(source: ClientAddressSource, trusted: &str) -> ClientAddressConfig {
    ClientAddressConfig {
        source,
        trusted_proxies: vec![trusted.parse().unwrap()],
    }
}

/// A PROXY protocol v2 header for a TCP connection from `client`.
fn proxy_header(client: &str) -> Vec<u8> {
    ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | ppp::v2::Command::Proxy,
        ppp::v2::Protocol::Stream,
        (
            client.parse::<SocketAddr>().unwrap(),
            "10.0.0.1:443".parse::<SocketAddr>().unwrap(),
        ),
    )
    .build()
    .unwrap()
}

async fn create_result(client: &mut Client) -> Response {
    let auth = ed25519_dalek::SigningKey::from_bytes(&random32());
    let request = client.create_request(&auth, random32(), None);
    client.request(request).await
}

#[tokio::test]
async fn a_trusted_proxys_proxy_header_gives_each_client_its_own_limits() {
    let relay = TestRelay::start_with(
        Backend::Sqlite,
        one_create_per_address(),
        None,
        behind(ClientAddressSource::ProxyProtocolV2, "127.0.0.1"),
    )
    .await;
    let addr = relay.addr();
    let connect = |client: &'static str| async move {
        Client::connect_through_proxy(addr, &proxy_header(client), None).await
    };
    let mut first = connect("203.0.113.7:40000").await.unwrap();
    assert!(matches!(
        create_result(&mut first).await,
        Response::Created { .. }
    ));
    // Another client behind the same proxy has its own allowance...
    let mut other = connect("198.51.100.20:40001").await.unwrap();
    assert!(matches!(
        create_result(&mut other).await,
        Response::Created { .. }
    ));
    // ...and the first client's second connection shares the first one's.
    let mut again = connect("203.0.113.7:40002").await.unwrap();
    assert_eq!(create_result(&mut again).await, err(ErrorCode::RateLimited));
}

#[tokio::test]
async fn a_proxy_header_from_an_untrusted_peer_is_not_believed() {
    let relay = TestRelay::start_with(
        Backend::Sqlite,
        one_create_per_address(),
        None,
        behind(ClientAddressSource::ProxyProtocolV2, "192.0.2.1"),
    )
    .await;
    // Not a trusted proxy: its header is not read as one, so the upgrade request is garbage.
    let refused =
        Client::connect_through_proxy(relay.addr(), &proxy_header("203.0.113.7:40000"), None).await;
    assert!(refused.is_err());
    // Plain clients from that peer are served, all at the peer's own address.
    let mut first = Client::connect(relay.addr()).await;
    assert!(matches!(
        create_result(&mut first).await,
        Response::Created { .. }
    ));
    let mut second = Client::connect(relay.addr()).await;
    assert_eq!(
        create_result(&mut second).await,
        err(ErrorCode::RateLimited)
    );
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_for_gives_each_client_its_own_limits() {
    let relay = TestRelay::start_with(
        Backend::Sqlite,
        one_create_per_address(),
        None,
        behind(ClientAddressSource::XForwardedFor, "127.0.0.1"),
    )
    .await;
    let connect =
        |forwarded: &'static str| Client::connect_through_proxy(relay.addr(), &[], Some(forwarded));
    let mut first = connect("203.0.113.7").await.unwrap();
    assert!(matches!(
        create_result(&mut first).await,
        Response::Created { .. }
    ));
    // The proxy appends the client's address last; what the client claimed before it is not used.
    let mut other = connect("203.0.113.7, 198.51.100.20").await.unwrap();
    assert!(matches!(
        create_result(&mut other).await,
        Response::Created { .. }
    ));
    let mut again = connect("198.51.100.99, 203.0.113.7").await.unwrap();
    assert_eq!(create_result(&mut again).await, err(ErrorCode::RateLimited));
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let relay = TestRelay::start_with(
        Backend::Sqlite,
        one_create_per_address(),
        None,
        behind(ClientAddressSource::XForwardedFor, "192.0.2.1"),
    )
    .await;
    let mut first = Client::connect_through_proxy(relay.addr(), &[], Some("203.0.113.7"))
        .await
        .unwrap();
    assert!(matches!(
        create_result(&mut first).await,
        Response::Created { .. }
    ));
    // A different claimed address does not buy a new allowance: both are the peer's.
    let mut second = Client::connect_through_proxy(relay.addr(), &[], Some("198.51.100.20"))
        .await
        .unwrap();
    assert_eq!(
        create_result(&mut second).await,
        err(ErrorCode::RateLimited)
    );
}
