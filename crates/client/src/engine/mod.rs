//! The async engine: commands in, events out (`docs/engine.md`, `ui/CONTRACT.md`).
//!
//! [`Engine::open`] opens a profile (keychain vault + SQLCipher store), starts one
//! [`Subscriber`] per relay that holds our mailboxes and the outbox task, and returns the engine
//! with the receiver of [`EngineEvent`]s. Each UI command is one async method returning a serde
//! view type; every error is one [`EngineError`] whose [`EngineError::kind`] is the contract's
//! error kind.
//!
//! The store is one SQLCipher connection behind a mutex; store calls are short, synchronous and
//! made while holding it (never across an `.await`).

mod delivery;
mod restart;
pub mod sequence;
pub mod views;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use sealpost_crypto::{
    IdentityKey, IdentityKeyPair, IdentitySeed, MailboxSealingKey, OneTimePrekeyPair, PrekeyBundle,
    SafetyNumber, Session, SignedPrekey, SignedPrekeyPair,
};
use sealpost_relay_client::{
    BackoffConfig, ClientError, ConnectionState, Connector, ConnectorConfig, RelayUrl as WireUrl,
    SendSecret, Sender, Subscriber, SubscriberConfig,
};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::content::{Body, CONTENT_VERSION, Content, MAX_TEXT_BYTES, ReplyAddress, SenderKey};
use crate::invite::{Invite, InviteError, InviteRelay, qr_svg};
use crate::open::{OpenProfileError, OpenedProfile, open_profile};
use crate::profile::{ProfileDirs, ProfileName, ProfilesConfig};
use crate::store::{
    ContactId, ConversationSeq, Direction, IdentityKeyBytes, InviteId, InviteStatus,
    MailboxAuthSecretBytes, MailboxOwner, MessagePosition, NewContact, NewInvite, NewOwnMailbox,
    OneTimePrekeySecretBytes, PeerAddress, ReceiveId, RelayUrl, SealedEnvelopeBytes,
    SealedEnvelopeForRelay, SealedOutgoing, SealingPublicKeyBytes, SealingSecretBytes, SendId,
    SendSecretBytes, SenderAuthSecretBytes, SendingBlockedReason, SessionStateBytes,
    SignedPrekeySecretBytes, Store, StoreConfig, StoreError, UnixMillis,
};
use crate::vault::{Vault, VaultError};

pub use views::*;

/// How long our signed prekey is used before the engine makes a new one (on open).
pub const SIGNED_PREKEY_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a retired signed prekey is kept to answer late initial messages (an invite or a
/// restart sealed to it shortly before the refresh) before its secret is deleted (forward
/// secrecy, T7: `docs/crypto.md` § What is kept how long). Longer than [`INVITE_LIFETIME`], so
/// an invite made just before a refresh can still be accepted until it expires.
pub const RETIRED_SIGNED_PREKEY_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a new invite stays valid.
pub const INVITE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
const SETTINGS_KEY: &str = "engine.settings";
const INVITE_TEXT_KEY: &str = "engine.invite-text.";
/// Settings key prefix of a relay's password (value: the password; empty = none), per relay URL
/// as written in the settings. In the SQLCipher store like every other secret.
const RELAY_PASSWORD_KEY: &str = "engine.relay-password.";

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
    /// Delay range before a delivery receipt goes out alone (§3a.7: 5–60 s; tests set ~0).
    pub delivery_receipt_delay: (Duration, Duration),
    /// Send delivery receipts at all.
    pub delivery_receipts: bool,
    /// Outbox and subscriber retry backoff.
    pub backoff: BackoffConfig,
    /// Store options.
    pub store: StoreConfig,
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
        }
    }
}

/// Every way a command can fail. [`EngineError::kind`] is the contract's error kind.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A malformed argument.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Display name empty after trim or longer than 64 bytes.
    #[error("the display name must be 1 to 64 characters")]
    DisplayNameInvalid,
    /// A relay URL that is not `wss://…` (or `ws://` to loopback).
    #[error("invalid relay URL: {0}")]
    RelayUrlInvalid(String),
    /// A relay could not be reached when it had to be.
    #[error("relay unreachable: {0}")]
    RelayUnreachable(ClientError),
    /// The relay refused CREATE: it needs a password, or the stored one is wrong.
    #[error("the relay needs a password, or the stored one is wrong")]
    RelayPasswordRequired,
    /// The invite does not decode or its signature is bad.
    #[error("invite corrupt: {0}")]
    InviteCorrupt(#[from] InviteError),
    /// The invite expired.
    #[error("the invite has expired")]
    InviteExpired,
    /// The user's own invite.
    #[error("this is your own invite")]
    InviteOwn,
    /// The invite was already used.
    #[error("the invite was already used")]
    InviteUsed,
    /// The invite was revoked (or is unknown).
    #[error("the invite was revoked or is unknown")]
    InviteRevoked,
    /// The identity is already a contact.
    #[error("this person is already a contact")]
    ContactExists,
    /// Unknown contact id.
    #[error("no such contact")]
    ContactNotFound,
    /// The contact is blocked.
    #[error("the contact is blocked")]
    ContactBlocked,
    /// A key change awaits the user's decision (T8).
    #[error("the contact's key changed; accept the change before sending")]
    KeyChangePending,
    /// The text is too long.
    #[error("the message is longer than {MAX_TEXT_BYTES} bytes")]
    MessageTooLong,
    /// The OS keychain is missing or locked.
    #[error("keychain unavailable: {0}")]
    KeychainUnavailable(VaultError),
    /// The profile is onboarded but the keychain has no identity key for it (locked, reset or
    /// another keychain). Retryable; Sealpost never makes a new identity for it.
    #[error("identity key missing: {0}")]
    IdentityMissing(OpenProfileError),
    /// The profile's database exists but the keychain has no key for it. Retryable.
    #[error("database key missing: {0}")]
    DatabaseKeyMissing(OpenProfileError),
    /// SQLCipher or disk failure.
    #[error("storage: {0}")]
    Storage(StoreError),
    /// The profile is not onboarded yet.
    #[error("the profile is not set up yet")]
    NotOnboarded,
    /// The profile is already onboarded.
    #[error("the profile is already set up")]
    AlreadyOnboarded,
    /// Anything else.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// The contract's error kind (`ui/CONTRACT.md` § Errors).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid_input",
            Self::DisplayNameInvalid => "display_name_invalid",
            Self::RelayUrlInvalid(_) => "relay_url_invalid",
            Self::RelayUnreachable(_) => "relay_unreachable",
            Self::RelayPasswordRequired => "relay_password_required",
            Self::InviteCorrupt(_) => "invite_corrupt",
            Self::InviteExpired => "invite_expired",
            Self::InviteOwn => "invite_own",
            Self::InviteUsed => "invite_used",
            Self::InviteRevoked => "invite_revoked",
            Self::ContactExists => "contact_exists",
            Self::ContactNotFound => "contact_not_found",
            Self::ContactBlocked => "contact_blocked",
            Self::KeyChangePending => "key_change_pending",
            Self::MessageTooLong => "message_too_long",
            Self::KeychainUnavailable(_) => "keychain_unavailable",
            Self::IdentityMissing(_) => "identity_missing",
            Self::DatabaseKeyMissing(_) => "database_key_missing",
            Self::Storage(_) => "storage",
            Self::NotOnboarded => "not_onboarded",
            Self::AlreadyOnboarded => "already_onboarded",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<ClientError> for EngineError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::PasswordRequired => Self::RelayPasswordRequired,
            other => Self::RelayUnreachable(other),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::SendingBlocked {
                reason: SendingBlockedReason::ContactBlocked,
            } => Self::ContactBlocked,
            StoreError::SendingBlocked {
                reason: SendingBlockedReason::KeyChangePending,
            } => Self::KeyChangePending,
            StoreError::NotFound { what: "contact" } => Self::ContactNotFound,
            StoreError::InviteUnavailable { status } => match status {
                InviteStatus::Consumed => Self::InviteUsed,
                InviteStatus::Expired => Self::InviteExpired,
                InviteStatus::Revoked | InviteStatus::Open => Self::InviteRevoked,
            },
            other => Self::Storage(other),
        }
    }
}

