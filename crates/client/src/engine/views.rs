//! Serde view types the desktop shell passes straight to the UI, the events the engine emits,
//! and the closed set of error kinds. camelCase fields, snake_case enum values. No key material
//! is ever in a view (`docs/threat-model.md`).
//!
//! Each type also derives [`ts_rs::TS`]: the UI's TypeScript declarations in
//! `ui/src/api/generated/` are generated from these types (under the names in `#[ts(rename)]`,
//! the UI's names), and `src-tauri/tests/ipc_types.rs` fails when the committed files differ.
//! `ui/CONTRACT.md` describes what the types cannot (semantics, event timing).

use serde::{Deserialize, Deserializer, Serialize};
use subtle::ConstantTimeEq;
use ts_rs::TS;
use zeroize::Zeroizing;

use crate::store::{ChatSummary, Direction, DisappearingTimer, Message, MessageState};

/// `Profile`: the user's own profile. The display name stays on this device and goes only to
/// contacts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "Profile")]
pub struct ProfileView {
    /// The name shown to contacts.
    pub display_name: String,
    /// The profile name (`--profile`).
    pub profile: String,
    /// The relays new mailboxes are made on.
    pub relays: Vec<String>,
}

/// `RelayChoice` for onboarding. Only ever comes from the UI (never serialised back: it may
/// carry a relay password).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RelayChoice {
    /// The local test relay (its URL comes from [`super::EngineConfig::local_relay_url`]).
    Local,
    /// A relay at a URL.
    Remote {
        /// `wss://…` (or `ws://` to loopback).
        url: String,
        /// The relay's password, if it has one (stored encrypted, used on CREATE).
        #[serde(default)]
        #[ts(as = "Option<String>", optional)]
        password: Option<RelayPassword>,
    },
}

/// A relay's password (`--password` of `sealpost-relay`): a secret the user types in. It comes
/// from the UI and goes only into the encrypted store and the relay's CREATE; it is never
/// serialised back, never printed (its `Debug` is redacted), zeroized on drop and compared in
/// constant time.
#[derive(Clone)]
pub struct RelayPassword(Zeroizing<String>);

impl RelayPassword {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(Zeroizing::new(password.into()))
    }

    /// The password, to store it or put it in CREATE.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RelayPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayPassword(<redacted>)")
    }
}

