// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: change the Rust type and run that test with SEALPOST_WRITE_TS=1.

/**
 * Why a command failed: the closed set of `kind`s the UI has words for (`ui/CONTRACT.md`
 * § Errors says when each happens). The shell sends `{ kind, message }`; `message` is detail.
 */
export type EngineErrorKind = "invalid_input" | "display_name_invalid" | "relay_url_invalid" | "relay_unreachable" | "relay_password_required" | "invite_corrupt" | "invite_expired" | "invite_own" | "invite_used" | "invite_revoked" | "contact_exists" | "contact_not_found" | "contact_blocked" | "key_change_pending" | "message_too_long" | "keychain_unavailable" | "identity_missing" | "database_key_missing" | "storage" | "not_onboarded" | "already_onboarded" | "local_relay_failed" | "group_not_found" | "group_not_admin" | "group_not_member" | "group_already_member" | "group_cannot_remove_admin" | "group_full" | "group_name_invalid" | "backup_wrong_passphrase" | "backup_damaged" | "backup_unsupported" | "backup_passphrase_weak" | "attachment_too_large" | "attachment_not_found" | "attachment_not_ready" | "attachment_tampered" | "attachment_expired" | "internal";
