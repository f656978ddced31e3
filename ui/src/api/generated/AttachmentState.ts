// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * `AttachmentState` as the UI shows it.
 */
export type AttachmentState = "offered" | "uploading" | "downloading" | "complete" | "failed" | "cancelled";
