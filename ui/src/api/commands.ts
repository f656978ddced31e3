/**
 * One typed wrapper per engine command. Each calls Tauri's `invoke` with the snake_case command
 * name and camelCase arguments. Argument and result types are generated from the Rust types
 * (./generated/, see ./types.ts); `./commands.test.ts` pins every command name and argument
 * shape. Rejections are normalised to {@link EngineError}.
 */
import { invoke as tauriInvoke } from "@tauri-apps/api/core";
import type { AppStatus } from "./generated/AppStatus";
import type { BackupSummary } from "./generated/BackupSummary";
import type { Chat } from "./generated/Chat";
import type { Invite } from "./generated/Invite";
import type { InvitePreview } from "./generated/InvitePreview";
import type { Message } from "./generated/Message";
import type { MessagePage } from "./generated/MessagePage";
import type { Profile } from "./generated/Profile";
import type { RelayChoice } from "./generated/RelayChoice";
import type { SafetyNumber } from "./generated/SafetyNumber";
import type { Settings } from "./generated/Settings";
import { hasTauri, loadMock, toEngineError } from "./runtime";
import type { Attachment, EngineError, Group, GroupMessage, OutgoingFile, SearchResults } from "./types";

async function invoke<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    if (hasTauri()) return await tauriInvoke<T>(command, args);
    const mock = await loadMock();
    return await mock.mockInvoke<T>(command, args ?? {});
  } catch (error) {
    throw toEngineError(error);
  }
}

/**
 * Files across IPC as raw bytes (`ui/CONTRACT.md` § Files across IPC): `body` goes as the raw
 * request body (an octet stream, not a JSON array of numbers) and `headers` as request headers,
 * each value percent-encoded UTF-8 ({@link headerValue}). The mock takes `mockArgs`, the same
 * fields as one object.
 */
async function invokeRaw<T>(
  command: string,
  body: Uint8Array,
  headers: Record<string, string>,
  mockArgs: Record<string, unknown>,
): Promise<T> {
  try {
    if (hasTauri()) return await tauriInvoke<T>(command, body, { headers });
    const mock = await loadMock();
    return await mock.mockInvoke<T>(command, mockArgs);
  } catch (error) {
    throw toEngineError(error);
  }
}

/**
 * A header value for any text: its UTF-8 percent-encoded (`encodeURIComponent`), so a file name
 * such as "写真.png" or one holding bidirectional controls survives the ASCII-only headers; the
 * app decodes it (src-tauri/src/file_ipc.rs). A lone surrogate, which has no UTF-8, becomes U+FFFD.
 */
function headerValue(text: string): string {
  let wellFormed = "";
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      wellFormed += text.slice(i, i + 2);
      i++;
    } else if (unit >= 0xd800 && unit <= 0xdfff) {
      wellFormed += "\uFFFD";
    } else {
      wellFormed += text.charAt(i);
    }
  }
  return encodeURIComponent(wellFormed);
}

/** The header names of `send_attachment` (src-tauri/src/file_ipc.rs). */
const FILE_HEADERS = {
  contactId: "Sealpost-Contact-Id",
  groupId: "Sealpost-Group-Id",
  fileName: "Sealpost-File-Name",
  mediaType: "Sealpost-Media-Type",
} as const;

/** What the UI needs at start: profile, onboarded, local relay and connections. */
export const appStatus = (): Promise<AppStatus> => invoke("app_status");

/** Makes keys (seed to the keychain), stores the display name locally, sets up the relay. */
export const onboard = (args: { displayName: string; relay: RelayChoice }): Promise<Profile> =>
  invoke("onboard", { ...args });

/** The user's own profile. */
export const getProfile = (): Promise<Profile> => invoke("get_profile");

/** Changes the user's own display name (sent to contacts with the next message). */
export const setDisplayName = (args: { displayName: string }): Promise<Profile> =>
  invoke("set_display_name", args);

/** All chats, newest activity first. */
export const listChats = (): Promise<Chat[]> => invoke("list_chats");

/** One page of history: messages with seq < beforeSeq (newest page when null). */
export const getMessages = (args: {
  contactId: string;
  beforeSeq: number | null;
  limit: number;
}): Promise<MessagePage> => invoke("get_messages", args);

/** Messages matching `query` (any text: it is data, never syntax), newest first, older than the
 * cursor `before` (a previous page's `next`). */
export const searchMessages = (args: {
  query: string;
  limit: number;
  before: string | null;
}): Promise<SearchResults> => invoke("search_messages", args);