impl From<VaultError> for EngineError {
    fn from(error: VaultError) -> Self {
        if error.is_keychain_unavailable() {
            Self::KeychainUnavailable(error)
        } else {
            Self::Internal(error.to_string())
        }
    }
}

impl From<OpenProfileError> for EngineError {
    fn from(error: OpenProfileError) -> Self {
        match error {
            OpenProfileError::Vault(vault) => vault.into(),
            OpenProfileError::Store(store) => Self::Storage(store),
            missing @ OpenProfileError::IdentitySeedMissing { .. } => {
                Self::IdentityMissing(missing)
            }
            missing @ OpenProfileError::DatabaseKeyMissing { .. } => {
                Self::DatabaseKeyMissing(missing)
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<sealpost_crypto::CryptoError> for EngineError {
    fn from(error: sealpost_crypto::CryptoError) -> Self {
        Self::Internal(format!("crypto: {error}"))
    }
}

impl From<sealpost_crypto::DecodeError> for EngineError {
    fn from(error: sealpost_crypto::DecodeError) -> Self {
        Self::Internal(format!("decode: {error}"))
    }
}

impl From<getrandom::Error> for EngineError {
    fn from(error: getrandom::Error) -> Self {
        Self::Internal(format!("random: {error}"))
    }
}

pub(crate) struct Inner {
    store: Mutex<Store>,
    identity: IdentityKeyPair,
    profile: ProfileName,
    dirs: ProfileDirs,
    events: mpsc::UnboundedSender<EngineEvent>,
    sender: Sender,
    connector: Connector,
    subscribers: Mutex<HashMap<String, Subscriber>>,
    connections: Mutex<BTreeMap<String, RelayConnection>>,
    outbox_wake: Notify,
    /// Wakes [`delivery::secure_loop`]: a SECURE was queued, or a relay came back online.
    secure_wake: Arc<Notify>,
    receipts: Mutex<HashMap<ContactId, Vec<u64>>>,
    /// Contacts whose session we just accepted as a restart and that have sent nothing on it
    /// since: a gap refused now is a straggler of the old session, not a reason to restart.
    fresh_restarts: Mutex<HashSet<ContactId>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Set by [`Engine::shutdown`]: no new task starts (each is aborted as it is spawned).
    closing: AtomicBool,
    local_relay_url: Option<String>,
    receipt_delay: (Duration, Duration),
    delivery_receipts: bool,
    backoff: BackoffConfig,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn random32() -> Result<[u8; 32], EngineError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

pub(crate) fn array32(bytes: &[u8]) -> Result<[u8; 32], EngineError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| EngineError::Internal("expected 32 bytes".into()))
}

fn now_secs() -> u64 {
    u64::try_from(UnixMillis::now().0 / 1000).unwrap_or(0)
}

fn check_display_name(name: &str) -> Result<String, EngineError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 64 || trimmed.len() > 64 * 4 {
        return Err(EngineError::DisplayNameInvalid);
    }
    // The invite carries at most 64 bytes of name: cut on a char boundary.
    Ok(trimmed.to_owned())
}

fn invite_name(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars() {
        if out.len() + ch.len_utf8() > crate::invite::MAX_INVITE_NAME {
            break;
        }
        out.push(ch);
    }
    out
}

fn parse_contact(id: &str) -> Result<ContactId, EngineError> {
    id.parse().map_err(|_| EngineError::ContactNotFound)
}

/// The engine: one per open profile. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Opens a profile: keychain, store, subscriptions and the outbox task. Returns the engine
    /// and the receiver of its events (keep draining it).
    pub async fn open(
        config: EngineConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<EngineEvent>), EngineError> {
        let dirs = ProfileDirs::resolve(&config.profiles, &config.profile)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let vault = match config.vault {
            Some(vault) => vault,
            None => Vault::open(&config.profile)?,
        };
        let OpenedProfile {
            store,
            identity_seed,
        } = open_profile(&dirs, &vault, &config.store)?;
        let seed = IdentitySeed::from_bytes(Zeroizing::new(*identity_seed.expose_secret()));
        let identity = IdentityKeyPair::from_seed(&seed)?;
        let mut connector_config = config.connector;
        // The stored proxy applies before any connection is opened.
        connector_config.proxy = parse_socks_proxy(read_settings(&store)?.socks_proxy.as_deref())?;
        let connector = Connector::new(connector_config)
            .map_err(|e| EngineError::Internal(format!("TLS setup: {e}")))?;
        let (events, receiver) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            store: Mutex::new(store),
            identity,
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
        });
        let engine = Self { inner };
        engine.inner.resume()?;
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
    }

    /// The profile directory (for the data-at-rest scan and the webview data directory).
    pub fn profile_dirs(&self) -> &ProfileDirs {
        &self.inner.dirs
    }

    /// Our identity key (public).
    pub fn identity_key(&self) -> IdentityKey {
        *self.inner.identity.public()
    }

    /// Whether `onboard` has run.
    pub fn is_onboarded(&self) -> Result<bool, EngineError> {
        Ok(lock(&self.inner.store).profile()?.is_some())
    }

    /// `onboard`: sets the display name and the first relay, and makes the signed prekey.
    pub async fn onboard(
        &self,
        display_name: &str,
        relay: RelayChoice,
    ) -> Result<ProfileView, EngineError> {
        let name = check_display_name(display_name)?;
        let url = match relay {
            RelayChoice::Local => self.inner.local_relay_url.clone().ok_or_else(|| {
                EngineError::RelayUrlInvalid("no local relay is configured".into())
            })?,
            RelayChoice::Remote { url, password } => {
                if let Some(password) = password {
                    self.inner.check_relay_url(&url)?;
                    store_relay_password(&mut lock(&self.inner.store), &url, Some(&password))?;
                }
                url
            }
        };
        self.inner.check_relay_url(&url)?;
        let signed = SignedPrekeyPair::generate(&self.inner.identity)?;
        let now = UnixMillis::now();
        {
            let mut store = lock(&self.inner.store);
            if store.profile()?.is_some() {
                return Err(EngineError::AlreadyOnboarded);
            }
            store.insert_signed_prekey(
                signed.id().0,
                &SignedPrekeySecretBytes::new(signed.to_secret_bytes().to_vec()),
                now,
            )?;
            let settings = Settings {
                relays: vec![url],
                ..Settings::default()
            };
            write_settings(&mut store, &settings)?;
            store.init_profile(&name, now)?;
        }
        self.get_profile().await
    }

    /// `get_profile`.
    pub async fn get_profile(&self) -> Result<ProfileView, EngineError> {
        let store = lock(&self.inner.store);
        let record = store.profile()?.ok_or(EngineError::NotOnboarded)?;
        Ok(ProfileView {
            display_name: record.display_name,
            profile: self.inner.profile.to_string(),
            relays: read_settings(&store)?.relays,
        })
    }

    /// `set_display_name`.
    pub async fn set_display_name(&self, display_name: &str) -> Result<ProfileView, EngineError> {
        let name = check_display_name(display_name)?;
        lock(&self.inner.store).set_profile_display_name(&name)?;
        self.get_profile().await
    }

    /// `get_settings`.
    pub async fn get_settings(&self) -> Result<Settings, EngineError> {
        read_settings(&lock(&self.inner.store))
    }

    /// `set_relay_password`: stores `url`'s password in the encrypted store (or removes it with
    /// `None`), for CREATE on that relay. Write-only: nothing returns it; the settings say only
    /// which relays have one.
    pub async fn set_relay_password(
        &self,
        url: &str,
        password: Option<RelayPassword>,
    ) -> Result<Settings, EngineError> {
        self.inner.check_relay_url(url)?;
        let password = password.filter(|p| !p.expose_secret().is_empty());
        let mut store = lock(&self.inner.store);
        store_relay_password(&mut store, url, password.as_ref())?;
        read_settings(&store)
    }

    /// `update_settings`: stores the whole object and returns it as stored.
    pub async fn update_settings(&self, settings: Settings) -> Result<Settings, EngineError> {
        if settings.relays.is_empty() || settings.relays.len() > crate::invite::MAX_INVITE_RELAYS {
            return Err(EngineError::InvalidInput("1 to 4 relays".into()));
        }
        for url in &settings.relays {
            self.inner.check_relay_url(url)?;
        }
        let mut store = lock(&self.inner.store);
        let settings = Settings {
            socks_proxy: read_settings(&store)?.socks_proxy,
            ..settings
        };
        write_settings(&mut store, &settings)?;
        read_settings(&store)
    }

    /// `set_socks_proxy`: routes every relay connection through the SOCKS5 proxy at `address`
    /// (`IP:port`), or directly with `None`. Stored, applied at once: the send pool is closed
    /// and every subscription reconnects through the new route. Works before onboarding.
    pub async fn set_socks_proxy(&self, address: Option<&str>) -> Result<Settings, EngineError> {
        let address = address.map(str::trim).filter(|a| !a.is_empty());
        let proxy = parse_socks_proxy(address)?;
        let settings = {
            let mut store = lock(&self.inner.store);
            let settings = Settings {
                socks_proxy: proxy.map(|p| p.address.to_string()),
                ..read_settings(&store)?
            };
            write_settings(&mut store, &settings)?;
            read_settings(&store)?
        };
        self.inner.connector.set_proxy(proxy);
        self.inner.sender.close_all();
        self.inner.resubscribe_all().await?;
        Ok(settings)
    }

    /// The current relay connections.
    pub fn connections(&self) -> Vec<RelayConnection> {
        lock(&self.inner.connections).values().cloned().collect()
    }

    /// `list_chats`: newest activity first.
    pub async fn list_chats(&self) -> Result<Vec<ChatView>, EngineError> {
        let chats = lock(&self.inner.store).chat_list()?;
        Ok(chats.iter().map(ChatView::from).collect())
    }

    /// `get_messages`: at most `limit` messages with `seq < before_seq` (newest when `None`).
    pub async fn get_messages(
        &self,
        contact_id: &str,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<MessagePage, EngineError> {
        let contact = parse_contact(contact_id)?;
        let before = match before_seq {
            None => None,
            Some(seq) => Some(MessagePosition {
                seq: ConversationSeq::new(seq)
                    .ok_or_else(|| EngineError::InvalidInput("beforeSeq".into()))?,
                direction: Direction::Incoming,
            }),
        };
        let limit = limit.clamp(1, 500);
        let store = lock(&self.inner.store);
        store
            .contact(contact)?
            .ok_or(EngineError::ContactNotFound)?;
        let mut page = store.messages_page(contact, before, limit.saturating_add(1))?;
        let has_more = page.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        if has_more {
            page.remove(0);
        }
        Ok(MessagePage {
            messages: page.iter().map(MessageView::from).collect(),
            has_more,
        })
    }

    /// `send_message`: stores, seals once and queues the message; returns it `queued`.
    pub async fn send_message(
        &self,
        contact_id: &str,
        text: &str,
    ) -> Result<MessageView, EngineError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(EngineError::MessageTooLong);
        }
        if text.trim().is_empty() {
            return Err(EngineError::InvalidInput("empty message".into()));
        }
        let contact = parse_contact(contact_id)?;
        let now = UnixMillis::now();
        // Store, seal once and queue in ONE transaction (§3a.1; one fsync before the SEND).
        // Pending delivery receipts for this contact ride inside this message (§3a.7): they are
        // taken out of the queue, under the store lock, before sealing, so the receipt timer
        // finds nothing to send alone; if the transaction fails they are queued again.
        let mut riding: Vec<u64> = Vec::new();
        let result = {
            let mut store = lock(&self.inner.store);
            store.insert_and_seal_outgoing(contact, text, now, |store, message| {
                riding = lock(&self.inner.receipts)
                    .remove(&contact)
                    .unwrap_or_default();
                let content = Content {
                    v: CONTENT_VERSION,
                    seq: message.seq.get(),
                    sent_at_ms: u64::try_from(now.0).unwrap_or(0),
                    body: Body::Text {
                        text: text.to_owned(),
                    },
                    receipts: riding
                        .iter()
                        .map(|seq| crate::content::Receipt {
                            kind: crate::content::ReceiptKindWire::Delivered,
                            seq: *seq,
                        })
                        .collect(),
                };
                self.inner
                    .seal_for(store, contact, Some(message.id), &content)
            })
        };
        let (message, _) = match result {
            Ok(done) => done,
            Err(error) => {
                for seq in riding {
                    self.inner.queue_delivery_receipt(contact, seq);
                }
                return Err(error);
            }
        };
        self.inner.outbox_wake.notify_one();
        Ok(MessageView::from(&message))
    }

    /// `mark_read`: marks incoming messages up to `up_to_seq` read and, if the setting is on,
    /// queues a read receipt.
    pub async fn mark_read(&self, contact_id: &str, up_to_seq: u64) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        let seq = ConversationSeq::new(up_to_seq)
            .ok_or_else(|| EngineError::InvalidInput("upToSeq".into()))?;
        let mut store = lock(&self.inner.store);
        let read = store.mark_read(
            contact,
            MessagePosition {
                seq,
                direction: Direction::Outgoing,
            },
        )?;
        if !read.is_empty() && read_settings(&store)?.read_receipts {
            let receipts = read
                .iter()
                .map(|seq| crate::content::Receipt {
                    kind: crate::content::ReceiptKindWire::Read,
                    seq: seq.get(),
                })
                .collect();
            let contact_row = store
                .contact(contact)?
                .ok_or(EngineError::ContactNotFound)?;
            if contact_row.sending_blocked_reason().is_none() {
                self.inner
                    .seal_and_commit(&mut store, contact, None, &receipts_only(receipts))?;
                drop(store);
                self.inner.outbox_wake.notify_one();
            }
        }
        Ok(())
    }

    /// `create_invite`: fresh mailboxes on each of our relays, a one-time prekey, signed.
    pub async fn create_invite(&self) -> Result<InviteView, EngineError> {
        let (display_name, settings, signed) = {
            let store = lock(&self.inner.store);
            let record = store.profile()?.ok_or(EngineError::NotOnboarded)?;
            (
                record.display_name,
                read_settings(&store)?,
                self.inner.current_signed_prekey(&store)?,
            )
        };
        let one_time = OneTimePrekeyPair::generate()?;
        let now = UnixMillis::now();
        let lifetime_ms = i64::try_from(INVITE_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        let expires_at = UnixMillis(now.0.saturating_add(lifetime_ms));
        let mut created = Vec::new();
        for url in &settings.relays {
            created.push(self.inner.create_mailbox(url).await?);
        }
        let record = lock(&self.inner.store).insert_invite(NewInvite {
            one_time_prekey_secret: OneTimePrekeySecretBytes::new(
                one_time.to_secret_bytes().to_vec(),
            ),
            created_at: now,
            expires_at,
        })?;
        let mut relays = Vec::new();
        for mailbox in &created {
            relays.push(InviteRelay {
                url: mailbox.url.clone(),
                send_id: mailbox.send_id,
                send_secret: *mailbox.send_secret.expose(),
                sealing_public_key: mailbox.sealing.public().to_bytes(),
            });
        }
        let mut invite_id = [0u8; 16];
        invite_id.copy_from_slice(
            hex_bytes(&record.id.to_string())
                .get(..16)
                .ok_or_else(|| EngineError::Internal("invite id".into()))?,
        );
        let invite = Invite {
            invite_id,
            identity: *self.inner.identity.public(),
            signed_prekey: signed,
            one_time_prekey: *one_time.public(),
            expires_at_secs: u64::try_from(expires_at.0 / 1000).unwrap_or(0),
            display_name: invite_name(&display_name),
            relays,
        };
        let text = invite.sign_to_text(&self.inner.identity)?;
        {
            let mut store = lock(&self.inner.store);
            for mailbox in created {
                self.inner.store_own_mailbox(
                    &mut store,
                    MailboxOwner::Invite(record.id),
                    mailbox,
                    now,
                )?;
            }
            store.set_setting(&format!("{INVITE_TEXT_KEY}{}", record.id), &text)?;
        }
        Ok(InviteView {
            id: record.id.to_string(),
            qr_svg: qr_svg(text.as_bytes())?,
            text,
            created_at: now.0,
            expires_at: expires_at.0,
        })
    }

    /// `list_invites`: open ones, newest first.
    pub async fn list_invites(&self) -> Result<Vec<InviteView>, EngineError> {
        let store = lock(&self.inner.store);
        let mut out = Vec::new();
        for record in store.open_invites(UnixMillis::now())? {
            let Some(text) = store.setting(&format!("{INVITE_TEXT_KEY}{}", record.id))? else {
                continue;
            };
            out.push(InviteView {
                id: record.id.to_string(),
                qr_svg: qr_svg(text.as_bytes())?,
                text,
                created_at: record.created_at.0,
                expires_at: record.expires_at.0,
            });
        }
        Ok(out)
    }

    /// `revoke_invite`: closes it and DELETEs its mailboxes on their relays.
    pub async fn revoke_invite(&self, id: &str) -> Result<(), EngineError> {
        let id: InviteId = id.parse().map_err(|_| EngineError::InviteRevoked)?;
        let deletions = {
            let mut store = lock(&self.inner.store);
            let deletions = store
                .revoke_invite(id, UnixMillis::now())
                .map_err(|e| match e {
                    StoreError::NotFound { .. } | StoreError::InviteUnavailable { .. } => {
                        EngineError::InviteRevoked
                    }
                    other => other.into(),
                })?;
            let _ = store.set_setting(&format!("{INVITE_TEXT_KEY}{id}"), "");
            deletions
        };
        self.inner.unsubscribe(&deletions);
        self.inner.clone().spawn_deletions();
        Ok(())
    }

    /// `preview_invite`: checks an invite without accepting it.
    pub async fn preview_invite(&self, text: &str) -> Result<InvitePreview, EngineError> {
        let invite = self.inner.check_invite(text)?;
        let safety = SafetyNumber::new(self.inner.identity.public(), &invite.identity);
        let digits = safety.digits();
        let preview = [0..5, 5..10, 10..15]
            .into_iter()
            .filter_map(|range| digits.get(range))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(InvitePreview {
            display_name: invite.display_name.clone(),
            safety_preview: preview,
            relays: invite.relays.iter().map(|r| r.url.clone()).collect(),
            expires_at: i64::try_from(invite.expires_at_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        })
    }

    /// `accept_invite`: makes the contact, our reply mailboxes and the X3DH `Hello`.
    pub async fn accept_invite(
        &self,
        text: &str,
        display_name: &str,
    ) -> Result<ChatView, EngineError> {
        let invite = self.inner.check_invite(text)?;
        let contact_name = if display_name.trim().is_empty() {
            if invite.display_name.trim().is_empty() {
                "Contact".to_owned()
            } else {
                invite.display_name.clone()
            }
        } else {
            check_display_name(display_name)?
        };
        let (our_name, settings, our_signed) = {
            let store = lock(&self.inner.store);
            let record = store.profile()?.ok_or(EngineError::NotOnboarded)?;
            (
                record.display_name,
                read_settings(&store)?,
                self.inner.current_signed_prekey(&store)?,
            )
        };
        let mut created = Vec::new();
        for url in &settings.relays {
            created.push(self.inner.create_mailbox(url).await?);
        }
        let bundle = PrekeyBundle::new(
            invite.identity,
            invite.signed_prekey,
            Some(invite.one_time_prekey),
        )?;
        let session = Session::initiate(&self.inner.identity, &bundle)?;
        let now = UnixMillis::now();
        // The contact, its session and addresses, our reply mailboxes and the sealed Hello: ONE
        // transaction, so a failure leaves no half-made contact.
        let contact_id =
            lock(&self.inner.store).transaction(|store| -> Result<_, EngineError> {
                let identity_bytes = IdentityKeyBytes::new(invite.identity.to_bytes().to_vec());
                if store.contact_by_identity_key(&identity_bytes)?.is_some() {
                    return Err(EngineError::ContactExists);
                }
                let contact = store.insert_contact(&NewContact {
                    display_name: contact_name,
                    identity_key: identity_bytes,
                    created_at: now,
                })?;
                store.set_peer_signed_prekey(
                    contact.id,
                    &crate::store::SignedPrekeyBytes::new(invite.signed_prekey.to_bytes().to_vec()),
                )?;
                let state = session.to_bytes()?;
                store.save_session_state(
                    contact.id,
                    &SessionStateBytes::new(state.to_vec()),
                    now,
                )?;
                let mut sender_keys = Vec::new();
                for relay in &invite.relays {
                    let parts = PeerAddressParts {
                        url: &relay.url,
                        send_id: &relay.send_id,
                        send_secret: &relay.send_secret,
                        sealing_public_key: &relay.sealing_public_key,
                    };
                    sender_keys.push(store_peer_address_with_new_sender_key(
                        store, contact.id, &parts, now,
                    )?);
                }
                let reply = created
                    .iter()
                    .map(|mailbox| ReplyAddress {
                        url: mailbox.url.clone(),
                        send_id: mailbox.send_id.to_vec(),
                        send_secret: mailbox.send_secret.expose().to_vec(),
                        sealing_public_key: mailbox.sealing.public().to_bytes().to_vec(),
                    })
                    .collect();
                for mailbox in created {
                    self.inner.store_own_mailbox(
                        store,
                        MailboxOwner::Contact(contact.id),
                        mailbox,
                        now,
                    )?;
                }
                let hello = Content {
                    v: CONTENT_VERSION,
                    seq: 0,
                    sent_at_ms: u64::try_from(now.0).unwrap_or(0),
                    body: Body::Hello {
                        display_name: invite_name(&our_name),
                        reply,
                        sender_keys,
                        signed_prekey: our_signed.to_bytes().to_vec(),
                    },
                    receipts: Vec::new(),
                };
                self.inner
                    .seal_and_commit(store, contact.id, None, &hello)?;
                Ok(contact.id)
            })?;
        self.inner.outbox_wake.notify_one();
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact_id.to_string(),
        });
        self.chat(contact_id)
    }

    fn chat(&self, contact: ContactId) -> Result<ChatView, EngineError> {
        let chats = lock(&self.inner.store).chat_list()?;
        chats
            .iter()
            .find(|chat| chat.contact.id == contact)
            .map(ChatView::from)
            .ok_or(EngineError::ContactNotFound)
    }

    /// `get_safety_number`: 60 digits and a QR code. While a key change is pending (T8) they
    /// are the NEW key's — the key `accept_key_change` would install — with the current key's
    /// digits as `previous_digits`, so comparing numbers checks the key that was offered.
    pub async fn get_safety_number(
        &self,
        contact_id: &str,
    ) -> Result<SafetyNumberView, EngineError> {
        let contact = parse_contact(contact_id)?;
        let row = lock(&self.inner.store)
            .contact(contact)?
            .ok_or(EngineError::ContactNotFound)?;
        let ours = self.inner.identity.public();
        let current = SafetyNumber::new(ours, &identity_from_bytes(row.identity_key.as_bytes())?);
        let (shown, previous_digits) = match &row.pending_identity_key {
            Some(pending) => {
                let offered = SafetyNumber::new(ours, &identity_from_bytes(pending.as_bytes())?);
                (offered, Some(current.digits().to_owned()))
            }
            None => (current, None),
        };
        Ok(SafetyNumberView {
            digits: shown.digits().to_owned(),
            qr_svg: qr_svg(&shown.qr_payload())?,
            is_pending_key: previous_digits.is_some(),
            previous_digits,
        })
    }

    /// `set_verified`.
    pub async fn set_verified(&self, contact_id: &str, verified: bool) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        lock(&self.inner.store).set_contact_verified(contact, verified)?;
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }

    /// `accept_key_change` (T8): the held identity key becomes the contact's, with the session
    /// its initial message started, in one store transaction; sending resumes.
    pub async fn accept_key_change(&self, contact_id: &str) -> Result<(), EngineError> {
        self.decide_key_change(contact_id, |store, contact| {
            store.accept_key_change(contact, UnixMillis::now())
        })
    }

    /// `reject_key_change` (T8): the contact keeps its old identity key and session; the held
    /// session and the messages that came with it are dropped (one store write); sending
    /// resumes. The contact stays unverified (the change cleared it).
    pub async fn reject_key_change(&self, contact_id: &str) -> Result<(), EngineError> {
        self.decide_key_change(contact_id, |store, contact| {
            store.reject_key_change(contact)
        })
    }

    /// The user's decision on a held key change (accept or reject, each one store write): refused
    /// unless a change is pending; afterwards sending resumes and the contact is re-read.
    fn decide_key_change(
        &self,
        contact_id: &str,
        decide: impl FnOnce(&mut Store, ContactId) -> Result<(), StoreError>,
    ) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        {
            let mut store = lock(&self.inner.store);
            pending_key_change(&store, contact)?;
            decide(&mut store, contact)?;
        }
        self.inner.outbox_wake.notify_one();
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }

    /// `block_contact`.
    pub async fn block_contact(&self, contact_id: &str, blocked: bool) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        lock(&self.inner.store).set_contact_blocked(contact, blocked)?;
        if !blocked {
            self.inner.outbox_wake.notify_one();
        }
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }

    /// `delete_contact`: deletes it locally and DELETEs its mailboxes on every relay (§3a.13).
    pub async fn delete_contact(&self, contact_id: &str) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        let deletions = lock(&self.inner.store).delete_contact(contact, UnixMillis::now())?;
        self.inner.unsubscribe(&deletions);
        self.inner.clone().spawn_deletions();
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }

    /// `rename_contact`.
    pub async fn rename_contact(
        &self,
        contact_id: &str,
        display_name: &str,
    ) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        let name = check_display_name(display_name)?;
        lock(&self.inner.store).rename_contact(contact, &name)?;
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }

    /// `repair_session`: the user's own way out of a session that no longer opens (messages
    /// refused as out of sync, or a restart that went missing). Starts a new session with X3DH
    /// to the contact's latest signed prekey and seals a `Restart` to it, exactly as an
    /// authentic gap beyond MAX_SKIP does (`docs/engine.md` § Session restart). Messages the
    /// contact sealed on the old session and we have not opened yet are lost.
    pub async fn repair_session(&self, contact_id: &str) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        restart::restart_session(&self.inner, contact, restart::RestartCause::UserRepair)?;
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }

    /// Makes a new signed prekey, retires the current one (kept to answer late initial messages
    /// that name it) and tells every contact it can send to, inside a ratchet message
    /// (`PrekeyUpdate`, §3a.6), so a session broken beyond MAX_SKIP can restart X3DH with the
    /// latest one. Everything is one store transaction. Returns how many contacts were told.
    /// The engine calls it on open when the current prekey is older than
    /// [`SIGNED_PREKEY_LIFETIME`].
    pub async fn refresh_signed_prekey(&self) -> Result<usize, EngineError> {
        let told = self.inner.refresh_signed_prekey()?;
        self.inner.prune_prekey_secrets(UnixMillis::now())?;
        self.inner.outbox_wake.notify_one();
        Ok(told)
    }

    /// Runs `f` on the store (tests and benchmarks inspect state with it).
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut lock(&self.inner.store))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

