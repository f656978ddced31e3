// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * What an export wrote.
 */
export type BackupSummary = { 
/**
 * The file written.
 */
path: string, 
/**
 * Its size in bytes.
 */
bytes: number, };
