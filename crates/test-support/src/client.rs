//! Engines on the real OS keychain for end-to-end tests: one [`Client`] per profile, the
//! engine configuration they share (short retry and receipt delays), and the two-client
//! fixture [`two_clients`]: Alice and Bob, contacts of each other on one relay.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealpost_client::engine::{MessageStateView, MessageView, RelayChoice};
use sealpost_client::{Engine, EngineConfig, EngineEvent, ProfileName, ProfilesConfig};
use sealpost_relay_client::BackoffConfig;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::profile::{KeychainCleanup, open_real_vault, unique_profile};
use crate::relay::TestRelay;
use crate::wait::{WAIT, wait_until};

/// The engine configuration of the tests for `profile` under `root`: the real keychain vault,
/// delivery receipts after at most 20 ms and reconnects after at most 500 ms. With `RUST_LOG`
/// set, engine logs (refused envelopes, retries) go to the test output.
pub fn engine_config(profile: &ProfileName, root: &Path) -> EngineConfig {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut config = EngineConfig::new(profile.clone());
    config.profiles = ProfilesConfig {
        data_root: Some(root.to_path_buf()),
    };
    config.vault = Some(open_real_vault(profile));
    config.delivery_receipt_delay = (Duration::ZERO, Duration::from_millis(20));
    config.backoff = BackoffConfig {
        base: Duration::from_millis(50),
        max: Duration::from_millis(500),
        stable_after: Duration::from_secs(30),
    };
    config
}

/// One client: an engine and its events.
pub struct Client {
    /// The engine.
    pub engine: Engine,
    /// Its events, in order.
    pub events: UnboundedReceiver<EngineEvent>,
    /// Its profile.
    pub profile: ProfileName,
    /// The data root its profile lives under.
    pub root: PathBuf,
}

impl Client {
    /// Opens a new profile under `root` and onboards it on `relay_url`.
    pub async fn new(name: &str, root: &Path, relay_url: &str) -> (Self, KeychainCleanup) {
        Self::new_with(name, root, relay_url, |_| {}).await
    }

    /// [`Client::new`] with `adjust` applied to the engine config.
    pub async fn new_with(
        name: &str,
        root: &Path,
        relay_url: &str,
        adjust: fn(&mut EngineConfig),
    ) -> (Self, KeychainCleanup) {
        let (client, cleanup) = Self::create_with(name, root, adjust).await;
        client
            .engine
            .onboard(
                name,
                RelayChoice::Remote {
                    url: relay_url.to_owned(),
                    password: None,
                },
            )
            .await
            .unwrap();
        (client, cleanup)
    }

    /// A new profile for `name` under `root`, opened but not onboarded.
    pub async fn create(name: &str, root: &Path) -> (Self, KeychainCleanup) {
        Self::create_with(name, root, |_| {}).await
    }

    async fn create_with(
        name: &str,
        root: &Path,
        adjust: fn(&mut EngineConfig),
    ) -> (Self, KeychainCleanup) {
        let profile = unique_profile(&name.to_lowercase());
        let cleanup = KeychainCleanup(profile.clone());
        (Self::reopen_with(&profile, root, adjust).await, cleanup)
    }

    /// Opens an existing profile again (after [`Client::stop`]).
    pub async fn reopen(profile: &ProfileName, root: &Path) -> Self {
        Self::reopen_with(profile, root, |_| {}).await
    }

    /// [`Client::reopen`] with `adjust` applied to the engine config.
    pub async fn reopen_with(
        profile: &ProfileName,
        root: &Path,
        adjust: fn(&mut EngineConfig),
    ) -> Self {
        let mut config = engine_config(profile, root);
        adjust(&mut config);
        let (engine, events) = Engine::open(config).await.unwrap();
        Self {
            engine,
            events,
            profile: profile.clone(),
            root: root.to_path_buf(),
        }
    }

    /// Stops the engine (its tasks and connections); the profile stays on disk.
    pub async fn stop(self) -> (ProfileName, PathBuf) {
        self.engine.clone().shutdown().await;
        (self.profile, self.root)
    }

    /// Sends `text` to `contact` (stored and sealed when this returns; the outbox delivers it).
    pub async fn send(&self, contact: &str, text: &str) -> MessageView {
        self.engine.send_message(contact, text).await.unwrap()
    }

    /// The conversation exactly as the engine's view (`get_messages`) returns it. Never sorted
    /// here: the order the UI shows is the engine's, and a test must see an ordering bug.
    pub async fn messages(&self, contact: &str) -> Vec<MessageView> {
        self.engine
            .get_messages(contact, None, 500)
            .await
            .unwrap()
            .messages
    }

