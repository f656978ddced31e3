// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * `LocalRelayStatus`.
 */
export type LocalRelayStatus = { 
/**
 * Local test relay mode is on (by setting or by `--local-relay`).
 */
enabled: boolean, 
/**
 * A local relay is in use (hosted here or by another profile).
 */
running: boolean, 
/**
 * Its URL when running.
 */
url: string | null, };
