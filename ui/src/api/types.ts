/**
 * The engine contract: every value that crosses Tauri IPC between the web UI and the Rust shell.
 *
 * Conventions (the Rust side serialises with `#[serde(rename_all = "camelCase")]`):
 * - Command names are snake_case (`list_chats`); argument and field names are camelCase.
 * - Times (`at`, `sentAt`, `receivedAt`, `createdAt`, `expiresAt`) are integers: Unix time in
 *   milliseconds, UTC.
 * - IDs (`contactId`, message `id`, invite `id`) are opaque strings chosen by the engine.
 * - `seq` is the engine's per-conversation order key (`docs/engine.md` § Inside a ratchet message):
 *   unique within one conversation, increasing, below 2^53 so it is exact in a JS number. The UI
 *   orders by it, never by time.
 * - Nothing here is key material (`ARCHITECTURE.md` § Invariants: no secret crosses IPC). Invite
 *   text and safety numbers are meant to be shown.
 * - Every command rejects with {@link EngineError}.
 */

/** Where the user's mailboxes live, chosen at onboarding. */
/**
 * Where new mailboxes are made at onboarding. `password` is the relay's password when it has one
 * (sent to the engine only, stored encrypted, never returned).
 */
export type RelayChoice = { kind: "local" } | { kind: "remote"; url: string; password?: string };

/** The embedded local test relay (127.0.0.1, fixed configurable port). */
export interface LocalRelayStatus {
  /** The user has switched local test relay mode on. */
  enabled: boolean;
  /** A local relay is reachable (started by this or another profile). */
  running: boolean;
  /** Its ws:// URL when running, else null. */
  url: string | null;
}

/** Connection state of one relay. */
export type ConnectionState = "connecting" | "connected" | "offline" | "proxy_unreachable";

/** One relay connection as the engine sees it. */
export interface RelayConnection {
  relayUrl: string;
  state: ConnectionState;
  /** Seconds until the next reconnect attempt when offline, else null. */
  retryInSeconds: number | null;
}

/** Result of `app_status`: what the UI needs at start. */
export interface AppStatus {
  /** Profile name (`--profile NAME`, "default" otherwise). */
  profile: string;
  /** False until `onboard` has made keys for this profile. */
  onboarded: boolean;
  localRelay: LocalRelayStatus;
  connections: RelayConnection[];
}

/** The user's own profile. The display name stays local and goes only to contacts. */
export interface Profile {
  displayName: string;
  /** Profile name, as in {@link AppStatus.profile}. */
  profile: string;
  /** Relay URLs this profile uses. */
  relays: string[];
}

/** Delivery state of a message. Outgoing: queued → on_relay → delivered → read, or failed. */
export type MessageState = "queued" | "on_relay" | "delivered" | "read" | "failed";

/** One message. Incoming messages have state "delivered" until marked read, then "read". */
export interface Message {
  id: string;
  seq: number;
  outgoing: boolean;
  /** Plain text from a person. Always rendered as a text node, never as markup. */
  text: string;
  /** When the sender sent it (sender's clock for incoming messages). */
  sentAt: number;
  /** When this device received it; null for outgoing messages. */
  receivedAt: number | null;
  state: MessageState;
}

/** Last message shown in the chat list. */
export interface LastMessage {
  text: string;
  at: number;
  outgoing: boolean;
}

/** One row of the chat list (one contact: 1:1 chats only in round 1). */
export interface Chat {
  contactId: string;
  /** The name the user gave this contact (prefilled from the invite). */
  displayName: string;
  lastMessage: LastMessage | null;
  /** Incoming messages not yet marked read. */
  unread: number;
  /** The user compared safety numbers and marked this contact verified. */
  verified: boolean;
  /** A new identity key arrived (T8): sending is blocked until `accept_key_change` or `reject_key_change`. */
  keyChanged: boolean;
  blocked: boolean;
}

/** A page of history, for `get_messages`. */
export interface MessagePage {
  /** Messages with `seq < beforeSeq` (or the newest when beforeSeq is null), at most `limit`. */
  messages: Message[];
  /** Older messages exist before the oldest one returned. */
  hasMore: boolean;
}

/** One single-use invite (`docs/engine.md` § Invites). */
export interface Invite {
  id: string;
  /** The `sealpost:…` link; copy/paste text. */
  text: string;
  /** SVG markup of a QR code of `text`, made by the engine. Shown via <img src="data:…">. */
  qrSvg: string;
  createdAt: number;
  expiresAt: number;
}

/** What an invite says, shown before the user accepts it. */
export interface InvitePreview {
  /** The name the inviter gave themselves (a suggestion; the user may change it). */
  displayName: string;
  /** A short, human-comparable fingerprint of the inviter's identity key. */
  safetyPreview: string;
  /** Relay URLs the invite points to. */
  relays: string[];
  expiresAt: number;
}

/** The safety number of the user and one contact (Signal style). */
export interface SafetyNumber {
  /**
   * Exactly 60 ASCII digits, no separators. The UI groups them 12 × 5. While a key change is
   * pending (T8) these are the NEW key's: the key `accept_key_change` installs.
   */
  digits: string;
  /** SVG markup of a QR code of `digits` for scanning, made by the engine. */
  qrSvg: string;
  /** A key change is pending: `digits` belong to the new key. */
  isPendingKey: boolean;
  /** While a key change is pending, the current (previous) key's 60 digits; otherwise null. */
  previousDigits: string | null;
}

/**
 * Notification preferences (text is hidden by default: `docs/threat-model.md` § Plaintext never
 * leaves the device for features).
 */