impl PartialEq for RelayPassword {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for RelayPassword {}

impl<'de> Deserialize<'de> for RelayPassword {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// `MessageState`: outgoing `queued → on_relay → delivered → read`, or `failed`; incoming
/// `delivered` until marked read, then `read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "MessageState")]
pub enum MessageStateView {
    /// Stored, not yet on a relay.
    Queued,
    /// A relay stored it durably.
    OnRelay,
    /// The peer's device has it (incoming: received, unread).
    Delivered,
    /// Read.
    Read,
    /// Gave up.
    Failed,
}

impl From<MessageState> for MessageStateView {
    fn from(state: MessageState) -> Self {
        match state {
            MessageState::Queued => Self::Queued,
            MessageState::OnRelay => Self::OnRelay,
            MessageState::Delivered | MessageState::Received => Self::Delivered,
            MessageState::Read => Self::Read,
            MessageState::Failed => Self::Failed,
        }
    }
}

/// `Message`: one message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "Message")]
pub struct MessageView {
    /// Opaque id.
    pub id: String,
    /// The conversation order key: unique within the conversation, increasing, below 2^53. The
    /// UI orders by it, never by time.
    pub seq: u64,
    /// Written by us.
    pub outgoing: bool,
    /// Plain text from a person: always rendered as a text node, never as markup.
    pub text: String,
    /// When the sender sent it (the sender's clock for incoming messages), Unix ms.
    pub sent_at: i64,
    /// When this device received it, Unix ms; null for outgoing messages.
    pub received_at: Option<i64>,
    /// Delivery state.
    pub state: MessageStateView,
    /// The disappearing timer it was sent with, seconds; null when none (`docs/engine.md` §
    /// Disappearing messages).
    pub timer_seconds: Option<u32>,
    /// When it disappears from this device, Unix ms (our clock); null when it has no timer.
    pub expires_at: Option<i64>,
    /// A system line, not a text: the chat's disappearing timer was set to this many seconds
    /// (0 = off) by the message's author. `text` is empty.
    pub timer_change: Option<u32>,
}

impl From<&Message> for MessageView {
    fn from(message: &Message) -> Self {
        Self {
            id: message.id.to_string(),
            seq: message.seq.get(),
            outgoing: message.direction == Direction::Outgoing,
            text: message.body.clone(),
            sent_at: message.sent_at.0,
            received_at: message.received_at.map(|at| at.0),
            state: message.state.into(),
            timer_seconds: message.timer.map(DisappearingTimer::seconds),
            expires_at: message.expires_at.map(|at| at.0),
            timer_change: message.timer_change.map(DisappearingTimer::setting_seconds),
        }
    }
}

/// `LastMessage`: the newest message, shown in the chat list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "LastMessage")]
pub struct LastMessageView {
    /// The text.
    pub text: String,
    /// Unix ms.
    pub at: i64,
    /// Written by us.
    pub outgoing: bool,
}

/// `Chat`: one row of the chat list (one contact and its 1:1 conversation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "Chat")]
pub struct ChatView {
    /// Opaque contact id.
    pub contact_id: String,
    /// The name the user gave this contact (prefilled from the invite).
    pub display_name: String,
    /// The newest message.
    pub last_message: Option<LastMessageView>,
    /// Incoming messages not yet marked read.
    pub unread: u32,
    /// The user compared safety numbers and marked this contact verified.
    pub verified: bool,
    /// A new identity key arrived (T8): sending is blocked until `accept_key_change` or
    /// `reject_key_change`.
    pub key_changed: bool,
    /// Blocked.
    pub blocked: bool,
    /// The chat's disappearing timer, seconds (0 = off; `docs/engine.md` § Disappearing
    /// messages).
    pub timer_seconds: u32,
}

impl From<&ChatSummary> for ChatView {
    fn from(summary: &ChatSummary) -> Self {
        Self {
            contact_id: summary.contact.id.to_string(),
            // Also for names stored before bidirectional controls were removed on arrival.
            display_name: crate::names::neutralise_bidi(&summary.contact.display_name),
            last_message: summary.last_message.as_ref().map(|m| LastMessageView {
                text: m.body.clone(),
                at: m.received_at.unwrap_or(m.sent_at).0,
                outgoing: m.direction == Direction::Outgoing,
            }),
            unread: summary.unread_count,
            verified: summary.contact.verified,
            key_changed: summary.contact.pending_identity_key.is_some(),
            blocked: summary.contact.blocked,
            timer_seconds: DisappearingTimer::setting_seconds(summary.timer),
        }
    }
}

/// `MessagePage`: one page of history from `get_messages`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    /// At most `limit` messages with `seq < beforeSeq` (the newest when `beforeSeq` is null).
    pub messages: Vec<MessageView>,
    /// Older messages exist.
    pub has_more: bool,
}

/// `Invite`: one single-use invite of this profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "Invite")]
pub struct InviteView {
    /// Opaque id.
    pub id: String,
    /// The `sealpost:` text (meant to be shared).
    pub text: String,
    /// QR code of the text, a complete SVG document made by the engine; shown only as an image
    /// (`<img src="data:…">`), never as markup.
    pub qr_svg: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
}

/// `InvitePreview`: what an invite says, shown before the user accepts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct InvitePreview {
    /// The name the inviter gave themselves (a suggestion; the user may change it).
    pub display_name: String,
    /// The first 15 digits of the safety number, in groups of 5.
    pub safety_preview: String,
    /// The relays the invite names.
    pub relays: Vec<String>,
    /// Unix ms.
    pub expires_at: i64,
}

/// `SafetyNumber`: the safety number of the user and one contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "SafetyNumber")]
pub struct SafetyNumberView {
    /// Exactly 60 ASCII digits. While a key change is pending: the NEW key's number.
    pub digits: String,
    /// QR code of `digits`' safety number payload, a complete SVG document.
    pub qr_svg: String,
    /// True while a key change is pending: `digits` belong to the key that accepting installs.
    pub is_pending_key: bool,
    /// While a key change is pending: the current (previous) key's 60 digits; otherwise none.
    pub previous_digits: Option<String>,
}

