//! `sealpost:` invite links. However a link arrives, it ends up in the deep-link plugin (which
//! keeps the start-up link for `getCurrent` and fires `deep-link://new-url`), and from there it is
//! forwarded to the main window as an [`OPEN_INVITE_EVENT`] with an [`OpenInvite`] payload. The
//! UI only fills the add-contact form with it; nothing is added by itself (`docs/engine.md` §
//! Invites).
//!
//! How links arrive:
//! - **App not running:** the OS starts `sealpost URL` (URL as the only argument on Linux and
//!   Windows). The plugin records it at start; the UI asks for it once it is listening
//!   (`plugin:deep-link|get_current`, allowed by the capability). If the link came with other
//!   arguments (`sealpost --profile alice URL`), [`forward_startup_link`] hands it to the plugin.
//! - **App running (same profile):** the second instance forwards its arguments over D-Bus to the
//!   single-instance plugin, whose `deep-link` feature passes a lone URL to the deep-link plugin;
//!   [`on_second_instance`] handles the URL-with-other-arguments case and brings the window forward.
//! - **macOS:** the OS delivers an "opened" event to the running app; the plugin handles it.

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_deep_link::DeepLinkExt;

use crate::{
    launch::{CommandLine, InviteLink, LaunchOptions},
    shell::Shell,
    window::{MAIN_WINDOW, show_main_window},
};

/// Event the main window receives when an invite link was opened.
pub const OPEN_INVITE_EVENT: &str = "open-invite";

/// Payload of [`OPEN_INVITE_EVENT`] (generated as `ui/src/api/generated/OpenInviteEvent.ts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(rename = "OpenInviteEvent")]
pub struct OpenInvite {
    /// The link's text, to be shown in the add-contact form.
    pub text: String,
}

/// Forwards every link the deep-link plugin sees to the main window and brings it forward.
pub fn forward_opened_links<R: Runtime>(app: &AppHandle<R>) {
    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            match url.as_str().parse::<InviteLink>() {
                Ok(link) => {
                    show_main_window(&handle);
                    // Kept for `take_pending_invite` too, in case the UI is not listening yet.
                    handle
                        .state::<Shell>()
                        .set_pending_invite(link.as_str().to_owned());
                    let payload = OpenInvite {
                        text: link.as_str().to_owned(),
                    };
                    if let Err(error) = handle.emit_to(MAIN_WINDOW, OPEN_INVITE_EVENT, payload) {
                        tracing::warn!(%error, "could not forward an opened invite link");
                    }
                }
                Err(error) => tracing::warn!(%error, "ignored an opened link"),
            }
        }
    });
}

/// Hands the start-up link to the deep-link plugin when the plugin did not take it itself (it
/// looks only at a lone argument).
pub fn forward_startup_link<R: Runtime>(app: &AppHandle<R>, options: &LaunchOptions) {
    if let Some(link) = &options.invite_link
        && std::env::args_os().count() > 2
    {
        app.deep_link()
            .handle_cli_arguments(["sealpost", link.as_str()].into_iter());
    }
}

/// Single-instance callback: another `sealpost` was started for this profile and exited after
/// passing us its arguments. Brings the window forward and forwards a link that came with other
/// arguments (a lone link was already passed to the deep-link plugin).
pub fn on_second_instance<R: Runtime>(app: &AppHandle<R>, args: Vec<String>, _cwd: String) {
    show_main_window(app);
    if args.len() <= 2 {
        return;
    }
    match CommandLine::try_parse_args(&args) {
        Ok(CommandLine {
            invite_link: Some(link),
            ..
        }) => app
            .deep_link()
            .handle_cli_arguments(["sealpost", link.as_str()].into_iter()),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "ignored a second start's arguments"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_matches_the_ui_type() {
        let json = serde_json::to_value(OpenInvite {
            text: "sealpost:abc".to_owned(),
        })
        .unwrap();
        assert_eq!(json, serde_json::json!({ "text": "sealpost:abc" }));
    }
}
