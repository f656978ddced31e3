//! The IPC commands the UI calls (`ui/src/api/commands.ts` has one typed wrapper per command,
//! over the TypeScript types generated from the Rust ones into `ui/src/api/generated/`;
//! `ui/CONTRACT.md` says what the types cannot).
//!
//! Each command is a few lines: take the open profile from [`Shell`], call the engine (or the
//! [`sealpost_client::App`] facade for what involves the local relay), and map the error to
//! [`CommandError`]. Nothing else happens here.
//!
//! Rules for what goes here:
//! - No secret crosses IPC (`ARCHITECTURE.md` § Invariants): the view types of
//!   `sealpost_client::engine::views` hold no key material. Invite text, safety numbers and message
//!   text may cross.
//! - Command names are snake_case and match the wrappers in `ui/src/api/commands.ts`; they are
//!   listed in `build.rs` (the app manifest) and allowed one by one in
//!   `capabilities/main-window.json`.
//! - Keep commands in this module: a `#[tauri::command] pub fn` at the crate root collides with
//!   the `__cmd__` item that Tauri generates (E0255).

use sealpost_client::backup::{BackupProgress, BackupSummary, Passphrase};
use sealpost_client::engine::search::SearchResultsView;
use sealpost_client::engine::{
    AttachmentView, ChatView, ErrorKind, GroupMessageView, GroupView, InvitePreview, InviteView,
    LocalRelaySettings, MessagePage, MessageView, NotificationSettings, ProfileView, RelayChoice,
    RelayPassword, SafetyNumberView, Settings,
};
use sealpost_client::{AppError, AppStatus, EngineError};
use serde::Serialize;
use tauri::ipc::{Request, Response};
use tauri::{AppHandle, Emitter, State};

use crate::file_ipc::{FileTarget, FileUpload};
use crate::shell::{Shell, refresh_unread};
use crate::window::MAIN_WINDOW;

/// What every command returns.
pub type CommandResult<T> = Result<T, CommandError>;

/// The error every command rejects with; the UI reads it as `EngineError { kind, message }`
/// (generated: `ui/src/api/generated/EngineError.ts`). `kind` is one of the closed set
/// [`ErrorKind`], which the UI turns into words; `message` is detail for logs, never key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(rename = "EngineError")]
pub struct CommandError {
    /// Stable machine-readable code, e.g. `invite_used`.
    pub kind: ErrorKind,
    /// Detail for logs and bug reports.
    pub message: String,
}

impl CommandError {
    /// An error of `kind` with a detail `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// An error whose kind is given by its code; a code outside the closed set is `internal`.
    fn from_code(code: &str, message: String) -> Self {
        Self::new(
            ErrorKind::from_code(code).unwrap_or(ErrorKind::Internal),
            message,
        )
    }
}

impl From<EngineError> for CommandError {
    fn from(error: EngineError) -> Self {
        Self::from_code(error.kind(), error.to_string())
    }
}

impl From<AppError> for CommandError {
    fn from(error: AppError) -> Self {
        Self::from_code(error.kind(), error.to_string())
    }
}

/// `app_status`: profile, phase, local relay and connections.
#[tauri::command]
pub async fn app_status(handle: AppHandle, shell: State<'_, Shell>) -> CommandResult<AppStatus> {
    Ok(shell.app(&handle).await?.status().await?)
}

/// `onboard`: display name and first relay (the local relay is started for `{kind: "local"}`).
#[tauri::command]
pub async fn onboard(
    handle: AppHandle,
    shell: State<'_, Shell>,
    display_name: String,
    relay: RelayChoice,
) -> CommandResult<ProfileView> {
    let app = shell.app(&handle).await?;
    Ok(app.onboard(&display_name, relay).await?)
}

/// `get_profile`.
#[tauri::command]
pub async fn get_profile(handle: AppHandle, shell: State<'_, Shell>) -> CommandResult<ProfileView> {
    Ok(shell.app(&handle).await?.engine().get_profile().await?)
}