/// A mailbox just CREATEd on a relay, before it is stored.
pub(crate) struct CreatedMailbox {
    url: String,
    receive_id: [u8; 32],
    send_id: [u8; 32],
    send_secret: SendSecret,
    auth: SigningKey,
    sealing: MailboxSealingKey,
}

fn receipts_only(receipts: Vec<crate::content::Receipt>) -> Content {
    Content {
        v: CONTENT_VERSION,
        seq: 0,
        sent_at_ms: u64::try_from(UnixMillis::now().0).unwrap_or(0),
        body: Body::ReceiptsOnly,
        receipts,
    }
}

/// A peer's address (where we send to a contact) as received in an invite or a Hello.
pub(crate) struct PeerAddressParts<'a> {
    pub(crate) url: &'a str,
    pub(crate) send_id: &'a [u8],
    pub(crate) send_secret: &'a [u8],
    pub(crate) sealing_public_key: &'a [u8],
}

/// Stores a peer's address for `contact` with a fresh sender auth key of ours (the key SECURE
/// binds the mailbox to), and returns its public half to announce in Hello/Welcome.
pub(crate) fn store_peer_address_with_new_sender_key(
    store: &mut Store,
    contact: ContactId,
    address: &PeerAddressParts<'_>,
    now: UnixMillis,
) -> Result<SenderKey, EngineError> {
    let key = SigningKey::from_bytes(&random32()?);
    store.upsert_peer_address(&PeerAddress {
        contact,
        relay_url: store_url(address.url)?,
        send_id: SendId(array32(address.send_id)?),
        send_secret: SendSecretBytes::new(address.send_secret.to_vec()),
        sealing_public_key: SealingPublicKeyBytes::new(address.sealing_public_key.to_vec()),
        sender_auth_secret_key: SenderAuthSecretBytes::new(key.to_bytes().to_vec()),
        created_at: now,
    })?;
    Ok(SenderKey {
        url: address.url.to_owned(),
        send_id: address.send_id.to_vec(),
        public_key: key.verifying_key().to_bytes().to_vec(),
    })
}

