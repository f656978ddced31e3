// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * A file to send. It is not JSON across IPC: the UI's `sendAttachment` wrapper sends `bytes` as
 * the raw request body and the other fields as percent-encoded headers, which the app decodes
 * into this (`ui/CONTRACT.md` § Files across IPC).
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
 * Its bytes (the raw body of the request).
 */
bytes: Uint8Array, };
