// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * `Settings.localRelay`.
 */
export type LocalRelaySettings = { 
/**
 * Run the local test relay.
 */
enabled: boolean, 
/**
 * Its fixed loopback port.
 */
port: number, };