/// `set_display_name`.
#[tauri::command]
pub async fn set_display_name(
    handle: AppHandle,
    shell: State<'_, Shell>,
    display_name: String,
) -> CommandResult<ProfileView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.set_display_name(&display_name).await?)
}

/// `list_chats`: newest activity first.
#[tauri::command]
pub async fn list_chats(
    handle: AppHandle,
    shell: State<'_, Shell>,
) -> CommandResult<Vec<ChatView>> {
    Ok(shell.app(&handle).await?.engine().list_chats().await?)
}

/// `get_messages`: one page of history, older than `before_seq`.
#[tauri::command]
pub async fn get_messages(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
    before_seq: Option<u64>,
    limit: u32,
) -> CommandResult<MessagePage> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.get_messages(&contact_id, before_seq, limit).await?)
}

/// `search_messages`: a page of messages matching `query`, newest first (`docs/engine.md` §
/// Search).
#[tauri::command]
pub async fn search_messages(
    handle: AppHandle,
    shell: State<'_, Shell>,
    query: String,
    limit: u32,
    before: Option<String>,
) -> CommandResult<SearchResultsView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine
        .search_messages(&query, limit, before.as_deref())
        .await?)
}

/// `set_chat_timer`: the chat's disappearing timer for both sides, seconds (0 = off; `docs/engine.md`
/// § Disappearing messages); returns the system line.
#[tauri::command]
pub async fn set_chat_timer(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
    seconds: u32,
) -> CommandResult<MessageView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.set_chat_timer(&contact_id, seconds).await?)
}

/// `send_attachment`: the file's bytes are the raw request body, its contact, name and type
/// percent-encoded headers ([`FileUpload`]). An image is stripped of its metadata; a large file
/// uploads in the background (`attachment-updated` events), a small one is sent at once.
#[tauri::command]
pub async fn send_attachment(
    handle: AppHandle,
    shell: State<'_, Shell>,
    request: Request<'_>,
) -> CommandResult<AttachmentView> {
    let FileUpload { chat_id, file } = FileUpload::from_request(&request, FileTarget::Contact)?;
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.send_attachment(&chat_id, file).await?)
}

/// `get_attachments`: every attachment of a conversation.
#[tauri::command]
pub async fn get_attachments(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
) -> CommandResult<Vec<AttachmentView>> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.get_attachments(&contact_id).await?)
}

/// `download_attachment`: fetch a received file (progress in `attachment-updated`).
#[tauri::command]
pub async fn download_attachment(
    handle: AppHandle,
    shell: State<'_, Shell>,
    attachment_id: String,
) -> CommandResult<AttachmentView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.download_attachment(&attachment_id).await?)
}

/// `cancel_attachment`: stop an upload or a download.
#[tauri::command]
pub async fn cancel_attachment(
    handle: AppHandle,
    shell: State<'_, Shell>,
    attachment_id: String,
) -> CommandResult<AttachmentView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.cancel_attachment(&attachment_id).await?)
}

/// `save_attachment`: the file's plaintext into the user's Downloads folder (no dialog; see
/// [`download_dir`]); returns its path.
#[tauri::command]
pub async fn save_attachment(
    handle: AppHandle,
    shell: State<'_, Shell>,
    attachment_id: String,
) -> CommandResult<String> {
    let engine = shell.app(&handle).await?.engine();
    let folder = download_dir(&handle)?;
    let path = engine.save_attachment(&attachment_id, &folder).await?;
    Ok(path.display().to_string())
}

/// Where saved attachments go: `SEALPOST_DOWNLOAD_DIR` when set (the WebDriver tests), else the
/// user's Downloads folder, else `~/Downloads` (a desktop without XDG user directories has no
/// Downloads folder configured, and saving must still work).
fn download_dir(handle: &AppHandle) -> Result<std::path::PathBuf, CommandError> {
    use tauri::Manager;
    if let Some(folder) = crate::launch::download_dir_from_env() {
        return Ok(folder);
    }
    let path = handle.path();
    path.download_dir()
        .or_else(|_| path.home_dir().map(|home| home.join("Downloads")))
        .map_err(|e| CommandError::new(ErrorKind::Storage, e.to_string()))
}