/** Seals once, stores, queues. Returns the stored message (state "queued"). */
export const sendMessage = (args: { contactId: string; text: string }): Promise<Message> =>
  invoke("send_message", args);

/** Sets the chat's disappearing timer for both sides (seconds: 0 off, 300, 3600, 86400,
 * 604800). Returns the system line. */
export const setChatTimer = (args: { contactId: string; seconds: number }): Promise<Message> =>
  invoke("set_chat_timer", args);

/** Sends a file (an image is stripped of its metadata first); progress in `attachment-updated`.
 * The bytes cross IPC raw, the contact, name and type as headers. */
export const sendAttachment = (args: { contactId: string; file: OutgoingFile }): Promise<Attachment> =>
  invokeRaw(
    "send_attachment",
    args.file.bytes,
    {
      [FILE_HEADERS.contactId]: headerValue(args.contactId),
      [FILE_HEADERS.fileName]: headerValue(args.file.fileName),
      [FILE_HEADERS.mediaType]: headerValue(args.file.mediaType),
    },
    args,
  );

/** Every attachment of a conversation, oldest first. */
export const getAttachments = (args: { contactId: string }): Promise<Attachment[]> =>
  invoke("get_attachments", args);

/** Fetches a received file (again, after a failure or a cancel). */
export const downloadAttachment = (args: { attachmentId: string }): Promise<Attachment> =>
  invoke("download_attachment", args);

/** Stops an upload or a download. */
export const cancelAttachment = (args: { attachmentId: string }): Promise<Attachment> =>
  invoke("cancel_attachment", args);

/** Writes the file into the Downloads folder; resolves to its path. */
export const saveAttachment = (args: { attachmentId: string }): Promise<string> =>
  invoke("save_attachment", args);

/** A PNG of the image (or its thumbnail) that the engine encoded; it crosses IPC as raw bytes. */
export const attachmentPreview = async (args: { attachmentId: string }): Promise<Uint8Array> =>
  new Uint8Array(await invoke<ArrayBuffer>("attachment_preview", args));

/** Marks incoming messages up to and including upToSeq read (sends receipts if enabled). */
export const markRead = (args: { contactId: string; upToSeq: number }): Promise<void> =>
  invoke("mark_read", args);

/** Makes a new single-use invite. */
export const createInvite = (): Promise<Invite> => invoke("create_invite");

/** Open invites: not used, not revoked, not expired. Newest first. */
export const listInvites = (): Promise<Invite[]> => invoke("list_invites");

/** Revokes an open invite; later use is refused and reported as 'invite-misuse'. */
export const revokeInvite = (args: { id: string }): Promise<void> => invoke("revoke_invite", args);

/** Decodes and checks an invite without adding anything. */
export const previewInvite = (args: { text: string }): Promise<InvitePreview> =>
  invoke("preview_invite", args);

/** Adds the contact from an invite under the name the user chose. */
export const acceptInvite = (args: { text: string; displayName: string }): Promise<Chat> =>
  invoke("accept_invite", args);

/** The safety number shared by the user and this contact. */
export const getSafetyNumber = (args: { contactId: string }): Promise<SafetyNumber> =>
  invoke("get_safety_number", args);

/** Marks a contact verified (or not). */
export const setVerified = (args: { contactId: string; verified: boolean }): Promise<void> =>
  invoke("set_verified", args);

/** Accepts a contact's new identity key: unblocks sending, clears verified. */
export const acceptKeyChange = (args: { contactId: string }): Promise<void> =>
  invoke("accept_key_change", args);

/** Rejects a contact's new identity key: keeps the old one, drops what came with the new one, unblocks sending. */
export const rejectKeyChange = (args: { contactId: string }): Promise<void> =>
  invoke("reject_key_change", args);

/** Blocks or unblocks a contact. */
export const blockContact = (args: { contactId: string; blocked: boolean }): Promise<void> =>
  invoke("block_contact", args);

/**
 * Repairs the session with a contact (the user's own action): starts a new session with X3DH and
 * sends the contact a restart. Messages not yet received on the old session are lost.
 */
export const repairSession = (args: { contactId: string }): Promise<void> => invoke("repair_session", args);

/** Deletes a contact, its history and its mailboxes on every relay. */
export const deleteContact = (args: { contactId: string }): Promise<void> =>
  invoke("delete_contact", args);

/** Renames a contact (local only). */
export const renameContact = (args: { contactId: string; displayName: string }): Promise<void> =>
  invoke("rename_contact", args);

/**
 * The `sealpost:` link the app was started with (or opened before the UI listened), once:
 * the engine returns it and forgets it. Null when there is none. It only fills the form.
 */