/// [`EngineError::InvalidInput`] unless a key change awaits the user's decision for `contact`.
fn pending_key_change(store: &Store, contact: ContactId) -> Result<(), EngineError> {
    let row = store
        .contact(contact)?
        .ok_or(EngineError::ContactNotFound)?;
    if row.pending_identity_key.is_none() {
        return Err(EngineError::InvalidInput(
            "no key change is pending for this contact".into(),
        ));
    }
    Ok(())
}

pub(crate) fn store_url(url: &str) -> Result<RelayUrl, EngineError> {
    RelayUrl::parse(url).map_err(|e| EngineError::RelayUrlInvalid(e.to_string()))
}

pub(crate) fn identity_from_bytes(bytes: &[u8]) -> Result<IdentityKey, EngineError> {
    let array = <[u8; 64]>::try_from(bytes)
        .map_err(|_| EngineError::Internal("identity key length".into()))?;
    Ok(IdentityKey::from_bytes(&array)?)
}

pub(crate) fn hex_bytes(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_default()
}

/// The settings as stored, with [`Settings::relays_with_password`] filled in from the store.
fn read_settings(store: &Store) -> Result<Settings, EngineError> {
    let mut settings: Settings = match store.setting(SETTINGS_KEY)? {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| EngineError::Internal(format!("settings: {e}")))?,
        None => Settings::default(),
    };
    let mut with_password = Vec::new();
    for url in &settings.relays {
        if relay_password(store, url)?.is_some() {
            with_password.push(url.clone());
        }
    }
    settings.relays_with_password = with_password;
    Ok(settings)
}