/// `Settings.notifications`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSettings {
    /// Show notifications.
    pub enabled: bool,
    /// Show message text in them (default off, §3a rule 8).
    pub show_text: bool,
}

/// `Settings.localRelay`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LocalRelaySettings {
    /// Run the local test relay.
    pub enabled: bool,
    /// Its fixed loopback port.
    pub port: u16,
}

/// `Settings`: all user settings. `update_settings` takes the whole object (but
/// `relaysWithPassword` and `socksProxy`) and returns the stored one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Notifications.
    pub notifications: NotificationSettings,
    /// Send read receipts (§3a rule 7).
    pub read_receipts: bool,
    /// The local test relay.
    pub local_relay: LocalRelaySettings,
    /// Relays new mailboxes are made on (1..=4).
    pub relays: Vec<String>,
    /// Which of `relays` have a stored password (output only: `update_settings` ignores it, and
    /// the password itself never leaves the engine; see [`RelayPassword`]).
    #[serde(default)]
    pub relays_with_password: Vec<String>,
    /// The SOCKS5 proxy (`IP:port`, e.g. Tor's `127.0.0.1:9050`) every relay connection goes
    /// through, or `None` for direct connections. Changed only by `set_socks_proxy`
    /// (`update_settings` keeps the stored one).
    #[serde(default)]
    pub socks_proxy: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            notifications: NotificationSettings {
                enabled: true,
                show_text: false,
            },
            read_receipts: true,
            local_relay: LocalRelaySettings {
                enabled: false,
                port: crate::local_relay::DEFAULT_LOCAL_RELAY_PORT,
            },
            relays: Vec::new(),
            relays_with_password: Vec::new(),
            socks_proxy: None,
        }
    }
}

/// `ConnectionState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "ConnectionState")]
pub enum ConnectionStateView {
    /// Connecting.
    Connecting,
    /// Connected and subscribed.
    Connected,
    /// Offline, retrying.
    Offline,
    /// The SOCKS5 proxy is down or refuses us: offline, retrying, never connecting directly.
    ProxyUnreachable,
}

/// `RelayConnection`: one relay connection as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RelayConnection {
    /// The relay.
    pub relay_url: String,
    /// Its state.
    pub state: ConnectionStateView,
    /// Seconds until the next reconnect attempt when offline, else null.
    pub retry_in_seconds: Option<u64>,
}

/// `Group`: a group as the app shows it (`docs/engine.md` § Groups).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "Group")]
pub struct GroupView {
    /// The group id (32 hex digits).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The effective members, ourselves included.
    pub members: Vec<GroupMemberView>,
    /// Whether we are a member (false once we left or were removed).
    pub is_member: bool,
    /// Whether we are an admin.
    pub is_admin: bool,
    /// Incoming texts not read yet.
    pub unread_count: u32,
    /// The group's disappearing timer, seconds (0 = off; set by an admin, `docs/engine.md` §
    /// Disappearing messages).
    pub timer_seconds: u32,
}

/// One member as the app shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "GroupMember")]
pub struct GroupMemberView {
    /// The member's identity key (128 hex digits): the handle for remove and promote.
    pub key: String,
    /// `true` for an admin.
    pub is_admin: bool,
    /// The contact holding the member's addresses, if it is one of ours.
    pub contact_id: Option<String>,
    /// That contact's name.
    pub display_name: Option<String>,
    /// Whether this is us.
    pub is_me: bool,
}

