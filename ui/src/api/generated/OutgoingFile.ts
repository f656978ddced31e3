// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * A file to send.
 */
export type OutgoingFile = { 
/**
 * Its name.
 */
fileName: string, 
/**
 * Its media type as the UI knows it (a hint; images are recognised by their bytes).
 */
mediaType: string, 
/**
 * Its bytes.
 */
bytes: number[], };
