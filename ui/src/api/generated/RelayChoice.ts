// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * `RelayChoice` for onboarding. Only ever comes from the UI (never serialised back: it may
 * carry a relay password).
 */
export type RelayChoice = { "kind": "local" } | { "kind": "remote", 
/**
 * `wss://…` (or `ws://` to loopback).
 */
url: string, 
/**
 * The relay's password, if it has one (stored encrypted, used on CREATE).
 */
password?: string, };
