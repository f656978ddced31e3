//! Build script: lets tauri-build read `tauri.conf.json`, the capabilities and the icons, and
//! generate the permission files that `tauri::generate_context!` embeds.
//!
//! The app manifest lists every IPC command, so each one gets an `allow-…` permission and is
//! callable only where `capabilities/main-window.json` allows it (least privilege: a command not
//! listed there is refused even though it is registered).

const COMMANDS: &[&str] = &[
    "app_status",
    "onboard",
    "get_profile",
    "set_display_name",
    "list_chats",
    "get_messages",
    "search_messages",
    "send_message",
    "set_chat_timer",
    "send_attachment",
    "get_attachments",
    "download_attachment",
    "cancel_attachment",
    "save_attachment",
    "attachment_preview",
    "mark_read",
    "create_invite",
    "list_invites",
    "revoke_invite",
    "preview_invite",
    "accept_invite",
    "get_safety_number",
    "set_verified",
    "accept_key_change",
    "reject_key_change",
    "block_contact",
    "repair_session",
    "delete_contact",
    "rename_contact",
    "take_pending_invite",
    "get_settings",
    "update_settings",
    "set_relay_password",
    "set_socks_proxy",
    "create_group",
    "list_groups",
    "get_group",
    "get_group_messages",
    "send_group_message",
    "send_group_attachment",
    "get_group_attachments",
    "add_group_member",
    "remove_group_member",
    "promote_group_member",
    "rename_group",
    "set_group_timer",
    "leave_group",
    "mark_group_read",
    "export_backup",
    "restore_backup",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        // A build script reports failure by exiting non-zero with the reason on stderr.
        eprintln!("tauri-build failed: {error:#}");
        std::process::exit(1);
    }
}