export interface NotificationSettings {
  enabled: boolean;
  /** Show message text in notifications. Default false: they say "New message". */
  showText: boolean;
}

/** Local test relay preferences. */
export interface LocalRelaySettings {
  enabled: boolean;
  /** Fixed loopback port the local relay listens on (`ARCHITECTURE.md` § Local test relay mode). */
  port: number;
}

/** All user settings. `update_settings` takes the whole object and returns the stored one. */
export interface Settings {
  notifications: NotificationSettings;
  /** Send read receipts (`docs/engine.md` § Inside a ratchet message). */
  readReceipts: boolean;
  localRelay: LocalRelaySettings;
  /** Remote relay URLs (wss://, or ws:// to loopback). */
  relays: string[];
  /**
   * Relays (of `relays`) that have a stored password. Read-only: the password itself never comes
   * back from the engine; set or clear it with `set_relay_password`. Ignored by `update_settings`.
   */
  relaysWithPassword: string[];
  /**
   * SOCKS5 proxy ("IP:port", e.g. Tor's "127.0.0.1:9050") every relay connection goes through,
   * or null for direct connections. Set with `set_socks_proxy`; ignored by `update_settings`.
   */
  socksProxy: string | null;
}

/** One member of a group (`docs/engine.md` § Groups). */
export interface GroupMember {
  /** The member's identity key (128 hex digits): the handle for remove and promote. Not a secret. */
  key: string;
  isAdmin: boolean;
  /** The contact holding this member's addresses, if it is one of the user's contacts. */
  contactId: string | null;
  /** That contact's name (from a peer: drawn as text, bidi controls removed). */
  displayName: string | null;
  /** This member is the user. */
  isMe: boolean;
}

/** A group as the chat list and the group view show it. */
export interface Group {
  /** The group id (32 hex digits). */
  id: string;
  name: string;
  description: string;
  /** The effective members, the user included. */
  members: GroupMember[];
  /** False once the user left or was removed. */
  isMember: boolean;
  isAdmin: boolean;
  /** Incoming texts not yet marked read. */
  unreadCount: number;
}

/** One group message. A roster change is a system line whose `text` is a key the UI words. */
export interface GroupMessage {
  id: string;
  /** The author's identity key: the peer of the session the message arrived on. */
  authorKey: string;
  /** The author's contact name, if a contact. */
  authorName: string | null;
  outgoing: boolean;
  /**
   * A roster change: `text` is `created`, `joined`, `left`, or space-separated `added:KEY`,
   * `removed:KEY`, `promoted:KEY` and `renamed`.
   */
  isRosterChange: boolean;
  seq: number;
  text: string;
  sentAt: number;
  state: MessageState;
  /** The user's own: copies made (members it was sealed to). */
  recipients: number;
  /** The user's own: copies delivered ("delivered to 3 of 4"). */
  deliveredTo: number;
  /** The user's own: copies read. */
  readBy: number;
}

/** Error kinds the UI knows words for. Unknown kinds fall back to `message`. */
export type EngineErrorKind =
  | "invalid_input"
  | "display_name_invalid"
  | "relay_url_invalid"
  | "relay_unreachable"
  | "relay_password_required"
  | "invite_corrupt"
  | "invite_expired"
  | "invite_own"
  | "invite_used"
  | "invite_revoked"
  | "contact_exists"
  | "contact_not_found"
  | "contact_blocked"
  | "key_change_pending"
  | "message_too_long"
  | "keychain_unavailable"
  | "identity_missing"
  | "database_key_missing"
  | "storage"
  | "not_onboarded"
  | "already_onboarded"
  | "local_relay_failed"
  | "group_not_found"
  | "group_not_admin"
  | "group_not_member"
  | "group_already_member"
  | "group_cannot_remove_admin"
  | "group_full"
  | "group_name_invalid"
  | "internal";

/** Every command rejects with this shape. `message` is English detail for logs and fallbacks. */
export interface EngineError {
  kind: EngineErrorKind | string;
  message: string;
}

// ---- Events (engine → UI), listened to with `listen(name, handler)` ----

/** 'message-received': a new incoming message was stored. */
export interface MessageReceivedEvent {
  contactId: string;
  message: Message;
}

/** 'message-state': an outgoing message changed state. */
export interface MessageStateEvent {
  contactId: string;
  messageId: string;
  state: MessageState;
}

/** 'connection-state': the full current list of relay connections. */
export interface ConnectionStateEvent {
  connections: RelayConnection[];
}

/** 'contact-updated': a contact's row changed (name, verified, blocked, unread…): refetch. */
export interface ContactUpdatedEvent {
  contactId: string;
}

/** 'key-changed': a contact's identity key changed (T8); show the banner, block sending. */
export interface KeyChangedEvent {
  contactId: string;
}

/**
 * 'invite-misuse': someone tried to use an invite that was already used or revoked
 * (`docs/engine.md` § Invites).
 */
export interface InviteMisuseEvent {
  inviteId: string;
}

/** 'open-invite': a `sealpost:` deep link was opened. It only fills the add-contact form. */
export interface OpenInviteEvent {
  text: string;
}

/** Map of event name → payload. */
export interface EngineEvents {
  "message-received": MessageReceivedEvent;
  "message-state": MessageStateEvent;
  "connection-state": ConnectionStateEvent;
  "contact-updated": ContactUpdatedEvent;
  "key-changed": KeyChangedEvent;
  "invite-misuse": InviteMisuseEvent;
  "open-invite": OpenInviteEvent;
}

export type EngineEventName = keyof EngineEvents;
