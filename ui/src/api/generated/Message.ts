// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { MessageState } from "./MessageState";

/**
 * `Message`: one message of a conversation.
 */
export type Message = { 
/**
 * Opaque id.
 */
id: string, 
/**
 * The conversation order key: unique within the conversation, increasing, below 2^53. The
 * UI orders by it, never by time.
 */
seq: number, 
/**
 * Written by us.
 */
outgoing: boolean, 
/**
 * Plain text from a person: always rendered as a text node, never as markup.
 */
text: string, 
/**
 * When the sender sent it (the sender's clock for incoming messages), Unix ms.
 */
sentAt: number, 
/**
 * When this device received it, Unix ms; null for outgoing messages.
 */
receivedAt: number | null, 
/**
 * Delivery state.
 */
state: MessageState, 
/**
 * The disappearing timer it was sent with, seconds; null when none (`docs/engine.md` §
 * Disappearing messages).
 */
timerSeconds: number | null, 
/**
 * When it disappears from this device, Unix ms (our clock); null when it has no timer.
 */
expiresAt: number | null, 
/**
 * A system line, not a text: the chat's disappearing timer was set to this many seconds
 * (0 = off) by the message's author. `text` is empty.
 */
timerChange: number | null, };
