/**
 * The engine contract's types, under one import path.
 *
 * Every type that crosses Tauri IPC is generated from the Rust types into ./generated/ (ts-rs;
 * `src-tauri/tests/ipc_types.rs` regenerates them and fails when the committed files differ, so
 * they cannot drift). This module only re-exports them and derives the few types the UI needs
 * from them; it declares no shape of its own. What the types cannot say (semantics, event
 * timing, error meanings) is in ui/CONTRACT.md.
 */
import type { EngineError as GeneratedEngineError } from "./generated/EngineError";
import type { EngineErrorKind } from "./generated/EngineErrorKind";
import type { EngineEvent } from "./generated/EngineEvent";
import type { OpenInviteEvent } from "./generated/OpenInviteEvent";
import type { MessageState } from "./generated/MessageState";

export type { AppStatus } from "./generated/AppStatus";
export type { Attachment } from "./generated/Attachment";
export type { AttachmentState } from "./generated/AttachmentState";
export type { OutgoingFile } from "./generated/OutgoingFile";
export type { Chat } from "./generated/Chat";
export type { ConnectionState } from "./generated/ConnectionState";
export type { EngineErrorKind } from "./generated/EngineErrorKind";
export type { EngineEvent } from "./generated/EngineEvent";
export type { Invite } from "./generated/Invite";
export type { InvitePreview } from "./generated/InvitePreview";
export type { LastMessage } from "./generated/LastMessage";
export type { LocalRelaySettings } from "./generated/LocalRelaySettings";
export type { LocalRelayStatus } from "./generated/LocalRelayStatus";
export type { Message } from "./generated/Message";
export type { MessagePage } from "./generated/MessagePage";
export type { MessageState } from "./generated/MessageState";
export type { NotificationSettings } from "./generated/NotificationSettings";
export type { OpenInviteEvent } from "./generated/OpenInviteEvent";
export type { Profile } from "./generated/Profile";
export type { RelayChoice } from "./generated/RelayChoice";
export type { RelayConnection } from "./generated/RelayConnection";
export type { SafetyNumber } from "./generated/SafetyNumber";
export type { Settings } from "./generated/Settings";

/**
 * What every command rejects with: the generated `{ kind, message }`. The kind is one of
 * {@link EngineErrorKind}; ./runtime.ts turns a rejection that did not come from the engine (an
 * IPC failure) into `internal`, and keeps a kind it does not know (a newer engine) as text, so
 * the UI falls back to `message` for it.
 */
export type EngineError = Omit<GeneratedEngineError, "kind"> & {
  kind: EngineErrorKind | (string & {});
};

/**
 * Map of event name → payload, derived from the generated {@link EngineEvent} union (the Rust
 * enum is tagged by `event`, which the payload also carries) plus `open-invite`, which the shell
 * emits for deep links.
 */
export type EngineEvents = {
  [E in EngineEvent as E["event"]]: Omit<E, "event">;
} & { "open-invite": OpenInviteEvent };

export type EngineEventName = keyof EngineEvents;

// Search results (`search_messages`): written by hand, beside the generated types; their Rust
// counterparts are in crates/client/src/engine/search.rs.

/** A range of a text in UTF-16 code units (JavaScript string indices), end exclusive. */
export interface TextRange {
  start: number;
  end: number;
}

/** One message found by `search_messages` (`docs/engine.md` § Search). */
export interface SearchHit {
  messageId: string;
  /** The chat (contact) it belongs to. */
  contactId: string;
  seq: number;
  outgoing: boolean;
  /** Unix ms by this device's clock (sent by us, or received). */
  at: number;
  /** Plain text around the first match. Rendered as text nodes only; matches as <mark> nodes. */
  snippet: string;
  snippetMatches: TextRange[];
  cutBefore: boolean;
  cutAfter: boolean;
  /** Matches in the whole message text (to highlight it in the opened chat). */
  matches: TextRange[];
}

/** A page of search results, newest first. */
export interface SearchResults {
  hits: SearchHit[];
  /** Opaque cursor for the next (older) page; null at the end. */
  next: string | null;
}

// Groups: written by hand, beside the generated types (their Rust views are in
// crates/client/src/engine/groups.rs).

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