export const takePendingInvite = (): Promise<string | null> => invoke("take_pending_invite");

/** Current settings. */
export const getSettings = (): Promise<Settings> => invoke("get_settings");

/**
 * Stores (or with null, removes) the password of a relay, used when making mailboxes there.
 * Write-only: the engine keeps it encrypted and never returns it. Returns the settings.
 */
export const setRelayPassword = (args: { url: string; password: string | null }): Promise<Settings> =>
  invoke("set_relay_password", args);

/**
 * Routes every relay connection through a SOCKS5 proxy ("IP:port", e.g. Tor's "127.0.0.1:9050"),
 * or directly with null. Works before onboarding too. Returns the settings.
 */
export const setSocksProxy = (args: { address: string | null }): Promise<Settings> =>
  invoke("set_socks_proxy", args);

/** Replaces all settings; returns what was stored. */
export const updateSettings = (settings: Settings): Promise<Settings> =>
  invoke("update_settings", { ...settings });

// ---- Groups (`docs/engine.md` § Groups) ----

/** A new group with the user as admin and these contacts as members. */
export const createGroup = (args: { name: string; description: string; contactIds: string[] }): Promise<Group> =>
  invoke("create_group", args);

/** Every group, most recent activity first. */
export const listGroups = (): Promise<Group[]> => invoke("list_groups");

/** One group with its members and roles. */
export const getGroup = (args: { groupId: string }): Promise<Group> => invoke("get_group", args);

/** At most `limit` messages with seq < beforeSeq (the newest when null), oldest first. */
export const getGroupMessages = (args: {
  groupId: string;
  beforeSeq: number | null;
  limit: number;
}): Promise<GroupMessage[]> => invoke("get_group_messages", args);

/** Stores the text, seals one copy per member over that member's own session, queues them. */
export const sendGroupMessage = (args: { groupId: string; text: string }): Promise<GroupMessage> =>
  invoke("send_group_message", args);

/** Sends a file to every member, uploaded once; progress in `attachment-updated`. */
export const sendGroupAttachment = (args: { groupId: string; file: OutgoingFile }): Promise<Attachment> =>
  invokeRaw(
    "send_group_attachment",
    args.file.bytes,
    {
      [FILE_HEADERS.groupId]: headerValue(args.groupId),
      [FILE_HEADERS.fileName]: headerValue(args.file.fileName),
      [FILE_HEADERS.mediaType]: headerValue(args.file.mediaType),
    },
    args,
  );

/** Every attachment of a group, oldest first. */
export const getGroupAttachments = (args: { groupId: string }): Promise<Attachment[]> =>
  invoke("get_group_attachments", args);

/** Adds a contact to the group (admins only). */
export const addGroupMember = (args: { groupId: string; contactId: string }): Promise<Group> =>
  invoke("add_group_member", args);

/** Removes a member (admins only); it gets nothing sealed after the removal. */
export const removeGroupMember = (args: { groupId: string; memberKey: string }): Promise<Group> =>
  invoke("remove_group_member", args);

/** Makes a member an admin (admins only). */
export const promoteGroupMember = (args: { groupId: string; memberKey: string }): Promise<Group> =>
  invoke("promote_group_member", args);

/** A new name and description (admins only). */
export const renameGroup = (args: { groupId: string; name: string; description: string }): Promise<Group> =>
  invoke("rename_group", args);

/** (Admins) Sets the group's disappearing timer for every member, seconds (0 = off). */
export const setGroupTimer = (args: { groupId: string; seconds: number }): Promise<Group> =>
  invoke("set_group_timer", args);

/** The user leaves the group; the others are told. */
export const leaveGroup = (args: { groupId: string }): Promise<Group> => invoke("leave_group", args);

/** Marks every incoming text of the group read (read receipts go out if enabled). */
export const markGroupRead = (args: { groupId: string }): Promise<void> => invoke("mark_group_read", args);

/** Writes the whole profile to one file sealed under `passphrase` (`path` empty: the Documents
 * folder). A typed passphrase must pass the strength check (`backup_passphrase_weak`). Progress
 * arrives as `backup-progress` events. The passphrase is write-only: nothing returns it. */
export const exportBackup = (args: { path: string; passphrase: string }): Promise<BackupSummary> =>
  invoke("export_backup", args);

/** Onboarding's "Restore from a backup": on success the app relaunches with the restored
 * profile (the promise may never settle). Progress arrives as `backup-progress` events. */
export const restoreBackup = (args: { path: string; passphrase: string }): Promise<void> =>
  invoke("restore_backup", args);