/// One group message as the app shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "GroupMessage")]
pub struct GroupMessageView {
    /// Its id.
    pub id: String,
    /// The author's identity key (hex): the peer of the session it arrived on.
    pub author_key: String,
    /// The author's contact name, if a contact.
    pub author_name: Option<String>,
    /// Ours.
    pub outgoing: bool,
    /// `true` for a roster change (a system line), `false` for a text. A roster change's `text`
    /// is a key the UI words: `created`, `joined`, `left`, or space-separated `added:KEY`,
    /// `removed:KEY`, `promoted:KEY`, `renamed` and `timer:SECONDS` (the disappearing timer was
    /// set; 0 = off).
    pub is_roster_change: bool,
    /// Its place in the group.
    pub seq: u64,
    /// The text (a system line's description for a roster change).
    pub text: String,
    /// Sent at (Unix ms; the sender's claim for theirs).
    pub sent_at: i64,
    /// Ours: the least advanced of its copies that did not fail (on relay until every member's
    /// device has it, delivered until every member read it; `docs/engine.md` § Groups);
    /// theirs: received or read.
    pub state: MessageStateView,
    /// Ours: copies made (members it was sealed to).
    pub recipients: u32,
    /// Ours: copies delivered.
    pub delivered_to: u32,
    /// Ours: copies read.
    pub read_by: u32,
    /// The disappearing timer it was sent with, seconds; `None` without one.
    pub timer_seconds: Option<u32>,
    /// When it disappears (Unix ms, this device's clock).
    pub expires_at: Option<i64>,
}

/// What the engine reports without being asked (`ui/CONTRACT.md` § Events).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EngineEvent {
    /// `message-received`.
    #[serde(rename_all = "camelCase")]
    MessageReceived {
        /// The conversation.
        contact_id: String,
        /// The message.
        message: MessageView,
    },
    /// `attachment-updated`: an attachment was added, made progress or changed state.
    #[serde(rename_all = "camelCase")]
    AttachmentUpdated {
        /// The attachment as it is now.
        attachment: AttachmentView,
    },
    /// `message-state`.
    #[serde(rename_all = "camelCase")]
    MessageState {
        /// The conversation.
        contact_id: String,
        /// The message.
        message_id: String,
        /// Its new state.
        state: MessageStateView,
    },
    /// `connection-state`: the full list.
    ConnectionState {
        /// Every relay connection.
        connections: Vec<RelayConnection>,
    },
    /// `contact-updated`.
    #[serde(rename_all = "camelCase")]
    ContactUpdated {
        /// The contact.
        contact_id: String,
    },
    /// `key-changed` (T8).
    #[serde(rename_all = "camelCase")]
    KeyChanged {
        /// The contact.
        contact_id: String,
    },
    /// `invite-misuse`: a used, revoked or expired invite was tried and refused.
    #[serde(rename_all = "camelCase")]
    InviteMisuse {
        /// The invite.
        invite_id: String,
    },
    /// `group-message-received`: a member's text arrived in a group and was stored
    /// (`docs/engine.md` § Groups). Once per message: a copy that arrives again emits nothing.
    #[serde(rename_all = "camelCase")]
    GroupMessageReceived {
        /// The group.
        group_id: String,
        /// The text, with its author (the peer of the session it arrived on).
        message: GroupMessageView,
    },
    /// `group-roster-changed`: a group's roster, name or description changed by another
    /// member's message (an add, a removal, a member leaving, a promotion, a rename), or we
    /// joined a group. `isMember` is false once we were removed.
    #[serde(rename_all = "camelCase")]
    GroupRosterChanged {
        /// The group.
        group_id: String,
        /// Whether we are (still) a member.
        is_member: bool,
    },
    /// `group-message-state`: one of our group texts moved on: a copy reached a relay, or a
    /// member's delivery or read receipt arrived, or a copy failed ("delivered to N of M").
    #[serde(rename_all = "camelCase")]
    GroupMessageState {
        /// The group.
        group_id: String,
        /// The message.
        message_id: String,
        /// Its state: the least advanced of its copies that did not fail (`docs/engine.md`
        /// § Groups).
        state: MessageStateView,
        /// Copies made (members it was sealed to).
        recipients: u32,
        /// Copies delivered.
        delivered_to: u32,
        /// Copies read.
        read_by: u32,
    },
    /// `messages-expired`: these messages reached the end of their disappearing timer and were
    /// deleted; the UI drops them (and anything showing their text) at once.
    #[serde(rename_all = "camelCase")]
    MessagesExpired {
        /// The conversation.
        contact_id: String,
        /// The deleted messages.
        message_ids: Vec<String>,
    },
    /// `group-messages-expired`: these group texts reached the end of their disappearing timer
    /// and were deleted; the UI drops them at once.
    #[serde(rename_all = "camelCase")]
    GroupMessagesExpired {
        /// The group.
        group_id: String,
        /// The deleted messages.
        message_ids: Vec<String>,
    },
    /// An envelope was refused (reflection, forgery, tampering); for logs and tests, not the UI.
    #[serde(rename_all = "camelCase")]
    #[ts(skip)]
    EnvelopeRefused {
        /// Why.
        reason: String,
    },
}

