// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { Attachment } from "./Attachment";
import type { GroupMessage } from "./GroupMessage";
import type { Message } from "./Message";
import type { MessageState } from "./MessageState";
import type { RelayConnection } from "./RelayConnection";

/**
 * What the engine reports without being asked (`ui/CONTRACT.md` § Events).
 */
export type EngineEvent = { "event": "message-received", 
/**
 * The conversation.
 */
contactId: string, 
/**
 * The message.
 */
message: Message, } | { "event": "attachment-updated", 
/**
 * The attachment as it is now.
 */
attachment: Attachment, } | { "event": "message-state", 
/**
 * The conversation.
 */
contactId: string, 
/**
 * The message.
 */
messageId: string, 
/**
 * Its new state.
 */
state: MessageState, } | { "event": "connection-state", 
/**
 * Every relay connection.
 */
connections: Array<RelayConnection>, } | { "event": "contact-updated", 
/**
 * The contact.
 */
contactId: string, } | { "event": "key-changed", 
/**
 * The contact.
 */
contactId: string, } | { "event": "invite-misuse", 
/**
 * The invite.
 */
inviteId: string, } | { "event": "group-message-received", 
/**
 * The group.
 */
groupId: string, 
/**
 * The text, with its author (the peer of the session it arrived on).
 */
message: GroupMessage, } | { "event": "group-roster-changed", 
/**
 * The group.
 */
groupId: string, 
/**
 * Whether we are (still) a member.
 */
isMember: boolean, } | { "event": "group-message-state", 
/**
 * The group.
 */
groupId: string, 
/**
 * The message.
 */
messageId: string, 
/**
 * Its state: the least advanced of its copies that did not fail (`docs/engine.md`
 * § Groups).
 */
state: MessageState, 
/**
 * Copies made (members it was sealed to).
 */
recipients: number, 
/**
 * Copies delivered.
 */
deliveredTo: number, 
/**
 * Copies read.
 */
readBy: number, } | { "event": "messages-expired", 
/**
 * The conversation.
 */
contactId: string, 
/**
 * The deleted messages.
 */
messageIds: Array<string>, } | { "event": "group-messages-expired", 
/**
 * The group.
 */
groupId: string, 
/**
 * The deleted messages.
 */
messageIds: Array<string>, };
