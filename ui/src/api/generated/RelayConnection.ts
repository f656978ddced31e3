// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { ConnectionState } from "./ConnectionState";

/**
 * `RelayConnection`: one relay connection as the engine sees it.
 */
export type RelayConnection = { 
/**
 * The relay.
 */
relayUrl: string, 
/**
 * Its state.
 */
state: ConnectionState, 
/**
 * Seconds until the next reconnect attempt when offline, else null.
 */
retryInSeconds: number | null, };
