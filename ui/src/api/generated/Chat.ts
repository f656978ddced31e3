// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { LastMessage } from "./LastMessage";

/**
 * `Chat`: one row of the chat list (one contact and its 1:1 conversation).
 */
export type Chat = { 
/**
 * Opaque contact id.
 */
contactId: string, 
/**
 * The name the user gave this contact (prefilled from the invite).
 */
displayName: string, 
/**
 * The newest message.
 */
lastMessage: LastMessage | null, 
/**
 * Incoming messages not yet marked read.
 */
unread: number, 
/**
 * The user compared safety numbers and marked this contact verified.
 */
verified: boolean, 
/**
 * A new identity key arrived (T8): sending is blocked until `accept_key_change` or
 * `reject_key_change`.
 */
keyChanged: boolean, 
/**
 * Blocked.
 */
blocked: boolean, 
/**
 * The chat's disappearing timer, seconds (0 = off; `docs/engine.md` § Disappearing
 * messages).
 */
timerSeconds: number, };