    /// The messages from `contact`, in the engine's order.
    pub async fn incoming(&self, contact: &str) -> Vec<MessageView> {
        self.messages(contact)
            .await
            .into_iter()
            .filter(|m| !m.outgoing)
            .collect()
    }

    /// The texts of the messages from `contact`, in the engine's order.
    pub async fn incoming_texts(&self, contact: &str) -> Vec<String> {
        self.incoming(contact)
            .await
            .into_iter()
            .map(|m| m.text)
            .collect()
    }

    /// How many search hits `word` has at this client (1:1 and group texts, file names).
    pub async fn search_count(&self, word: &str) -> usize {
        self.engine
            .search_messages(word, 50, None)
            .await
            .unwrap()
            .hits
            .len()
    }

    /// Whether every message to `contact` is delivered.
    pub async fn all_delivered(&self, contact: &str) -> bool {
        self.messages(contact)
            .await
            .iter()
            .all(|m| !m.outgoing || m.state == MessageStateView::Delivered)
    }

    /// Waits until exactly `count` messages from `contact` are shown.
    pub async fn wait_incoming_count(&self, contact: &str, count: usize) {
        let what = format!("{} has {count} messages", self.profile);
        wait_until(&what, || async {
            self.incoming(contact).await.len() == count
        })
        .await;
    }

    /// Waits until at least `count` messages from `contact` are shown.
    pub async fn wait_incoming_at_least(&self, contact: &str, count: usize) {
        let what = format!("{} has {count} or more messages", self.profile);
        wait_until(&what, || async {
            self.incoming(contact).await.len() >= count
        })
        .await;
    }

    /// Waits until a message from `contact` reading `text` is shown.
    pub async fn wait_incoming_text(&self, contact: &str, text: &str) {
        let what = format!("{} has {text:?}", self.profile);
        wait_until(&what, || async {
            self.incoming(contact).await.iter().any(|m| m.text == text)
        })
        .await;
    }

    /// Waits until the outbox is empty: everything sealed is on every relay.
    pub async fn wait_outbox_empty(&self) {
        let what = format!("{}'s outbox is empty", self.profile);
        wait_until(&what, || async {
            self.engine.with_store(|s| s.outbox().unwrap().is_empty())
        })
        .await;
    }

    /// The sealed envelopes of messages waiting in the outbox, oldest first (as they will go to
    /// the relay): (relay URL, send id, sealed bytes).
    pub fn sealed_messages_in_outbox(&self) -> Vec<(String, [u8; 32], Vec<u8>)> {
        self.engine.with_store(|s| {
            s.outbox()
                .unwrap()
                .into_iter()
                .filter(|item| item.message.is_some())
                .map(|item| {
                    (
                        item.relay_url.as_str().to_owned(),
                        *item.send_id.as_bytes(),
                        item.sealed.as_bytes().to_vec(),
                    )
                })
                .collect()
        })
    }

    /// The stored session with `contact`, byte for byte.
    pub fn session_bytes(&self, contact: &str) -> Vec<u8> {
        self.engine.with_store(|s| {
            s.session_state(contact.parse().unwrap())
                .unwrap()
                .unwrap()
                .expose_secret()
                .to_vec()
        })
    }

    /// A stored engine setting (`engine.…` keys; test hooks read the engine's bookkeeping).
    pub fn setting(&self, key: &str) -> Option<String> {
        self.engine.with_store(|s| s.setting(key).unwrap())
    }

    /// This profile's identity key pair, from its keychain entry.
    pub fn identity(&self) -> sealpost_crypto::IdentityKeyPair {
        let seed = open_real_vault(&self.profile)
            .load_identity_seed()
            .unwrap()
            .unwrap();
        sealpost_crypto::IdentityKeyPair::from_seed(&sealpost_crypto::IdentitySeed::from_bytes(
            zeroize::Zeroizing::new(*seed.expose_secret()),
        ))
        .unwrap()
    }

