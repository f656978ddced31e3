//! Shared harness of the end-to-end tests: real relays on 127.0.0.1:0, real engines on the real
//! OS keychain (run under `scripts/with-keyring.sh`), bounded waits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sealpost_client::engine::{MessageView, RelayChoice};
use sealpost_client::{Engine, EngineConfig, EngineEvent, ProfileName, ProfilesConfig, Vault};
use sealpost_relay::{Relay, RelayConfig, RelayHandle};
use sealpost_relay_client::{BackoffConfig, Connector, ConnectorConfig, RelayUrl};
use tokio::sync::mpsc::UnboundedReceiver;

/// The longest any wait in these tests lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// A relay on loopback that can be stopped and started again on the same port and database.
pub struct TestRelay {
    handle: Option<RelayHandle>,
    pub addr: SocketAddr,
    database: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestRelay {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`TestRelay::start`] with `adjust` applied to the config (benchmarks change limits).
    pub async fn start_with(adjust: impl FnOnce(&mut RelayConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("relay.db");
        let mut config = RelayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: database.clone().into(),
            ..RelayConfig::default()
        };
        adjust(&mut config);
        let handle = Relay::start(config).await.unwrap();
        Self {
            addr: handle.addr(),
            handle: Some(handle),
            database,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await.unwrap();
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        let mut last = None;
        for _ in 0..50 {
            match Relay::start(RelayConfig {
                listen: self.addr,
                database: self.database.clone().into(),
                ..RelayConfig::default()
            })
            .await
            {
                Ok(handle) => {
                    self.handle = Some(handle);
                    return;
                }
                Err(error) => last = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("relay did not restart: {last:?}");
    }
}

/// Deletes a profile's keychain entries when dropped.
pub struct Secrets(pub ProfileName);

impl Drop for Secrets {
    fn drop(&mut self) {
        if let Ok(vault) = Vault::open(&self.0) {
            let _ = vault.delete_profile_secrets();
        }
    }
}

pub fn unique_profile(prefix: &str) -> ProfileName {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    ProfileName::new(&format!("{prefix}_{}", hex::encode(bytes))).unwrap()
}

/// One client: an engine and its events.
pub struct Client {
    pub engine: Engine,
    pub events: UnboundedReceiver<EngineEvent>,
    pub profile: ProfileName,
    pub root: PathBuf,
}

pub fn config(profile: &ProfileName, root: &Path) -> EngineConfig {
    // Engine logs (refused envelopes, retries) go to the test output with RUST_LOG set.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let vault = Vault::open(profile).unwrap_or_else(|error| {
        panic!(
            "these tests need a real OS keychain; run them as \
             `scripts/with-keyring.sh cargo test -p sealpost-tests`: {error}"
        )
    });
    let mut config = EngineConfig::new(profile.clone());
    config.profiles = ProfilesConfig {
        data_root: Some(root.to_path_buf()),
    };
    config.vault = Some(vault);
    config.delivery_receipt_delay = (Duration::ZERO, Duration::from_millis(20));
    config.backoff = BackoffConfig {
        base: Duration::from_millis(50),
        max: Duration::from_millis(500),
        stable_after: Duration::from_secs(30),
    };
    config
}

impl Client {
    /// Opens a new profile under `root` and onboards it on `relay_url`.
    pub async fn new(name: &str, root: &Path, relay_url: &str) -> (Self, Secrets) {
        Self::new_with(name, root, relay_url, |_| {}).await
    }

    /// [`Client::new`] with `adjust` applied to the engine config.
    pub async fn new_with(
        name: &str,
        root: &Path,
        relay_url: &str,
        adjust: fn(&mut EngineConfig),
    ) -> (Self, Secrets) {
        let profile = unique_profile(&name.to_lowercase());
        let secrets = Secrets(profile.clone());
        let client = Self::reopen_with(&profile, root, adjust).await;
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
        (client, secrets)
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
        let mut config = config(profile, root);
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

    /// The conversation exactly as the engine's view (`get_messages`) returns it. Never sorted
    /// here: the order the UI shows is the engine's, and a test must see an ordering bug.
    pub async fn messages(&self, contact: &str) -> Vec<MessageView> {
        self.engine
            .get_messages(contact, None, 500)
            .await
            .unwrap()
            .messages
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

    pub async fn incoming(&self, contact: &str) -> Vec<MessageView> {
        self.messages(contact)
            .await
            .into_iter()
            .filter(|m| !m.outgoing)
            .collect()
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
}

/// Polls `check` every 25 ms until it returns true; fails the test after [`WAIT`].
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
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
    let inviter_contact = std::sync::Arc::new(std::sync::Mutex::new(None));
    wait_until("the inviter sees the new contact", || {
        let engine = inviter.engine.clone();
        let found = inviter_contact.clone();
        async move {
            let chats = engine.list_chats().await.unwrap();
            match chats.iter().find(|c| c.display_name == invitee_name) {
                Some(chat) => {
                    *found.lock().unwrap() = Some(chat.contact_id.clone());
                    true
                }
                None => false,
            }
        }
    })
    .await;
    let inviter_contact = inviter_contact.lock().unwrap().clone();
    (inviter_contact.unwrap(), chat.contact_id, invite.text)
}

/// Sends raw envelope bytes into a mailbox as a malicious relay could store them: signed with
/// `sender_key` (the relay itself needs no key; the test uses the legitimate sender's).
pub async fn inject(
    relay_url: &str,
    send_id: [u8; 32],
    send_secret: [u8; 32],
    sender_key: &ed25519_dalek::SigningKey,
    envelope: &[u8],
) {
    let connector = Connector::new(ConnectorConfig::default()).unwrap();
    let url = RelayUrl::parse(relay_url).unwrap();
    let connection = connector.connect_send(&url).await.unwrap();
    connection
        .send(
            sealpost_relay_client::SendId(send_id),
            &sealpost_relay_client::SendSecret::new(send_secret),
            envelope,
            Some(sender_key),
        )
        .await
        .unwrap();
    connection.close();
}