/// `attachment_preview`: a PNG the engine encoded from the image (or its thumbnail), as raw
/// bytes (an `ArrayBuffer` in the UI, not a JSON array).
#[tauri::command]
pub async fn attachment_preview(
    handle: AppHandle,
    shell: State<'_, Shell>,
    attachment_id: String,
) -> CommandResult<Response> {
    let engine = shell.app(&handle).await?.engine();
    Ok(Response::new(
        engine.attachment_preview(&attachment_id).await?,
    ))
}

/// `send_message`: stored and queued; the state moves on through `message-state` events.
#[tauri::command]
pub async fn send_message(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
    text: String,
) -> CommandResult<MessageView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.send_message(&contact_id, &text).await?)
}

/// `mark_read`: marks incoming messages up to `up_to_seq` read (and updates the tray).
#[tauri::command]
pub async fn mark_read(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
    up_to_seq: u64,
) -> CommandResult<()> {
    let engine = shell.app(&handle).await?.engine();
    engine.mark_read(&contact_id, up_to_seq).await?;
    refresh_unread(&handle).await;
    Ok(())
}

/// `create_invite`: a new single-use invite (text and QR).
#[tauri::command]
pub async fn create_invite(
    handle: AppHandle,
    shell: State<'_, Shell>,
) -> CommandResult<InviteView> {
    Ok(shell.app(&handle).await?.engine().create_invite().await?)
}

/// `list_invites`: the open ones, newest first.
#[tauri::command]
pub async fn list_invites(
    handle: AppHandle,
    shell: State<'_, Shell>,
) -> CommandResult<Vec<InviteView>> {
    Ok(shell.app(&handle).await?.engine().list_invites().await?)
}

/// `revoke_invite`.
#[tauri::command]
pub async fn revoke_invite(
    handle: AppHandle,
    shell: State<'_, Shell>,
    id: String,
) -> CommandResult<()> {
    Ok(shell
        .app(&handle)
        .await?
        .engine()
        .revoke_invite(&id)
        .await?)
}

/// `preview_invite`: what accepting would add, without adding anything.
#[tauri::command]
pub async fn preview_invite(
    handle: AppHandle,
    shell: State<'_, Shell>,
    text: String,
) -> CommandResult<InvitePreview> {
    Ok(shell
        .app(&handle)
        .await?
        .engine()
        .preview_invite(&text)
        .await?)
}

/// `accept_invite`: adds the contact and sends the first message.
#[tauri::command]
pub async fn accept_invite(
    handle: AppHandle,
    shell: State<'_, Shell>,
    text: String,
    display_name: String,
) -> CommandResult<ChatView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.accept_invite(&text, &display_name).await?)
}

/// `get_safety_number`: 60 digits and a QR code.
#[tauri::command]
pub async fn get_safety_number(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
) -> CommandResult<SafetyNumberView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.get_safety_number(&contact_id).await?)
}

/// `set_verified`.
#[tauri::command]
pub async fn set_verified(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
    verified: bool,
) -> CommandResult<()> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.set_verified(&contact_id, verified).await?)
}

/// `accept_key_change` (T8): releases sending and clears `verified`.
#[tauri::command]
pub async fn accept_key_change(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
) -> CommandResult<()> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.accept_key_change(&contact_id).await?)
}

/// `reject_key_change` (T8): keeps the old key, drops the held session; releases sending.
#[tauri::command]
pub async fn reject_key_change(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
) -> CommandResult<()> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.reject_key_change(&contact_id).await?)
}

/// `block_contact`.
#[tauri::command]
pub async fn block_contact(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
    blocked: bool,
) -> CommandResult<()> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.block_contact(&contact_id, blocked).await?)
}