impl EngineEvent {
    /// The Tauri event name (`ui/CONTRACT.md`), or `None` for engine-internal events.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Self::MessageReceived { .. } => Some("message-received"),
            Self::MessageState { .. } => Some("message-state"),
            Self::AttachmentUpdated { .. } => Some("attachment-updated"),
            Self::ConnectionState { .. } => Some("connection-state"),
            Self::ContactUpdated { .. } => Some("contact-updated"),
            Self::KeyChanged { .. } => Some("key-changed"),
            Self::InviteMisuse { .. } => Some("invite-misuse"),
            Self::GroupMessageReceived { .. } => Some("group-message-received"),
            Self::GroupRosterChanged { .. } => Some("group-roster-changed"),
            Self::GroupMessageState { .. } => Some("group-message-state"),
            Self::MessagesExpired { .. } => Some("messages-expired"),
            Self::GroupMessagesExpired { .. } => Some("group-messages-expired"),
            Self::EnvelopeRefused { .. } => None,
        }
    }
}

/// Why a command failed: the closed set of `kind`s the UI has words for (`ui/CONTRACT.md`
/// § Errors says when each happens). The shell sends `{ kind, message }`; `message` is detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "EngineErrorKind")]
pub enum ErrorKind {
    /// A malformed argument.
    InvalidInput,
    /// A display name empty after trimming, or too long.
    DisplayNameInvalid,
    /// Not a usable relay URL.
    RelayUrlInvalid,
    /// A relay could not be reached when it had to be.
    RelayUnreachable,
    /// The relay refused CREATE: it needs a password, or the stored one is wrong.
    RelayPasswordRequired,
    /// Invite text that does not decode or verify.
    InviteCorrupt,
    /// An invite past its expiry.
    InviteExpired,
    /// The user's own invite.
    InviteOwn,
    /// An invite already used.
    InviteUsed,
    /// An invite revoked (or unknown).
    InviteRevoked,
    /// The identity is already a contact.
    ContactExists,
    /// An unknown contact id.
    ContactNotFound,
    /// Sending to a blocked contact.
    ContactBlocked,
    /// Sending while a key change awaits the user.
    KeyChangePending,
    /// Message text over the limit.
    MessageTooLong,
    /// The OS keychain is missing, locked or failed; retryable.
    KeychainUnavailable,
    /// The keychain has no identity key for an onboarded profile; retryable.
    IdentityMissing,
    /// The keychain has no key for an existing database; retryable.
    DatabaseKeyMissing,
    /// The encrypted store or the disk failed.
    Storage,
    /// The command needs an onboarded profile.
    NotOnboarded,
    /// The profile is already onboarded.
    AlreadyOnboarded,
    /// The embedded local relay could not start.
    LocalRelayFailed,
    /// An unknown group id.
    GroupNotFound,
    /// A roster change by a member without the admin role.
    GroupNotAdmin,
    /// The user (or the named member) is not a member of the group.
    GroupNotMember,
    /// Adding someone who is already a member.
    GroupAlreadyMember,
    /// Removing an admin (admins only leave on their own).
    GroupCannotRemoveAdmin,
    /// The group is at its member cap.
    GroupFull,
    /// A group name or description that is empty or too long.
    GroupNameInvalid,
    /// The passphrase does not open the backup (`docs/backup.md`).
    BackupWrongPassphrase,
    /// The backup file is truncated, damaged, changed, or not a backup.
    BackupDamaged,
    /// The backup's format version or key-derivation parameters are refused.
    BackupUnsupported,
    /// A typed backup passphrase is too weak.
    BackupPassphraseWeak,
    /// A file larger than this build or the relay sends.
    AttachmentTooLarge,
    /// An unknown attachment id.
    AttachmentNotFound,
    /// An attachment that is not downloaded (or sent) yet.
    AttachmentNotReady,
    /// A downloaded file failed its checks (a chunk's tag, the key commitment or the digest):
    /// nothing of it was kept.
    AttachmentTampered,
    /// The relay no longer has the file (past its time-to-live, or deleted).
    AttachmentExpired,
    /// Anything else (the UI shows the message).
    Internal,
}

