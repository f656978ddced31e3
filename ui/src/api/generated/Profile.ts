// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * `Profile`: the user's own profile. The display name stays on this device and goes only to
 * contacts.
 */
export type Profile = { 
/**
 * The name shown to contacts.
 */
displayName: string, 
/**
 * The profile name (`--profile`).
 */
profile: string, 
/**
 * The relays new mailboxes are made on.
 */
relays: Array<string>, };
