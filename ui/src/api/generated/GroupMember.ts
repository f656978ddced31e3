// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * One member as the app shows it.
 */
export type GroupMember = { 
/**
 * The member's identity key (128 hex digits): the handle for remove and promote.
 */
key: string, 
/**
 * `true` for an admin.
 */
isAdmin: boolean, 
/**
 * The contact holding the member's addresses, if it is one of ours.
 */
contactId: string | null, 
/**
 * That contact's name.
 */
displayName: string | null, 
/**
 * Whether this is us.
 */
isMe: boolean, };
