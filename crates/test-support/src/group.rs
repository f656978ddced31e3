//! The group fixture (`docs/engine.md` § Groups): Alice, Bob and Carol on one relay, Alice a
//! contact of both (Bob and Carol are not contacts of each other until their introduction), a
//! group of the three made by Alice, bounded waits on what a member's engine shows, and a
//! member sending what its engine would refuse to make ([`send_as`]).

use std::sync::{Arc, Mutex};

use sealpost_client::content::{Body, CONTENT_VERSION, Content};
use sealpost_client::engine::{GroupMessageView, GroupView};
use sealpost_client::store::{ContactId, SessionStateBytes, UnixMillis};
use sealpost_crypto::{MailboxSealingPublicKey, SendId, Session};

use crate::client::{Client, connect};
use crate::hostile::inject;
use crate::profile::KeychainCleanup;
use crate::relay::TestRelay;
use crate::wait::wait_until;

/// `client`'s copy of group `id`, if it has one.
pub async fn group_of(client: &Client, id: &str) -> Option<GroupView> {
    client
        .engine
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.id == id)
}

/// Every message of group `id` on `client` that is not a roster change, oldest first.
pub async fn group_texts(client: &Client, id: &str) -> Vec<GroupMessageView> {
    client
        .engine
        .get_group_messages(id, None, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| !m.is_roster_change)
        .collect()
}

/// Waits until `client` has a message `text` in group `id`; returns it.
pub async fn wait_for_group_text(client: &Client, id: &str, text: &str) -> GroupMessageView {
    let found = Arc::new(Mutex::new(None));
    wait_until(&format!("the group text {text:?} arrives"), || {
        let found = found.clone();
        async move {
            let message = group_texts(client, id)
                .await
                .into_iter()
                .find(|m| m.text == text);
            let done = message.is_some();
            *found.lock().unwrap() = message;
            done
        }
    })
    .await;
    let message = found.lock().unwrap().clone();
    message.unwrap()
}

/// Waits until group `id` reaches `client`.
pub async fn wait_for_group(client: &Client, id: &str) {
    wait_until("the group reaches the member", || async {
        group_of(client, id).await.is_some()
    })
    .await;
}

/// Alice, Bob and Carol on `relay`; Alice is a contact of both, Bob and Carol are not contacts.
/// The one three-member setup of the group tests ([`trio`] on a fresh [`TestRelay`], or
/// [`trio_on`] any relay under any names).
pub struct Trio<R = TestRelay> {
    /// The relay the three use.
    pub relay: R,
    /// Alice's, Bob's and Carol's display names.
    pub names: [String; 3],
    /// Alice (the admin of [`group_of_three`]).
    pub alice: Client,
    /// Bob.
    pub bob: Client,
    /// Carol.
    pub carol: Client,
    /// Alice's contact id for Bob.
    pub alice_bob: String,
    /// Bob's contact id for Alice.
    pub bob_alice: String,
    /// Alice's contact id for Carol.
    pub alice_carol: String,
    /// Carol's contact id for Alice.
    pub carol_alice: String,
    /// The keychain clean-up guards of the three profiles.
    pub secrets: Vec<KeychainCleanup>,
    /// Where the profiles live.
    pub root: tempfile::TempDir,
}

/// [`Trio`] on a fresh in-process relay, named Alice, Bob and Carol.
pub async fn trio() -> Trio {
    let relay = TestRelay::start().await;
    let url = relay.url();
    trio_on(relay, &url, ["Alice", "Bob", "Carol"].map(str::to_owned)).await
}

/// [`trio`] on `relay` (at `url`), the three named `names`.
pub async fn trio_on<R>(relay: R, url: &str, names: [String; 3]) -> Trio<R> {
    let root = tempfile::tempdir().unwrap();
    let (alice, a) = Client::new(&names[0], root.path(), url).await;
    let (bob, b) = Client::new(&names[1], root.path(), url).await;
    let (carol, c) = Client::new(&names[2], root.path(), url).await;
    let (alice_bob, bob_alice, _) = connect(&alice, &bob, &names[1]).await;
    let (alice_carol, carol_alice, _) = connect(&alice, &carol, &names[2]).await;
    Trio {
        relay,
        names,
        alice,
        bob,
        carol,
        alice_bob,
        bob_alice,
        alice_carol,
        carol_alice,
        secrets: vec![a, b, c],
        root,
    }
}

/// Alice makes a group with Bob and Carol; both have it. Returns its id.
pub async fn group_of_three<R>(t: &Trio<R>) -> String {
    let group = t
        .alice
        .engine
        .create_group(
            "Climbing",
            "Tuesdays",
            &[t.alice_bob.clone(), t.alice_carol.clone()],
        )
        .await
        .unwrap();
    wait_for_group(&t.bob, &group.id).await;
    wait_for_group(&t.carol, &group.id).await;
    group.id
}

/// Where `sender` writes to its contact (the test plays a member or a malicious relay).
pub struct Route {
    /// The contact's send id.
    pub send_id: [u8; 32],
    /// Its send secret.
    pub send_secret: [u8; 32],
    /// The X25519 key its mailbox is sealed to.
    pub sealing: [u8; 32],
    /// The key `sender` signs its SENDs with.
    pub sender_key: ed25519_dalek::SigningKey,
}

/// Where `sender` writes to `contact`, read from its store.
pub fn route(sender: &Client, contact: &str) -> Route {
    sender.engine.with_store(|s| {
        let address = s
            .peer_addresses(contact.parse().unwrap())
            .unwrap()
            .remove(0);
        Route {
            send_id: *address.send_id.as_bytes(),
            send_secret: address.send_secret.expose_secret().try_into().unwrap(),
            sealing: address.sealing_public_key.as_bytes().try_into().unwrap(),
            sender_key: ed25519_dalek::SigningKey::from_bytes(
                &address
                    .sender_auth_secret_key
                    .expose_secret()
                    .try_into()
                    .unwrap(),
            ),
        }
    })
}

/// Seals `body` on `sender`'s real session with `contact` (advancing it as the engine would)
/// and puts the envelope into the contact's mailbox: what a member can send, whatever its
/// engine would have refused to make.
pub async fn send_as(relay: &TestRelay, sender: &Client, contact: &str, body: Body) -> Vec<u8> {
    let route = route(sender, contact);
    let contact_id: ContactId = contact.parse().unwrap();
    let content = Content {
        v: CONTENT_VERSION,
        seq: 0,
        sent_at_ms: 0,
        body,
        receipts: vec![],
    };
    let envelope = sender.engine.with_store(|s| {
        let state = s.session_state(contact_id).unwrap().unwrap();
        let mut session = Session::from_bytes(state.expose_secret()).unwrap();
        let sealed = session
            .seal(
                &MailboxSealingPublicKey::from_bytes(route.sealing),
                &SendId(route.send_id),
                &content.to_bytes().unwrap(),
            )
            .unwrap();
        s.save_session_state(
            contact_id,
            &SessionStateBytes::new(session.to_bytes().unwrap().to_vec()),
            UnixMillis::now(),
        )
        .unwrap();
        sealed.as_bytes().to_vec()
    });
    inject_envelope(relay, &route, &envelope).await;
    envelope
}

/// Puts `envelope` into the mailbox `route` leads to, signed as its sender.
pub async fn inject_envelope(relay: &TestRelay, route: &Route, envelope: &[u8]) {
    inject(
        &relay.url(),
        route.send_id,
        route.send_secret,
        &route.sender_key,
        envelope,
    )
    .await;
}
