//! Opening and closing the engine: [`EngineConfig`], `Engine::open`, resuming queued work on
//! open, and `Engine::shutdown`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealpost_crypto::{IdentityKey, IdentityKeyPair, IdentitySeed};
use sealpost_relay_client::{BackoffConfig, Connector, ConnectorConfig, Sender, Subscriber};
use tokio::sync::{Notify, mpsc};
use zeroize::Zeroizing;

use super::error::EngineError;
use super::outbox::outbox_loop;
use super::secure::secure_loop;
use super::settings::{parse_socks_proxy, read_settings};
use super::state::{BlockingWork, Engine, Inner, lock};
use super::views::*;
use crate::clock::Clock;
use crate::content::{CONTENT_VERSION, Content};
use crate::open::{OpenedProfile, open_profile};
use crate::profile::{ProfileDirs, ProfileName, ProfilesConfig};
use crate::store::{Store, StoreConfig, UnixMillis};
use crate::vault::Vault;

/// How long the dedupe row of a received envelope is kept (`docs/engine.md` § Inside a ratchet
/// message): far longer than a relay keeps an envelope (21 days by default,
/// `docs/relay-protocol.md` § 8), so a redelivery is still recognised; after it, a replay is still
/// refused by the ratchet, whose message keys are used once. Older rows are deleted on open.
pub const SEEN_ENVELOPE_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// Everything [`Engine::open`] needs.
pub struct EngineConfig {
    /// The profile to open.
    pub profile: ProfileName,
    /// Where profiles live (tests and portable installs override the data root).
    pub profiles: ProfilesConfig,
    /// The keychain vault; `None` opens the native OS keychain for the profile.
    pub vault: Option<Vault>,
    /// How relays are reached: transport policy (ws:// beyond loopback), extra CA, timeouts.
    pub connector: ConnectorConfig,
    /// The local test relay's URL, used for [`RelayChoice::Local`].
    pub local_relay_url: Option<String>,
    /// Delay range before a delivery receipt goes out alone (5–60 s, `docs/engine.md` § Inside a
    /// ratchet message; tests set ~0).
    pub delivery_receipt_delay: (Duration, Duration),
    /// Send delivery receipts at all.
    pub delivery_receipts: bool,
    /// Outbox and subscriber retry backoff.
    pub backoff: BackoffConfig,
    /// Store options.
    pub store: StoreConfig,
    /// The clock message expiry is judged by (tests move it forward).
    pub clock: Clock,
    /// The relays' blob stores for attachments; `None` uses the relay client's.
    pub blobs: Option<Arc<dyn crate::blobs::BlobTransport>>,
}

impl EngineConfig {
    /// Defaults for `profile`: native keychain, OS data dir, strict transport, 5–60 s receipts.
    pub fn new(profile: ProfileName) -> Self {
        Self {
            profile,
            profiles: ProfilesConfig::default(),
            vault: None,
            connector: ConnectorConfig::default(),
            local_relay_url: None,
            delivery_receipt_delay: (Duration::from_secs(5), Duration::from_secs(60)),
            delivery_receipts: true,
            backoff: BackoffConfig::default(),
            store: StoreConfig::default(),
            clock: Clock::system(),
            blobs: None,
        }
    }
}

impl Engine {
    /// Opens a profile: keychain, store, subscriptions and the outbox task. Returns the engine
    /// and the receiver of its events (keep draining it).
    pub async fn open(
        config: EngineConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<EngineEvent>), EngineError> {
        let dirs = ProfileDirs::resolve(&config.profiles, &config.profile)
            .map_err(EngineError::ProfileDirectory)?;
        // The keychain (D-Bus) and SQLCipher's open run on the blocking pool.
        let (store, identity_seed, proxy) = {
            let (vault, profile, dirs, store_config) = (
                config.vault,
                config.profile.clone(),
                dirs.clone(),
                config.store,
            );
            tokio::task::spawn_blocking(move || -> Result<_, EngineError> {
                let vault = match vault {
                    Some(vault) => vault,
                    None => Vault::open(&profile)?,
                };
                let OpenedProfile {
                    store,
                    identity_seed,
                } = open_profile(&dirs, &vault, &store_config)?;
                // The stored proxy applies before any connection is opened.
                let proxy = parse_socks_proxy(read_settings(&store)?.socks_proxy.as_deref())?;
                Ok((store, identity_seed, proxy))
            })
            .await
            .map_err(EngineError::BlockingTask)??
        };
        let seed = IdentitySeed::from_bytes(Zeroizing::new(*identity_seed.expose_secret()));
        let identity = IdentityKeyPair::from_seed(&seed)?;
        let mut connector_config = config.connector;
        connector_config.proxy = proxy;
        let connector = Connector::new(connector_config).map_err(EngineError::TlsSetup)?;
        let (events, receiver) = mpsc::unbounded_channel();
        let blobs = config
            .blobs
            .unwrap_or_else(|| Arc::new(crate::blobs::RelayBlobs::new(connector.clone())));
        let inner = Arc::new(Inner {
            store: Mutex::new(store),
            identity,
            identity_seed,
            profile: config.profile,
            dirs,
            events,
            sender: Sender::new(connector.clone()),
            connector,
            subscribers: Mutex::new(HashMap::new()),
            connections: Mutex::new(BTreeMap::new()),
            outbox_wake: Notify::new(),
            secure_wake: Arc::new(Notify::new()),
            receipts: Mutex::new(HashMap::new()),
            fresh_restarts: Mutex::new(HashSet::new()),
            tasks: Mutex::new(Vec::new()),
            closing: AtomicBool::new(false),
            local_relay_url: config.local_relay_url,
            receipt_delay: config.delivery_receipt_delay,
            delivery_receipts: config.delivery_receipts,
            backoff: config.backoff,
            blobs,
            attachment_wake: Notify::new(),
            blocking_work: BlockingWork::default(),
            clock: config.clock,
            parked_group_work: Mutex::new(HashSet::new()),
        });
        let engine = Self { inner };
        engine.inner.blocking(|inner| inner.resume()).await?;
        Ok((engine, receiver))
    }