impl ErrorKind {
    /// The kind named by its snake_case code (as `EngineError::kind` and `AppError::kind`
    /// return it), or `None` for a code outside the closed set.
    pub fn from_code(code: &str) -> Option<Self> {
        use serde::de::IntoDeserializer;
        let code: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            code.into_deserializer();
        Self::deserialize(code).ok()
    }
}

/// A file to send. It is not JSON across IPC: the UI's `sendAttachment` wrapper sends `bytes` as
/// the raw request body and the other fields as percent-encoded headers, which the app decodes
/// into this (`ui/CONTRACT.md` § Files across IPC).
#[derive(Clone, TS)]
#[ts(rename = "OutgoingFile", rename_all = "camelCase")]
pub struct OutgoingFile {
    /// Its name.
    pub file_name: String,
    /// Its media type as the UI knows it (a hint; images are recognised by their bytes).
    pub media_type: String,
    /// Its bytes (the raw body of the request).
    #[ts(type = "Uint8Array")]
    pub bytes: Vec<u8>,
}

/// `AttachmentState` as the UI shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "AttachmentState")]
pub enum AttachmentStateView {
    /// Received, not downloaded (the user may ask for it).
    Offered,
    /// Uploading.
    Uploading,
    /// Downloading.
    Downloading,
    /// Sent, or received and checked: it can be saved.
    Complete,
    /// Failed; `error` says why.
    Failed,
    /// Cancelled.
    Cancelled,
}

/// `Attachment`: a file sent or received. No key and no capability is in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "Attachment")]
pub struct AttachmentView {
    /// Opaque id.
    pub id: String,
    /// The 1:1 conversation (none for a group's file).
    pub contact_id: Option<String>,
    /// The group, for a file sent to a group (`send_group_attachment`).
    pub group_id: Option<String>,
    /// The message that carries it (none while an upload runs): a group message's id for a
    /// group's file.
    pub message_id: Option<String>,
    /// Sent by us.
    pub outgoing: bool,
    /// The file name (bidi controls removed; plain text, render as a text node).
    pub file_name: String,
    /// The claimed media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether it is a PNG, JPEG or WebP image with a preview to show (`attachment_preview`).
    pub is_image: bool,
    /// Its state.
    pub state: AttachmentStateView,
    /// Chunks transferred.
    pub done_chunks: u32,
    /// Chunks in all (0 for a small file sent inside the message).
    pub total_chunks: u32,
    /// Why it failed.
    pub error: Option<ErrorKind>,
}

pub(crate) fn is_image_type(media_type: &str) -> bool {
    matches!(media_type, "image/png" | "image/jpeg" | "image/webp")
}

impl From<&crate::store::AttachmentRow> for AttachmentView {
    fn from(row: &crate::store::AttachmentRow) -> Self {
        let outgoing = row.direction == crate::store::Direction::Outgoing;
        Self {
            id: row.id.to_string(),
            contact_id: row.chat.contact().map(|c| c.to_string()),
            group_id: row.chat.group().map(|g| g.to_string()),
            message_id: row.message.map(|m| m.to_string()),
            outgoing,
            file_name: row.file_name.clone(),
            media_type: row.media_type.clone(),
            size: row.size,
            is_image: is_image_type(&row.media_type),
            state: match row.state {
                crate::store::AttachmentState::Offered => AttachmentStateView::Offered,
                crate::store::AttachmentState::Transferring if outgoing => {
                    AttachmentStateView::Uploading
                }
                crate::store::AttachmentState::Transferring => AttachmentStateView::Downloading,
                crate::store::AttachmentState::Complete => AttachmentStateView::Complete,
                crate::store::AttachmentState::Failed => AttachmentStateView::Failed,
                crate::store::AttachmentState::Cancelled => AttachmentStateView::Cancelled,
            },
            done_chunks: row.done_chunks,
            total_chunks: row.chunks,
            error: row.error.as_deref().and_then(ErrorKind::from_code),
        }
    }
}