/// `repair_session`: the user's own session restart (X3DH, `docs/engine.md` § Session restart).
#[tauri::command]
pub async fn repair_session(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
) -> CommandResult<()> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.repair_session(&contact_id).await?)
}

/// `delete_contact`: also DELETEs its mailboxes on every relay.
#[tauri::command]
pub async fn delete_contact(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
) -> CommandResult<()> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.delete_contact(&contact_id).await?)
}

/// `rename_contact`.
#[tauri::command]
pub async fn rename_contact(
    handle: AppHandle,
    shell: State<'_, Shell>,
    contact_id: String,
    display_name: String,
) -> CommandResult<()> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.rename_contact(&contact_id, &display_name).await?)
}

/// `take_pending_invite`: the link the app started with, once.
#[tauri::command]
pub fn take_pending_invite(shell: State<'_, Shell>) -> Option<String> {
    shell.take_pending_invite()
}

/// `get_settings`.
#[tauri::command]
pub async fn get_settings(handle: AppHandle, shell: State<'_, Shell>) -> CommandResult<Settings> {
    Ok(shell.app(&handle).await?.engine().get_settings().await?)
}

/// `set_socks_proxy`: `IP:port`, or `null` for direct connections. Returns the settings.
#[tauri::command]
pub async fn set_socks_proxy(
    handle: AppHandle,
    shell: State<'_, Shell>,
    address: Option<String>,
) -> CommandResult<Settings> {
    let app = shell.app(&handle).await?;
    Ok(app.engine().set_socks_proxy(address.as_deref()).await?)
}

/// `set_relay_password`: write-only; `null` (or "") removes it. Returns the settings.
#[tauri::command]
pub async fn set_relay_password(
    handle: AppHandle,
    shell: State<'_, Shell>,
    url: String,
    password: Option<RelayPassword>,
) -> CommandResult<Settings> {
    let app = shell.app(&handle).await?;
    Ok(app.engine().set_relay_password(&url, password).await?)
}

/// `update_settings`: the whole object as four top-level arguments; returns it as stored.
#[tauri::command]
pub async fn update_settings(
    handle: AppHandle,
    shell: State<'_, Shell>,
    notifications: NotificationSettings,
    read_receipts: bool,
    local_relay: LocalRelaySettings,
    relays: Vec<String>,
) -> CommandResult<Settings> {
    let settings = Settings {
        notifications,
        read_receipts,
        local_relay,
        relays,
        relays_with_password: Vec::new(),
        socks_proxy: None,
    };
    Ok(shell.app(&handle).await?.update_settings(settings).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_ui_expects() {
        let json =
            serde_json::to_value(CommandError::new(ErrorKind::InviteUsed, "detail")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "kind": "invite_used", "message": "detail" })
        );
    }

    #[test]
    fn engine_errors_keep_their_contract_kind() {
        let error = CommandError::from(EngineError::InviteUsed);
        assert_eq!(error.kind, ErrorKind::InviteUsed);
        assert_eq!(error.message, "the invite was already used");
        let local = CommandError::from(AppError::LocalRelay(
            sealpost_client::local_relay::LocalRelayError::PortZero,
        ));
        assert_eq!(local.kind, ErrorKind::LocalRelayFailed);
    }

    /// Every kind the engine names is in the closed set the UI is generated from: none falls
    /// back to `internal` (each sample's kind is checked, and `internal` only for `Internal`).
    #[test]
    fn every_engine_error_kind_is_in_the_closed_set() {
        let samples = [
            EngineError::InvalidInput(String::new()),
            EngineError::DisplayNameInvalid,
            EngineError::RelayUrlInvalid(String::new()),
            EngineError::RelayPasswordRequired,
            EngineError::InviteExpired,
            EngineError::InviteOwn,
            EngineError::InviteUsed,
            EngineError::InviteRevoked,
            EngineError::ContactExists,
            EngineError::ContactNotFound,
            EngineError::ContactBlocked,
            EngineError::KeyChangePending,
            EngineError::MessageTooLong,
            EngineError::NotOnboarded,
            EngineError::AlreadyOnboarded,
            EngineError::GroupNotFound,
            EngineError::Group(sealpost_client::group::GroupError::NotAdmin),
            EngineError::Group(sealpost_client::group::GroupError::NotMember),
            EngineError::Group(sealpost_client::group::GroupError::AlreadyMember),
            EngineError::Group(sealpost_client::group::GroupError::CannotRemoveAdmin),
            EngineError::Group(sealpost_client::group::GroupError::InvalidInfo),
        ];
        for error in samples {
            let code = error.kind();
            let kind = CommandError::from(error).kind;
            assert_ne!(kind, ErrorKind::Internal, "{code} is not in ErrorKind");
            assert_eq!(serde_json::to_value(kind).unwrap(), code);
        }
        let unreadable = serde_json::from_str::<u8>("not a number").unwrap_err();
        let internal = CommandError::from(EngineError::Settings(unreadable));
        assert_eq!(internal.kind, ErrorKind::Internal);
    }
}

