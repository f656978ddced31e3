//! The local test relay (`ARCHITECTURE.md` § Local test relay mode): one relay per user on a fixed
//! loopback port, found through a lock file, hosted by whichever profile came first and taken over
//! when it stops; and two profiles chatting through it with no other server. The App-level tests
//! need the real OS keychain: run them under `scripts/with-keyring.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::Path;

use sealpost_client::engine::{EngineEvent, RelayChoice};
use sealpost_client::local_relay::{
    LocalRelay, LocalRelayConfig, LocalRelayError, LocalRelayRole, url_for_port,
};
use sealpost_client::{App, AppConfig, LocalRelayMode, ProfileName};
use sealpost_test_support::{KeychainCleanup, WAIT, engine_config, unique_profile, wait_until};
use tokio::sync::mpsc::UnboundedReceiver;

/// A port that was free a moment ago (the local relay needs a fixed port, never 0).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn config(root: &Path, port: u16) -> LocalRelayConfig {
    LocalRelayConfig {
        data_root: root.to_path_buf(),
        port,
    }
}

async fn accepts_connections(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

#[tokio::test]
async fn second_profile_joins_the_running_relay_and_takes_over_when_the_host_stops() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let host = LocalRelay::start(config(root.path(), port)).await.unwrap();
    assert_eq!(host.role(), LocalRelayRole::Hosting);
    assert_eq!(host.url(), url_for_port(port));
    assert!(accepts_connections(port).await);

    // The second profile asks for another port but finds the running relay through the lock.
    let joined = LocalRelay::start(config(root.path(), free_port()))
        .await
        .unwrap();
    assert_eq!(joined.role(), LocalRelayRole::Joined);
    assert_eq!(joined.url(), host.url(), "both profiles use one relay");

    host.stop().await;
    wait_until("the joined profile hosts the relay", || async {
        joined.role() == LocalRelayRole::Hosting
    })
    .await;
    assert!(accepts_connections(port).await, "same port after take-over");
    joined.stop().await;
    assert!(!accepts_connections(port).await, "stopped for good");
}

#[tokio::test]
async fn a_port_taken_by_another_program_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let error = LocalRelay::start(config(root.path(), port))
        .await
        .err()
        .expect("a taken port must fail");
    assert!(
        matches!(error, LocalRelayError::PortTaken { port: p, .. } if p == port),
        "{error:?}"
    );
    assert!(error.to_string().contains("Settings"), "says what to do");
    // The lock was released: once the port is free, the relay starts.
    drop(squatter);
    let relay = LocalRelay::start(config(root.path(), port)).await.unwrap();
    assert_eq!(relay.role(), LocalRelayRole::Hosting);
    relay.stop().await;
}

#[tokio::test]
async fn port_zero_is_refused_because_invites_carry_the_url() {
    let root = tempfile::tempdir().unwrap();
    let error = LocalRelay::start(config(root.path(), 0)).await.err();
    assert!(matches!(error, Some(LocalRelayError::PortZero)));
}

#[tokio::test]
async fn a_corrupt_port_file_is_a_clear_error_for_the_joining_profile() {
    let root = tempfile::tempdir().unwrap();
    let host = LocalRelay::start(config(root.path(), free_port()))
        .await
        .unwrap();
    std::fs::write(root.path().join("local-relay/relay.port"), "not a port").unwrap();
    let error = LocalRelay::start(config(root.path(), free_port()))
        .await
        .err();
    assert!(
        matches!(error, Some(LocalRelayError::PortFileCorrupt { .. })),
        "{error:?}"
    );
    host.stop().await;
}

async fn open_app(
    profile: &ProfileName,
    root: &Path,
    mode: LocalRelayMode,
) -> (App, UnboundedReceiver<EngineEvent>) {
    App::open(AppConfig {
        engine: engine_config(profile, root),
        local_relay: mode,
        local_relay_port: None,
    })
    .await
    .unwrap()
}

async fn wait_for_text(events: &mut UnboundedReceiver<EngineEvent>, text: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(EngineEvent::MessageReceived { message, .. })) if message.text == text => {
                return;
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the event channel closed"),
            Err(_) => panic!("timed out waiting for {text:?}"),
        }
    }
}

#[tokio::test]
async fn two_profiles_chat_through_the_local_relay_and_survive_the_host_quitting() {
    let root = tempfile::tempdir().unwrap();
    let alice_profile = unique_profile("alice");
    let bob_profile = unique_profile("bob");
    let _secrets = (
        KeychainCleanup(alice_profile.clone()),
        KeychainCleanup(bob_profile.clone()),
    );

    // Pick a free port and make it the profiles' local relay port before onboarding.
    let port = free_port();
    let (alice, mut alice_events) =
        open_app(&alice_profile, root.path(), LocalRelayMode::FromSettings).await;
    let mut settings = alice.engine().get_settings().await.unwrap();
    assert!(!alice.status().await.unwrap().local_relay.enabled);
    settings.local_relay.enabled = true;
    settings.local_relay.port = port;
    settings.relays = vec![url_for_port(port)];
    alice.update_settings(settings.clone()).await.unwrap();
    let status = alice.status().await.unwrap();
    assert!(status.local_relay.enabled && status.local_relay.running);
    assert!(!status.onboarded);
    alice
        .onboard("Alice", RelayChoice::Local)
        .await
        .expect("onboarding on the local relay");
    assert_eq!(
        alice.engine().get_profile().await.unwrap().relays,
        vec![url_for_port(port)]
    );

    let (bob, mut bob_events) = open_app(&bob_profile, root.path(), LocalRelayMode::Forced).await;
    // Forced mode started (joined) the relay with the default port setting, but through the lock
    // file it found Alice's relay on `port`.
    let bob_status = bob.status().await.unwrap();
    assert_eq!(bob_status.local_relay.url, Some(url_for_port(port)));
    bob.onboard("Bob", RelayChoice::Local).await.unwrap();
    assert!(
        bob.engine()
            .get_settings()
            .await
            .unwrap()
            .local_relay
            .enabled
    );

    let invite = alice.engine().create_invite().await.unwrap();
    let preview = bob.engine().preview_invite(&invite.text).await.unwrap();
    assert_eq!(
        preview.relays,
        vec![url_for_port(port)],
        "invites carry the fixed URL"
    );
    let chat = bob
        .engine()
        .accept_invite(&invite.text, "Alice")
        .await
        .unwrap();
    bob.engine()
        .send_message(&chat.contact_id, "hello over the local relay")
        .await
        .unwrap();
    wait_for_text(&mut alice_events, "hello over the local relay").await;

    // Alice (the host) quits; Bob takes the relay over on the same port and database.
    alice.shutdown().await;
    drop(alice_events);
    let (alice, mut alice_events) =
        open_app(&alice_profile, root.path(), LocalRelayMode::FromSettings).await;
    let status = alice.status().await.unwrap();
    assert!(status.local_relay.running, "settings bring local mode back");
    bob.engine()
        .send_message(&chat.contact_id, "still here")
        .await
        .unwrap();
    wait_for_text(&mut alice_events, "still here").await;
    let alice_chat = alice.engine().list_chats().await.unwrap();
    assert_eq!(alice_chat.len(), 1);
    alice
        .engine()
        .send_message(&alice_chat[0].contact_id, "and back")
        .await
        .unwrap();
    wait_for_text(&mut bob_events, "and back").await;

    alice.shutdown().await;
    bob.shutdown().await;
}