fn write_settings(store: &mut Store, settings: &Settings) -> Result<(), EngineError> {
    let settings = Settings {
        relays_with_password: Vec::new(),
        ..settings.clone()
    };
    let json = serde_json::to_string(&settings)
        .map_err(|e| EngineError::Internal(format!("settings: {e}")))?;
    store.set_setting(SETTINGS_KEY, &json)?;
    Ok(())
}

/// Parses the SOCKS5 proxy setting: an IP literal and port (the proxy's own address is never
/// looked up in DNS).
fn parse_socks_proxy(
    address: Option<&str>,
) -> Result<Option<sealpost_relay_client::SocksProxy>, EngineError> {
    address
        .map(|text| {
            text.parse::<std::net::SocketAddr>()
                .map(|address| sealpost_relay_client::SocksProxy { address })
                .map_err(|_| {
                    EngineError::InvalidInput(
                        "the SOCKS5 proxy must be an IP address and port, e.g. 127.0.0.1:9050"
                            .into(),
                    )
                })
        })
        .transpose()
}

/// The stored password of the relay at `url`, if any.
fn relay_password(store: &Store, url: &str) -> Result<Option<RelayPassword>, EngineError> {
    Ok(store
        .setting(&format!("{RELAY_PASSWORD_KEY}{url}"))?
        .filter(|password| !password.is_empty())
        .map(RelayPassword::new))
}