// ---- Groups (`docs/engine.md` § Groups): each command calls the engine and refreshes the tray
// where unread counts can change. ----

/// `create_group`: a new group with us as its admin and these contacts as members.
#[tauri::command]
pub async fn create_group(
    handle: AppHandle,
    shell: State<'_, Shell>,
    name: String,
    description: String,
    contact_ids: Vec<String>,
) -> CommandResult<GroupView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine
        .create_group(&name, &description, &contact_ids)
        .await?)
}

/// `list_groups`: every group, most recent activity first.
#[tauri::command]
pub async fn list_groups(
    handle: AppHandle,
    shell: State<'_, Shell>,
) -> CommandResult<Vec<GroupView>> {
    Ok(shell.app(&handle).await?.engine().list_groups().await?)
}

/// `get_group`: one group with its members and roles.
#[tauri::command]
pub async fn get_group(
    handle: AppHandle,
    shell: State<'_, Shell>,
    group_id: String,
) -> CommandResult<GroupView> {
    Ok(shell
        .app(&handle)
        .await?
        .engine()
        .get_group(&group_id)
        .await?)
}

/// `get_group_messages`: at most `limit` messages older than `before_seq`, oldest first.
#[tauri::command]
pub async fn get_group_messages(
    handle: AppHandle,
    shell: State<'_, Shell>,
    group_id: String,
    before_seq: Option<u64>,
    limit: u32,
) -> CommandResult<Vec<GroupMessageView>> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine
        .get_group_messages(&group_id, before_seq, limit)
        .await?)
}

/// `send_group_message`: stored, sealed once per member, queued.
#[tauri::command]
pub async fn send_group_message(
    handle: AppHandle,
    shell: State<'_, Shell>,
    group_id: String,
    text: String,
) -> CommandResult<GroupMessageView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.send_group_message(&group_id, &text).await?)
}

/// `send_group_attachment`: a file for every member, uploaded once (progress in
/// `attachment-updated`); its bytes are the raw request body, its group, name and type
/// percent-encoded headers ([`FileUpload`]).
#[tauri::command]
pub async fn send_group_attachment(
    handle: AppHandle,
    shell: State<'_, Shell>,
    request: Request<'_>,
) -> CommandResult<AttachmentView> {
    let FileUpload { chat_id, file } = FileUpload::from_request(&request, FileTarget::Group)?;
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.send_group_attachment(&chat_id, file).await?)
}

/// `get_group_attachments`: every attachment of a group.
#[tauri::command]
pub async fn get_group_attachments(
    handle: AppHandle,
    shell: State<'_, Shell>,
    group_id: String,
) -> CommandResult<Vec<AttachmentView>> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.get_group_attachments(&group_id).await?)
}

/// `add_group_member` (admin): adds a contact.
#[tauri::command]
pub async fn add_group_member(
    handle: AppHandle,
    shell: State<'_, Shell>,
    group_id: String,
    contact_id: String,
) -> CommandResult<GroupView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.add_group_member(&group_id, &contact_id).await?)
}

