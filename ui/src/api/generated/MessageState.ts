// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * `MessageState`: outgoing `queued → on_relay → delivered → read`, or `failed`; incoming
 * `delivered` until marked read, then `read`.
 */
export type MessageState = "queued" | "on_relay" | "delivered" | "read" | "failed";