    /// Stops every task and closes every connection. Queued work stays in the store.
    ///
    /// When it returns, every engine task (inbound, outbox, receipts, deletions, connection
    /// state) has been aborted **and awaited**: none touches the store any more, and none holds
    /// the engine alive. The SQLCipher connection itself closes (and SQLite removes its `-shm`
    /// file) when the last clone of this `Engine` is dropped. Commands called after shutdown
    /// still reach the store but start no background work.
    pub async fn shutdown(self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        // A task being aborted may have spawned another just before: loop until none is left.
        loop {
            let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
            if tasks.is_empty() {
                break;
            }
            for task in &tasks {
                task.abort();
            }
            for task in tasks {
                // Cancelled (or already finished, or panicked): either way it has stopped.
                let _ = task.await;
            }
        }
        let subscribers: Vec<Subscriber> = lock(&self.inner.subscribers)
            .drain()
            .map(|(_, s)| s)
            .collect();
        for subscriber in subscribers {
            subscriber.shutdown().await;
        }
        self.inner.sender.close_all();
        // Store and crypto work an aborted task started on the blocking pool runs to its end.
        self.inner.blocking_work.idle().await;
    }

    /// The profile directory (for the data-at-rest scan and the webview data directory).
    pub fn profile_dirs(&self) -> &ProfileDirs {
        &self.inner.dirs
    }

    /// The clock message expiry is judged by (tests move it forward with [`Clock::advance`]).
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Our identity key (public).
    pub fn identity_key(&self) -> IdentityKey {
        *self.inner.identity.public()
    }

    /// Runs `f` on the store (tests and benchmarks inspect state with it).
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut lock(&self.inner.store))
    }
}

impl Inner {
    /// Deletes the dedupe rows older than [`SEEN_ENVELOPE_RETENTION`] by the engine's clock: the
    /// table would otherwise grow by one row per received envelope for the life of the profile.
    fn prune_seen_envelopes(&self) {
        let retention = i64::try_from(SEEN_ENVELOPE_RETENTION.as_millis()).unwrap_or(i64::MAX);
        let cutoff = UnixMillis(self.clock.now().0.saturating_sub(retention));
        match lock(&self.store).prune_seen_envelopes(cutoff) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "old envelope dedupe rows deleted"),
            Err(error) => tracing::warn!(%error, "old envelope dedupe rows not deleted"),
        }
    }

    /// On open: subscribe every own mailbox, start the outbox and the SECURE task, finish
    /// queued deletions, and seal messages stored but not sealed before a crash.
    pub(super) fn resume(self: &Arc<Self>) -> Result<(), EngineError> {
        // Before anything else reads the store: what expired while the app was closed goes now.
        self.sweep_expired(&mut lock(&self.store))?;
        self.remove_orphan_attachment_files(&lock(&self.store))?;
        // A restored profile restarts every session before anything else is sealed.
        self.restart_restored_sessions()?;
        let mailboxes = lock(&self.store).own_mailboxes()?;
        for mailbox in &mailboxes {
            self.subscribe_own(mailbox)?;
        }
        {
            let mut store = lock(&self.store);
            for message in store.messages_awaiting_seal()? {
                let content = Content {
                    v: CONTENT_VERSION,
                    seq: message.seq.get(),
                    sent_at_ms: u64::try_from(message.sent_at.0).unwrap_or(0),
                    body: super::disappearing::outgoing_body(&message),
                    receipts: Vec::new(),
                };
                if let Err(error) =
                    self.seal_and_commit(&mut store, message.contact, Some(message.id), &content)
                {
                    tracing::warn!(%error, "could not seal a stored message on start");
                }
            }
        }
        if self.signed_prekey_expired()? {
            match self.refresh_signed_prekey() {
                Ok(told) => tracing::info!(told, "signed prekey refreshed"),
                Err(error) => tracing::warn!(%error, "signed prekey not refreshed"),
            }
        }
        if let Err(error) = self.prune_prekey_secrets(UnixMillis::now()) {
            tracing::warn!(%error, "old prekey secrets not pruned");
        }
        self.prune_seen_envelopes();
        let outbox = tokio::spawn(outbox_loop(Arc::downgrade(self)));
        self.track(outbox);
        let secures = tokio::spawn(secure_loop(Arc::downgrade(self)));
        self.track(secures);
        let transfers = tokio::spawn(super::attachments::transfer_loop(Arc::downgrade(self)));
        self.track(transfers);
        self.clone().spawn_deletions();
        self.clone().spawn_search_backlog();
        let expiry = tokio::spawn(super::disappearing::expiry_loop(Arc::downgrade(self)));
        self.track(expiry);
        // Group work (introductions, missed texts) that a stop interrupted, then every
        // GROUP_WORK_SWEEP what could not finish for now (§ Groups).
        if let Err(error) = super::groups::resume_group_work(self) {
            tracing::warn!(%error, "group work not resumed");
        }
        let sweep = tokio::spawn(super::groups::group_work_loop(Arc::downgrade(self)));
        self.track(sweep);
        Ok(())
    }
}
