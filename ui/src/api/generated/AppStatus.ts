// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.
import type { LocalRelayStatus } from "./LocalRelayStatus";
import type { RelayConnection } from "./RelayConnection";

/**
 * `AppStatus`.
 */
export type AppStatus = { 
/**
 * The profile name.
 */
profile: string, 
/**
 * False until `onboard`.
 */
onboarded: boolean, 
/**
 * The local test relay.
 */
localRelay: LocalRelayStatus, 
/**
 * Every relay connection.
 */
connections: Array<RelayConnection>, };
