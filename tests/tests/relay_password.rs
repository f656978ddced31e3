//! A relay started with a password: the app makes mailboxes on it only with that password,
//! given at onboarding or later in the settings, and never hands the password back.
//!
//! Run under `scripts/with-keyring.sh` (the engines use the real OS keychain).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_client::engine::{RelayChoice, RelayPassword};
use sealpost_test_support::{Client, KeychainCleanup, TestRelay};

const PASSWORD: &str = "open sesame";

async fn onboarded(
    name: &str,
    root: &std::path::Path,
    relay: &TestRelay,
    password: Option<&str>,
) -> (Client, KeychainCleanup) {
    let (client, secrets) = Client::create(name, root).await;
    client
        .engine
        .onboard(
            name,
            RelayChoice::Remote {
                url: relay.url(),
                password: password.map(RelayPassword::new),
            },
        )
        .await
        .unwrap();
    (client, secrets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_are_made_on_a_password_relay_with_the_password_from_onboarding() {
    let relay = TestRelay::start_with(|config| config.password = Some(PASSWORD.into())).await;
    let root = tempfile::tempdir().unwrap();
    let (alice, _secrets) = onboarded("Alice", root.path(), &relay, Some(PASSWORD)).await;
    alice.engine.create_invite().await.unwrap();
    let settings = alice.engine.get_settings().await.unwrap();
    assert_eq!(settings.relays_with_password, vec![relay.url()]);
    let json = serde_json::to_string(&settings).unwrap();
    assert!(!json.contains(PASSWORD), "the password came back: {json}");
    let choice = RelayChoice::Remote {
        url: relay.url(),
        password: Some(RelayPassword::new(PASSWORD)),
    };
    assert!(
        !format!("{choice:?}").contains(PASSWORD),
        "the password is in Debug"
    );
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_password_creating_fails_with_its_own_kind_until_it_is_set() {
    let relay = TestRelay::start_with(|config| config.password = Some(PASSWORD.into())).await;
    let root = tempfile::tempdir().unwrap();
    let (bob, _secrets) = onboarded("Bob", root.path(), &relay, None).await;
    let error = bob.engine.create_invite().await.unwrap_err();
    assert_eq!(error.kind(), "relay_password_required");
    bob.engine
        .set_relay_password(&relay.url(), Some(RelayPassword::new("wrong")))
        .await
        .unwrap();
    let error = bob.engine.create_invite().await.unwrap_err();
    assert_eq!(error.kind(), "relay_password_required");
    let settings = bob
        .engine
        .set_relay_password(&relay.url(), Some(RelayPassword::new(PASSWORD)))
        .await
        .unwrap();
    assert_eq!(settings.relays_with_password, vec![relay.url()]);
    bob.engine.create_invite().await.unwrap();
    let settings = bob
        .engine
        .set_relay_password(&relay.url(), None)
        .await
        .unwrap();
    assert!(settings.relays_with_password.is_empty());
    assert_eq!(
        bob.engine.create_invite().await.unwrap_err().kind(),
        "relay_password_required"
    );
    bob.stop().await;
}
