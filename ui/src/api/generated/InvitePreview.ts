// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * `InvitePreview`: what an invite says, shown before the user accepts it.
 */
export type InvitePreview = { 
/**
 * The name the inviter gave themselves (a suggestion; the user may change it).
 */
displayName: string, 
/**
 * The first 15 digits of the safety number, in groups of 5.
 */
safetyPreview: string, 
/**
 * The relays the invite names.
 */
relays: Array<string>, 
/**
 * Unix ms.
 */
expiresAt: number, };
