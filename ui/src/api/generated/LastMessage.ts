// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * `LastMessage`: the newest message, shown in the chat list.
 */
export type LastMessage = { 
/**
 * The text.
 */
text: string, 
/**
 * Unix ms.
 */
at: number, 
/**
 * Written by us.
 */
outgoing: boolean, };
