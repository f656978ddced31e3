// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * `Settings.notifications`.
 */
export type NotificationSettings = { 
/**
 * Show notifications.
 */
enabled: boolean, 
/**
 * Show message text in them (default off, §3a rule 8).
 */
showText: boolean, };
