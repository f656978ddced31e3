// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { MessageState } from "./MessageState";

/**
 * One group message as the app shows it.
 */
export type GroupMessage = { 
/**
 * Its id.
 */
id: string, 
/**
 * The author's identity key (hex): the peer of the session it arrived on.
 */
authorKey: string, 
/**
 * The author's contact name, if a contact.
 */
authorName: string | null, 
/**
 * Ours.
 */
outgoing: boolean, 
/**
 * `true` for a roster change (a system line), `false` for a text. A roster change's `text`
 * is a key the UI words: `created`, `joined`, `left`, or space-separated `added:KEY`,
 * `removed:KEY`, `promoted:KEY`, `renamed` and `timer:SECONDS` (the disappearing timer was
 * set; 0 = off).
 */
isRosterChange: boolean, 
/**
 * Its place in the group.
 */
seq: number, 
/**
 * The text (a system line's description for a roster change).
 */
text: string, 
/**
 * Sent at (Unix ms; the sender's claim for theirs).
 */
sentAt: number, 
/**
 * Ours: the least advanced of its copies that did not fail (on relay until every member's
 * device has it, delivered until every member read it; `docs/engine.md` § Groups);
 * theirs: received or read.
 */
state: MessageState, 
/**
 * Ours: copies made (members it was sealed to).
 */
recipients: number, 
/**
 * Ours: copies delivered.
 */
deliveredTo: number, 
/**
 * Ours: copies read.
 */
readBy: number, 
/**
 * The disappearing timer it was sent with, seconds; `None` without one.
 */
timerSeconds: number | null, 
/**
 * When it disappears (Unix ms, this device's clock).
 */
expiresAt: number | null, };
