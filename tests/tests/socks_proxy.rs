//! The SOCKS5 proxy setting in the engine: set at run time it applies at once, and a proxy that
//! is down shows as its own connection state while nothing connects directly.
//!
//! Run under `scripts/with-keyring.sh` (the engines use the real OS keychain).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_client::EngineEvent;
use sealpost_client::engine::ConnectionStateView;
use sealpost_test_support::{Client, TestRelay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_is_down_is_a_state_of_its_own_and_nothing_goes_direct() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, _secrets) = Client::new("Alice", root.path(), &relay.url()).await;
    // A mailbox, so there is a subscription to watch.
    alice.engine.create_invite().await.unwrap();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let settings = alice
        .engine
        .set_socks_proxy(Some(&closed.to_string()))
        .await
        .unwrap();
    assert_eq!(settings.socks_proxy, Some(closed.to_string()));
    alice
        .wait_event(|event| {
            matches!(event, EngineEvent::ConnectionState { connections }
                if connections.iter().any(|c| c.state == ConnectionStateView::ProxyUnreachable))
        })
        .await;
    // The relay is reachable directly, but nothing falls back to it.
    let error = alice.engine.create_invite().await.unwrap_err();
    assert_eq!(error.kind(), "relay_unreachable");
    // A host name is refused: the proxy's own address is never looked up.
    assert_eq!(
        alice
            .engine
            .set_socks_proxy(Some("tor.example:9050"))
            .await
            .unwrap_err()
            .kind(),
        "invalid_input"
    );
    // Back to direct: CREATE works again.
    alice.engine.set_socks_proxy(None).await.unwrap();
    alice.engine.create_invite().await.unwrap();
    alice.stop().await;
}
