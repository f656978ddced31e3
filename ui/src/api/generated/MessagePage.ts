// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { Message } from "./Message";

/**
 * `MessagePage`: one page of history from `get_messages`.
 */
export type MessagePage = { 
/**
 * At most `limit` messages with `seq < beforeSeq` (the newest when `beforeSeq` is null).
 */
messages: Array<Message>, 
/**
 * Older messages exist.
 */
hasMore: boolean, };
