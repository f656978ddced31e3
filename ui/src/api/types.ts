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
import type { BackupProgress } from "./generated/BackupProgress";

export type { AppStatus } from "./generated/AppStatus";
export type { BackupPhase } from "./generated/BackupPhase";
export type { BackupProgress } from "./generated/BackupProgress";
export type { BackupSummary } from "./generated/BackupSummary";
export type { Attachment } from "./generated/Attachment";
export type { AttachmentState } from "./generated/AttachmentState";
export type { OutgoingFile } from "./generated/OutgoingFile";
export type { Chat } from "./generated/Chat";
export type { Group } from "./generated/Group";
export type { GroupMember } from "./generated/GroupMember";
export type { GroupMessage } from "./generated/GroupMessage";
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
} & { "open-invite": OpenInviteEvent; "backup-progress": BackupProgress };

export type EngineEventName = keyof EngineEvents;

// Search results (`search_messages`): written by hand, beside the generated types; their Rust
// counterparts are in crates/client/src/engine/search.rs.

/** A range of a text in UTF-16 code units (JavaScript string indices), end exclusive. */
export interface TextRange {
  start: number;
  end: number;
}

/** One message (or group name) found by `search_messages` (`docs/engine.md` § Search). */
export interface SearchHit {
  /** Null for a group's name. */
  messageId: string | null;
  /** The 1:1 chat (contact) it belongs to; null in a group. */
  contactId: string | null;
  /** The group it belongs to; null in a 1:1 chat. */
  groupId: string | null;
  seq: number;
  outgoing: boolean;
  /** The author of a group message (identity key, hex); null otherwise. */
  authorKey: string | null;
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