/// Stores (or with `None` clears) the password of the relay at `url`.
fn store_relay_password(
    store: &mut Store,
    url: &str,
    password: Option<&RelayPassword>,
) -> Result<(), EngineError> {
    let value = password
        .map(RelayPassword::expose_secret)
        .unwrap_or_default();
    store.set_setting(&format!("{RELAY_PASSWORD_KEY}{url}"), value)?;
    Ok(())
}

impl Inner {
    pub(crate) fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event);
    }

    fn check_relay_url(&self, url: &str) -> Result<WireUrl, EngineError> {
        let parsed =
            WireUrl::parse(url).map_err(|e| EngineError::RelayUrlInvalid(e.to_string()))?;
        self.connector
            .check(&parsed)
            .map_err(|e| EngineError::RelayUrlInvalid(e.to_string()))?;
        store_url(url)?;
        Ok(parsed)
    }

    fn current_signed_prekey(&self, store: &Store) -> Result<SignedPrekey, EngineError> {
        let (_, secret) = store
            .current_signed_prekey()?
            .ok_or(EngineError::NotOnboarded)?;
        let pair = SignedPrekeyPair::from_secret_bytes(secret.expose_secret())?;
        Ok(*pair.public())
    }

    fn check_invite(&self, text: &str) -> Result<Invite, EngineError> {
        let invite = Invite::parse(text)?;
        if invite.identity == *self.identity.public() {
            return Err(EngineError::InviteOwn);
        }
        if invite.expires_at_secs <= now_secs() {
            return Err(EngineError::InviteExpired);
        }
        let store = lock(&self.store);
        let identity_bytes = IdentityKeyBytes::new(invite.identity.to_bytes().to_vec());
        if store.contact_by_identity_key(&identity_bytes)?.is_some() {
            return Err(EngineError::InviteUsed);
        }
        Ok(invite)
    }

    async fn create_mailbox(&self, url: &str) -> Result<CreatedMailbox, EngineError> {
        let wire_url = self.check_relay_url(url)?;
        let auth = SigningKey::from_bytes(&random32()?);
        let send_secret = SendSecret::new(random32()?);
        let sealing = MailboxSealingKey::generate()?;
        let password = relay_password(&lock(&self.store), url)?;
        // A fresh owner connection per CREATE (`docs/threat-model.md` § connection roles).
        let connection = self.connector.connect_owner(&wire_url).await?;
        let (receive_id, send_id) = connection
            .create(
                &auth,
                &send_secret,
                password.as_ref().map(RelayPassword::expose_secret),
            )
            .await?;
        connection.close();
        Ok(CreatedMailbox {
            url: url.to_owned(),
            receive_id: receive_id.0,
            send_id: send_id.0,
            send_secret,
            auth,
            sealing,
        })
    }

    fn store_own_mailbox(
        self: &Arc<Self>,
        store: &mut Store,
        owner: MailboxOwner,
        mailbox: CreatedMailbox,
        now: UnixMillis,
    ) -> Result<(), EngineError> {
        store.insert_own_mailbox(NewOwnMailbox {
            owner,
            relay_url: store_url(&mailbox.url)?,
            receive_id: ReceiveId(mailbox.receive_id),
            send_id: SendId(mailbox.send_id),
            auth_secret_key: MailboxAuthSecretBytes::new(mailbox.auth.to_bytes().to_vec()),
            sealing_secret_key: SealingSecretBytes::new(mailbox.sealing.to_secret_bytes().to_vec()),
            created_at: now,
        })?;
        self.subscribe(&mailbox.url, mailbox.receive_id, mailbox.auth)
    }

    /// Seals `content` for `contact` once per relay address and commits the envelopes and the
    /// advanced session in one transaction (§3a.1).
    pub(crate) fn seal_and_commit(
        &self,
        store: &mut Store,
        contact: ContactId,
        message: Option<crate::store::MessageId>,
        content: &Content,
    ) -> Result<(), EngineError> {
        let sealed = self.seal_for(store, contact, message, content)?;
        store.commit_sealed(&sealed)?;
        Ok(())
    }

    pub(crate) fn seal_for(
        &self,
        store: &Store,
        contact: ContactId,
        message: Option<crate::store::MessageId>,
        content: &Content,
    ) -> Result<SealedOutgoing, EngineError> {
        let state = store
            .session_state(contact)?
            .ok_or_else(|| EngineError::Internal("no session with this contact".into()))?;
        let mut session = Session::from_bytes(state.expose_secret())?;
        let plaintext = Zeroizing::new(
            content
                .to_bytes()
                .map_err(|e| EngineError::Internal(e.to_string()))?,
        );
        let addresses = store.peer_addresses(contact)?;
        if addresses.is_empty() {
            return Err(EngineError::Internal("the contact has no address".into()));
        }
        let mut envelopes = Vec::with_capacity(addresses.len());
        for address in &addresses {
            let recipient = sealpost_crypto::MailboxSealingPublicKey::from_bytes(array32(
                address.sealing_public_key.as_bytes(),
            )?);
            let send_id = sealpost_crypto::SendId(array32(address.send_id.as_bytes())?);
            let sealed = session.seal(&recipient, &send_id, &plaintext)?;
            envelopes.push(SealedEnvelopeForRelay {
                relay_url: address.relay_url.clone(),
                send_id: address.send_id,
                sealed: SealedEnvelopeBytes::new(sealed.into_bytes()),
            });
        }
        Ok(SealedOutgoing {
            contact,
            message,
            session_state: SessionStateBytes::new(session.to_bytes()?.to_vec()),
            envelopes,
            now: UnixMillis::now(),
        })
    }

    /// Adds a mailbox to its relay's subscriber (starting the subscriber if needed).
    fn subscribe(
        self: &Arc<Self>,
        url: &str,
        receive_id: [u8; 32],
        auth: SigningKey,
    ) -> Result<(), EngineError> {
        let mut subscribers = lock(&self.subscribers);
        if !subscribers.contains_key(url) {
            let wire_url = self.check_relay_url(url)?;
            let config = SubscriberConfig {
                backoff: self.backoff,
                ..SubscriberConfig::default()
            };
            let (subscriber, inbound) = Subscriber::spawn(self.connector.clone(), wire_url, config);
            let states = subscriber.state_events();
            let acks = subscriber.ack_handle();
            let weak = Arc::downgrade(self);
            let url_owned = url.to_owned();
            let inbound_task = tokio::spawn(delivery::inbound_loop(
                weak.clone(),
                url_owned.clone(),
                inbound,
                acks,
            ));
            let state_task = tokio::spawn(state_loop(weak, url_owned.clone(), states));
            self.track(inbound_task);
            self.track(state_task);
            lock(&self.connections).insert(
                url_owned,
                RelayConnection {
                    relay_url: url.to_owned(),
                    state: ConnectionStateView::Connecting,
                    retry_in_seconds: None,
                },
            );
            subscribers.insert(url.to_owned(), subscriber);
        }
        if let Some(subscriber) = subscribers.get(url) {
            subscriber
                .add(sealpost_relay_client::ReceiveId(receive_id), auth)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
        }
        Ok(())
    }

    /// Stops every subscriber and subscribes every own mailbox again (a new route: proxy set,
    /// changed or removed). The old subscribers' tasks end with their channels.
    async fn resubscribe_all(self: &Arc<Self>) -> Result<(), EngineError> {
        let subscribers: Vec<Subscriber> =
            lock(&self.subscribers).drain().map(|(_, s)| s).collect();
        for subscriber in subscribers {
            subscriber.shutdown().await;
        }
        lock(&self.connections).clear();
        let mailboxes = lock(&self.store).own_mailboxes()?;
        for mailbox in mailboxes {
            let auth = SigningKey::from_bytes(&array32(mailbox.auth_secret_key.expose_secret())?);
            self.subscribe(
                mailbox.relay_url.as_str(),
                array32(mailbox.receive_id.as_bytes())?,
                auth,
            )?;
        }
        self.connection_event();
        Ok(())
    }

    fn unsubscribe(&self, deletions: &[crate::store::MailboxDeletion]) {
        let subscribers = lock(&self.subscribers);
        for deletion in deletions {
            if let (Some(subscriber), Ok(id)) = (
                subscribers.get(deletion.relay_url.as_str()),
                array32(deletion.receive_id.as_bytes()),
            ) {
                let _ = subscriber.remove(sealpost_relay_client::ReceiveId(id));
            }
        }
    }

    /// On open: subscribe every own mailbox, start the outbox and the SECURE task, finish
    /// queued deletions, and seal messages stored but not sealed before a crash.
    fn resume(self: &Arc<Self>) -> Result<(), EngineError> {
        let mailboxes = lock(&self.store).own_mailboxes()?;
        for mailbox in mailboxes {
            let auth = SigningKey::from_bytes(&array32(mailbox.auth_secret_key.expose_secret())?);
            self.subscribe(
                mailbox.relay_url.as_str(),
                array32(mailbox.receive_id.as_bytes())?,
                auth,
            )?;
        }
        {
            let mut store = lock(&self.store);
            for message in store.messages_awaiting_seal()? {
                let content = Content {
                    v: CONTENT_VERSION,
                    seq: message.seq.get(),
                    sent_at_ms: u64::try_from(message.sent_at.0).unwrap_or(0),
                    body: Body::Text {
                        text: message.body.clone(),
                    },
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
        let outbox = tokio::spawn(delivery::outbox_loop(Arc::downgrade(self)));
        self.track(outbox);
        let secures = tokio::spawn(delivery::secure_loop(Arc::downgrade(self)));
        self.track(secures);
        self.clone().spawn_deletions();
        Ok(())
    }

    /// DELETEs queued mailboxes on their relays in the background (retried on the next start).
    fn spawn_deletions(self: Arc<Self>) {
        let weak = Arc::downgrade(&self);
        let task = tokio::spawn(async move {
            let Some(inner) = weak.upgrade() else { return };
            let pending = match lock(&inner.store).pending_mailbox_deletions() {
                Ok(pending) => pending,
                Err(_) => return,
            };
            for deletion in pending {
                let Ok(url) = WireUrl::parse(deletion.relay_url.as_str()) else {
                    continue;
                };
                let (Ok(id), Ok(auth)) = (
                    array32(deletion.receive_id.as_bytes()),
                    array32(deletion.auth_secret_key.expose_secret()),
                ) else {
                    continue;
                };
                let auth = SigningKey::from_bytes(&auth);
                // A fresh owner connection per DELETE: deleting several mailboxes (a contact's
                // on each relay, an invite's) must not tie them together on one connection.
                let result = match inner.connector.connect_owner(&url).await {
                    Ok(connection) => {
                        let result = connection
                            .delete(sealpost_relay_client::ReceiveId(id), &auth)
                            .await;
                        connection.close();
                        result
                    }
                    Err(error) => Err(error),
                };
                let done = match result {
                    Ok(()) => true,
                    Err(error) => matches!(error, ClientError::Unauthorized),
                };
                if done {
                    let _ = lock(&inner.store)
                        .complete_mailbox_deletion(&deletion.relay_url, &deletion.receive_id);
                }
            }
        });
        self.track(task);
    }

    /// See [`Engine::refresh_signed_prekey`].
    fn refresh_signed_prekey(&self) -> Result<usize, EngineError> {
        let fresh = SignedPrekeyPair::generate(&self.identity)?;
        let update = Content {
            v: CONTENT_VERSION,
            seq: 0,
            sent_at_ms: u64::try_from(UnixMillis::now().0).unwrap_or(0),
            body: Body::PrekeyUpdate {
                signed_prekey: fresh.public().to_bytes().to_vec(),
            },
            receipts: Vec::new(),
        };
        lock(&self.store).transaction(|store| -> Result<usize, EngineError> {
            let now = UnixMillis::now();
            if let Some((old, _)) = store.current_signed_prekey()? {
                store.retire_signed_prekey(old, now)?;
            }
            store.insert_signed_prekey(
                fresh.id().0,
                &SignedPrekeySecretBytes::new(fresh.to_secret_bytes().to_vec()),
                now,
            )?;
            let mut told = 0;
            for chat in store.chat_list()? {
                let contact = chat.contact;
                if contact.sending_blocked_reason().is_some()
                    || store.session_state(contact.id)?.is_none()
                    || store.peer_addresses(contact.id)?.is_empty()
                {
                    continue;
                }
                self.seal_and_commit(store, contact.id, None, &update)?;
                told += 1;
            }
            Ok(told)
        })
    }

    /// Deletes prekey secrets that can no longer be needed (forward secrecy, T7): signed
    /// prekeys retired more than [`RETIRED_SIGNED_PREKEY_GRACE`] before `now`, and the one-time
    /// prekey secrets of expired invites. Runs on open and after each refresh.
    fn prune_prekey_secrets(&self, now: UnixMillis) -> Result<(), EngineError> {
        let grace = i64::try_from(RETIRED_SIGNED_PREKEY_GRACE.as_millis()).unwrap_or(i64::MAX);
        let cutoff = UnixMillis(now.0.saturating_sub(grace));
        let mut store = lock(&self.store);
        let signed = store.delete_signed_prekeys_retired_before(cutoff)?;
        let one_time = store.forget_expired_invite_secrets(now)?;
        if signed > 0 || one_time > 0 {
            tracing::info!(signed, one_time, "old prekey secrets deleted");
        }
        Ok(())
    }

    /// Whether our current signed prekey is older than [`SIGNED_PREKEY_LIFETIME`].
    fn signed_prekey_expired(&self) -> Result<bool, EngineError> {
        let store = lock(&self.store);
        let Some((id, _)) = store.current_signed_prekey()? else {
            return Ok(false);
        };
        let Some(created_at) = store.signed_prekey_created_at(id)? else {
            return Ok(false);
        };
        let lifetime = i64::try_from(SIGNED_PREKEY_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        Ok(UnixMillis::now().0.saturating_sub(created_at.0) > lifetime)
    }

    /// Queues a delivery receipt for `seq`, sent alone after a random delay (§3a.7).
    pub(crate) fn queue_delivery_receipt(self: &Arc<Self>, contact: ContactId, seq: u64) {
        if !self.delivery_receipts {
            return;
        }
        let first = {
            let mut receipts = lock(&self.receipts);
            let entry = receipts.entry(contact).or_default();
            entry.push(seq);
            entry.len() == 1
        };
        if !first {
            return;
        }
        let (low, high) = self.receipt_delay;
        let spread = high.saturating_sub(low).as_millis();
        let mut random = [0u8; 8];
        let _ = getrandom::fill(&mut random);
        let jitter = if spread == 0 {
            0
        } else {
            u128::from(u64::from_le_bytes(random)) % spread
        };
        let delay = low + Duration::from_millis(u64::try_from(jitter).unwrap_or(0));
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(inner) = weak.upgrade() else { return };
            let seqs = lock(&inner.receipts).remove(&contact).unwrap_or_default();
            if seqs.is_empty() {
                return;
            }
            let receipts = seqs
                .into_iter()
                .map(|seq| crate::content::Receipt {
                    kind: crate::content::ReceiptKindWire::Delivered,
                    seq,
                })
                .collect();
            let result = {
                let mut store = lock(&inner.store);
                inner.seal_and_commit(&mut store, contact, None, &receipts_only(receipts))
            };
            match result {
                Ok(()) => inner.outbox_wake.notify_one(),
                Err(error) => tracing::debug!(%error, "delivery receipt not sent"),
            }
        });
        self.track(task);
    }

    /// Keeps `task` for [`Engine::shutdown`] to abort and await; aborts it at once if the engine
    /// is already closing. Finished tasks are forgotten here.
    pub(crate) fn track(&self, task: JoinHandle<()>) {
        if self.closing.load(Ordering::SeqCst) {
            task.abort();
            return;
        }
        let mut tasks = lock(&self.tasks);
        tasks.retain(|task| !task.is_finished());
        tasks.push(task);
    }

    fn connection_event(&self) {
        let connections = lock(&self.connections).values().cloned().collect();
        self.emit(EngineEvent::ConnectionState { connections });
    }
}

async fn state_loop(
    weak: std::sync::Weak<Inner>,
    url: String,
    mut states: tokio::sync::broadcast::Receiver<ConnectionState>,
) {
    loop {
        let state = match states.recv().await {
            Ok(state) => state,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Some(inner) = weak.upgrade() else { return };
        let view = match state {
            ConnectionState::Connecting => (ConnectionStateView::Connecting, None),
            ConnectionState::Connected => (ConnectionStateView::Connected, None),
            ConnectionState::Offline {
                retry_in,
                error: ClientError::Proxy(_),
            } => (
                ConnectionStateView::ProxyUnreachable,
                Some(retry_in.as_secs()),
            ),
            ConnectionState::Offline { retry_in, .. } => {
                (ConnectionStateView::Offline, Some(retry_in.as_secs()))
            }
        };
        if view.0 == ConnectionStateView::Connected {
            inner.outbox_wake.notify_one();
            inner.secure_wake.notify_one();
        }
        lock(&inner.connections).insert(
            url.clone(),
            RelayConnection {
                relay_url: url.clone(),
                state: view.0,
                retry_in_seconds: view.1,
            },
        );
        inner.connection_event();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reason sending is blocked reaches the UI as its own error kind, told apart by type
    /// (not by the reason's text, which is for people and may change).
    #[test]
    fn each_sending_blocked_reason_has_its_own_error_kind() {
        for (reason, kind) in [
            (SendingBlockedReason::ContactBlocked, "contact_blocked"),
            (SendingBlockedReason::KeyChangePending, "key_change_pending"),
        ] {
            let error = EngineError::from(StoreError::SendingBlocked { reason });
            assert_eq!(error.kind(), kind, "{reason:?}");
        }
    }
}
