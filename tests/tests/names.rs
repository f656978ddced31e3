//! Names that lie (`docs/threat-model.md`, `crates/client/src/names.rs`): no name the engine
//! stores or shows carries a bidirectional control, so "\u{202E}gnp.exe" cannot pose as
//! "exe.png". Run as `scripts/with-keyring.sh cargo test -p sealpost-tests --test names`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_client::store::ContactId;
use sealpost_test_support::{Client, TestRelay, connect};

const LYING: &str = "\u{202E}gnp.exe\u{202C}";

fn has_control(name: &str) -> bool {
    name.chars().any(sealpost_client::names::is_bidi_control)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_bidi_controls_are_stored_and_shown_without_them() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, _a) = Client::new("Alice", root.path(), &relay.url()).await;
    // Bob picks a name with a right-to-left override: his own profile keeps none of it, and
    // what his Hello carries to Alice has none either.
    let (bob, _b) = Client::new("Bob", root.path(), &relay.url()).await;
    let profile = bob.engine.set_display_name(LYING).await.unwrap();
    assert_eq!(profile.display_name, "gnp.exe");
    let (alice_bob, bob_alice, _invite) = connect(&alice, &bob, "gnp.exe").await;

    // Renaming to a lying name is neutralised too.
    bob.engine.rename_contact(&bob_alice, LYING).await.unwrap();
    let chats = bob.engine.list_chats().await.unwrap();
    let renamed = chats.iter().find(|c| c.contact_id == bob_alice).unwrap();
    assert_eq!(renamed.display_name, "gnp.exe");
    assert!(!has_control(&bob.engine.with_store(|s| {
        s.contact(bob_alice.parse().unwrap())
            .unwrap()
            .unwrap()
            .display_name
    })));

    // A name stored with controls (by an older version, or written past the engine) is shown
    // without them.
    let id: ContactId = alice_bob.parse().unwrap();
    alice
        .engine
        .with_store(|store| store.rename_contact(id, LYING))
        .unwrap();
    let chats = alice.engine.list_chats().await.unwrap();
    let shown = chats.iter().find(|c| c.contact_id == alice_bob).unwrap();
    assert_eq!(shown.display_name, "gnp.exe");
    assert!(chats.iter().all(|c| !has_control(&c.display_name)));
}
