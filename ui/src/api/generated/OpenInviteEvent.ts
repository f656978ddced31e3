// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * Payload of [`OPEN_INVITE_EVENT`] (generated as `ui/src/api/generated/OpenInviteEvent.ts`).
 */
export type OpenInviteEvent = { 
/**
 * The link's text, to be shown in the add-contact form.
 */
text: string, };