/// `remove_group_member` (admin): removes the member with this identity key.
#[tauri::command]
pub async fn remove_group_member(
    handle: AppHandle,
    shell: State<'_, Shell>,
    group_id: String,
    member_key: String,
) -> CommandResult<GroupView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.remove_group_member(&group_id, &member_key).await?)
}

/// `promote_group_member` (admin): makes a member an admin.
#[tauri::command]
pub async fn promote_group_member(
    handle: AppHandle,
    shell: State<'_, Shell>,
    group_id: String,
    member_key: String,
) -> CommandResult<GroupView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.promote_group_member(&group_id, &member_key).await?)
}

/// `rename_group` (admin): a new name and description.
#[tauri::command]
pub async fn rename_group(
    handle: AppHandle,
    shell: State<'_, Shell>,
    group_id: String,
    name: String,
    description: String,
) -> CommandResult<GroupView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.rename_group(&group_id, &name, &description).await?)
}

/// `set_group_timer` (admin): the group's disappearing timer for every member, seconds (0 = off;
/// `docs/engine.md` § Disappearing messages).
#[tauri::command]
pub async fn set_group_timer(
    handle: AppHandle,
    shell: State<'_, Shell>,
    group_id: String,
    seconds: u32,
) -> CommandResult<GroupView> {
    let engine = shell.app(&handle).await?.engine();
    Ok(engine.set_group_timer(&group_id, seconds).await?)
}

/// `leave_group`: we leave; the others are told.
#[tauri::command]
pub async fn leave_group(
    handle: AppHandle,
    shell: State<'_, Shell>,
    group_id: String,
) -> CommandResult<GroupView> {
    Ok(shell
        .app(&handle)
        .await?
        .engine()
        .leave_group(&group_id)
        .await?)
}

/// `mark_group_read`: every incoming text read (and the tray updated).
#[tauri::command]
pub async fn mark_group_read(
    handle: AppHandle,
    shell: State<'_, Shell>,
    group_id: String,
) -> CommandResult<()> {
    shell
        .app(&handle)
        .await?
        .engine()
        .mark_group_read(&group_id)
        .await?;
    refresh_unread(&handle).await;
    Ok(())
}

/// `export_backup`: the whole profile to `path` (empty: the Documents folder), sealed under
/// `passphrase`, which must pass the strength check; progress as `backup-progress` events.
#[tauri::command]
pub async fn export_backup(
    handle: AppHandle,
    shell: State<'_, Shell>,
    path: String,
    passphrase: String,
) -> CommandResult<BackupSummary> {
    let passphrase = Passphrase::checked_owned(passphrase).map_err(AppError::from)?;
    let app = shell.app(&handle).await?;
    let output = (!path.is_empty()).then(|| path.into());
    Ok(app
        .export_backup(output, passphrase, progress_events(&handle))
        .await?)
}

/// `restore_backup`: onboarding's "Restore from a backup"; on success the app relaunches and
/// opens the restored profile. Progress as `backup-progress` events.
#[tauri::command]
pub async fn restore_backup(
    handle: AppHandle,
    shell: State<'_, Shell>,
    path: String,
    passphrase: String,
) -> CommandResult<()> {
    let passphrase = Passphrase::from_owned(passphrase);
    let app = shell.app(&handle).await?;
    app.restore_backup(path.into(), passphrase, progress_events(&handle))
        .await?;
    handle.restart()
}

/// Emits `backup-progress` to the window each time the percentage changes.
fn progress_events(handle: &AppHandle) -> impl FnMut(BackupProgress) + Send + 'static {
    let handle = handle.clone();
    let mut last = None;
    move |progress: BackupProgress| {
        let percent = (progress.phase, progress.done * 100 / progress.total.max(1));
        if last.replace(percent) != Some(percent) {
            let _ = handle.emit_to(MAIN_WINDOW, "backup-progress", progress);
        }
    }
}
