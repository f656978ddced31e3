//! The three-member group fixture of the group tests (`tests/tests/groups.rs`,
//! `tests/tests/group_disappearing.rs`, `tests/tests/group_attachments.rs`): Alice, a contact of
//! Bob and of Carol, who are not contacts of each other; and the waits and lookups those tests
//! share.

use std::sync::{Arc, Mutex};

use sealpost_client::content::Body;
use sealpost_client::engine::{GroupMessageView, GroupView};
use sealpost_client::group::{GroupId, MemberKey};

use crate::client::{Client, connect};
use crate::hostile::send_as;
use crate::profile::KeychainCleanup;
use crate::relay::TestRelay;
use crate::wait::wait_until;

/// A client's identity key, hex (how the engine's views name members).
pub fn key_of(client: &Client) -> String {
    hex::encode(client.engine.identity_key().to_bytes())
}

/// A client's identity key as a group member key.
pub fn member_key(client: &Client) -> MemberKey {
    MemberKey::from_bytes(client.engine.identity_key().to_bytes())
}

/// The client's view of group `id`, if it has the group.
pub async fn group_of(client: &Client, id: &str) -> Option<GroupView> {
    client
        .engine
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.id == id)
}

/// Every message of group `id` at `client`, texts and system lines, oldest first.
async fn group_messages(client: &Client, id: &str) -> Vec<GroupMessageView> {
    client
        .engine
        .get_group_messages(id, None, 500)
        .await
        .unwrap()
}

/// The texts (not the system lines) of group `id`, oldest first.
pub async fn texts(client: &Client, id: &str) -> Vec<GroupMessageView> {
    group_messages(client, id)
        .await
        .into_iter()
        .filter(|m| !m.is_roster_change)
        .collect()
}

/// Whether a text of group `id` at `client` is one for which `matches` holds.
pub async fn has_text(
    client: &Client,
    id: &str,
    matches: impl Fn(&GroupMessageView) -> bool,
) -> bool {
    texts(client, id).await.iter().any(matches)
}

/// The system lines of group `id` (their keys: `added:…`, `timer:300`, …), oldest first.
pub async fn system_lines(client: &Client, id: &str) -> Vec<String> {
    group_messages(client, id)
        .await
        .into_iter()
        .filter(|m| m.is_roster_change)
        .map(|m| m.text)
        .collect()
}

/// Waits until the text `text` is in group `id` at `client`; returns it.
pub async fn wait_for_text(client: &Client, id: &str, text: &str) -> GroupMessageView {
    let found = Arc::new(Mutex::new(None));
    wait_until(&format!("the group text {text:?} arrives"), || {
        let found = found.clone();
        async move {
            let message = texts(client, id).await.into_iter().find(|m| m.text == text);
            let done = message.is_some();
            *found.lock().unwrap() = message;
            done
        }
    })
    .await;
    found.lock().unwrap().clone().unwrap()
}

/// Waits until `client` has group `id`.
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
    /// The relay all three use.
    pub relay: R,
    /// Alice's, Bob's and Carol's display names.
    pub names: [String; 3],
    /// The group's creator.
    pub alice: Client,
    /// A contact of Alice's.
    pub bob: Client,
    /// Another contact of Alice's.
    pub carol: Client,
    /// Alice's contact id of Bob.
    pub alice_bob: String,
    /// Bob's contact id of Alice.
    pub bob_alice: String,
    /// Alice's contact id of Carol.
    pub alice_carol: String,
    /// Carol's contact id of Alice.
    pub carol_alice: String,
    /// Keychain entries removed on drop.
    pub secrets: Vec<KeychainCleanup>,
    /// The profiles' root directory.
    pub root: tempfile::TempDir,
}

/// [`Trio`] on a fresh [`TestRelay`], named Alice, Bob and Carol.
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

/// `admin` makes the group `name` (no description) with the contacts `contacts`; returns its
/// view. Nobody waits for the members to have it.
pub async fn create_group(admin: &Client, name: &str, contacts: &[&str]) -> GroupView {
    let contacts: Vec<String> = contacts.iter().map(|c| (*c).to_owned()).collect();
    admin
        .engine
        .create_group(name, "", &contacts)
        .await
        .unwrap()
}

/// Seals the group text `text` (group `id`, the author's sequence number `seq`) on `sender`'s
/// real session with `contact` and puts it in the contact's mailbox on `t`'s relay
/// ([`send_as`]): what a member, or a removed one, can send whatever its engine would refuse.
/// Returns the envelope.
pub async fn send_text_as(
    t: &Trio,
    sender: &Client,
    contact: &str,
    id: &str,
    seq: u64,
    text: &str,
) -> Vec<u8> {
    let body = Body::GroupText {
        group_id: id.parse::<GroupId>().unwrap(),
        seq,
        text: text.to_owned(),
    };
    send_as(&t.relay, sender, contact, body).await
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

/// Whether `client` has a chat with someone named `name` (a contact, or a member introduced).
pub async fn knows(client: &Client, name: &str) -> bool {
    client
        .engine
        .list_chats()
        .await
        .unwrap()
        .iter()
        .any(|c| c.display_name == name)
}

/// Waits until Bob and Carol, not contacts before, were introduced to each other.
pub async fn wait_introduced<R>(t: &Trio<R>) {
    wait_until("Bob and Carol are introduced", || async {
        knows(&t.bob, &t.names[2]).await && knows(&t.carol, &t.names[1]).await
    })
    .await;
}

/// `admin` removes `member` from group `id`, and waits until the member has learnt it (its
/// view says it is no member). Returns the admin's view of the group after the removal.
pub async fn remove_member(admin: &Client, member: &Client, id: &str) -> GroupView {
    let view = admin
        .engine
        .remove_group_member(id, &key_of(member))
        .await
        .unwrap();
    wait_until("the removed member learns of its removal", || async {
        !group_of(member, id).await.unwrap().is_member
    })
    .await;
    view
}