    /// Every event received so far, without waiting (for "no event of this kind" checks).
    pub fn drain_events(&mut self) -> Vec<EngineEvent> {
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push(event);
        }
        events
    }

    /// Adds `relay_url` to the relays new mailboxes (and so new invites) are made on.
    pub async fn add_relay(&self, relay_url: &str) {
        let mut settings = self.engine.get_settings().await.unwrap();
        settings.relays.push(relay_url.to_owned());
        self.engine.update_settings(settings).await.unwrap();
    }

    /// Waits for an event matching `predicate` (other events are dropped).
    pub async fn wait_event(
        &mut self,
        mut predicate: impl FnMut(&EngineEvent) -> bool,
    ) -> EngineEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) if predicate(&event) => return event,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the engine's event channel closed"),
                Err(_) => panic!("timed out waiting for an event"),
            }
        }
    }

    /// Waits until the chat list has a chat for which `matches` holds; returns its contact id.
    pub async fn wait_for_chat(
        &self,
        what: &str,
        matches: impl Fn(&sealpost_client::engine::ChatView) -> bool,
    ) -> String {
        let found = Arc::new(Mutex::new(None));
        wait_until(what, || {
            let engine = self.engine.clone();
            let found = found.clone();
            let matches = &matches;
            async move {
                let chats = engine.list_chats().await.unwrap();
                match chats.iter().find(|chat| matches(chat)) {
                    Some(chat) => {
                        *found.lock().unwrap() = Some(chat.contact_id.clone());
                        true
                    }
                    None => false,
                }
            }
        })
        .await;
        let contact = found.lock().unwrap().take();
        contact.unwrap()
    }
}

/// `inviter` invites, `invitee` accepts; returns (inviter's contact id for the invitee,
/// invitee's contact id for the inviter, the invite text).
pub async fn connect(
    inviter: &Client,
    invitee: &Client,
    invitee_name: &str,
) -> (String, String, String) {
    let invite = inviter.engine.create_invite().await.unwrap();
    let chat = invitee
        .engine
        .accept_invite(&invite.text, "")
        .await
        .unwrap();
    let inviter_contact = inviter
        .wait_for_chat("the inviter sees the new contact", |chat| {
            chat.display_name == invitee_name
        })
        .await;
    (inviter_contact, chat.contact_id, invite.text)
}

/// The two-client fixture: (Alice, Bob, Alice's contact id for Bob, Bob's contact id for
/// Alice, Alice's invite as Bob accepted it, their keychain clean-up guards). Keep the guards
/// alive (`_secrets`, not `_`) for as long as the profiles are used.
pub type TwoClients = (Client, Client, String, String, String, [KeychainCleanup; 2]);

/// Alice and Bob, new profiles under `root`, onboarded on `relay_url` and contacts of each
/// other (Alice invited, Bob accepted); no message sent yet.
pub async fn two_clients(root: &Path, relay_url: &str) -> TwoClients {
    two_clients_with(root, relay_url, |_| {}).await
}

/// [`two_clients`] with `adjust` applied to both engine configs.
pub async fn two_clients_with(
    root: &Path,
    relay_url: &str,
    adjust: fn(&mut EngineConfig),
) -> TwoClients {
    let (alice, a) = Client::new_with("Alice", root, relay_url, adjust).await;
    let (bob, b) = Client::new_with("Bob", root, relay_url, adjust).await;
    let (alice_bob, bob_alice, invite) = connect(&alice, &bob, "Bob").await;
    (alice, bob, alice_bob, bob_alice, invite, [a, b])
}

/// [`two_clients_with`] on a fresh [`TestRelay`] under a fresh data root: (the relay, the root,
/// the two clients). Keep the relay and the root alive (`_relay`, not `_`) while the clients
/// run; `|_| {}` adjusts nothing.
pub async fn two_clients_on_new_relay(
    adjust: fn(&mut EngineConfig),
) -> (TestRelay, tempfile::TempDir, TwoClients) {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let clients = two_clients_with(root.path(), &relay.url(), adjust).await;
    (relay, root, clients)
}

/// [`two_clients`], then Alice sends `first` and Bob has it (so Bob's sender key is bound).
pub async fn two_clients_first_message(root: &Path, relay_url: &str, first: &str) -> TwoClients {
    let (alice, bob, alice_bob, bob_alice, invite, secrets) = two_clients(root, relay_url).await;
    alice.send(&alice_bob, first).await;
    wait_until("Bob has Alice's first message", || async {
        bob.incoming(&bob_alice).await.len() == 1
    })
    .await;
    (alice, bob, alice_bob, bob_alice, invite, secrets)
}

/// [`two_clients`], then Alice sends `first`, Bob answers `reply`, and both are delivered:
/// every receipt has been sealed and opened, so nothing else moves either session until the
/// test does.
pub async fn two_clients_exchanged(
    root: &Path,
    relay_url: &str,
    first: &str,
    reply: &str,
) -> TwoClients {
    let (alice, bob, alice_bob, bob_alice, invite, secrets) =
        two_clients_first_message(root, relay_url, first).await;
    bob.send(&bob_alice, reply).await;
    wait_until("Alice has Bob's reply and both are delivered", || async {
        alice.incoming(&alice_bob).await.len() == 1
            && alice.all_delivered(&alice_bob).await
            && bob.all_delivered(&bob_alice).await
    })
    .await;
    (alice, bob, alice_bob, bob_alice, invite, secrets)
}
