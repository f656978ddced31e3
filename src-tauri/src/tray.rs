//! The tray icon: show/hide the window, quit, and a tooltip naming the profile and the number of
//! unread messages (never who sent them or what they say).
//!
//! Creating a tray can fail in two ways on Linux: with no StatusNotifier host it silently does
//! nothing, and with the appindicator library missing at run time the tray library **panics**.
//! Neither may stop the app, so creation is guarded: failures and panics are logged and the app
//! goes on without a tray (the window's close button still quits).

use std::panic::{AssertUnwindSafe, catch_unwind};

use tauri::{
    AppHandle, Manager, Runtime,
    menu::{Menu, MenuItem},
    tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent},
};

use crate::{
    launch::LaunchOptions,
    window::{MAIN_WINDOW, show_main_window},
};

const TOGGLE_ID: &str = "toggle";
const QUIT_ID: &str = "quit";
const TRAY_ID: &str = "main";

/// Creates the tray icon; logs and carries on if the desktop cannot show one.
pub fn install<R: Runtime>(app: &AppHandle<R>, options: &LaunchOptions) {
    let tooltip = tooltip(options, 0);
    match catch_unwind(AssertUnwindSafe(|| build(app, &tooltip))) {
        Ok(Ok(())) => tracing::debug!("tray icon created"),
        Ok(Err(error)) => tracing::warn!(%error, "no tray icon: creating it failed"),
        Err(_) => tracing::warn!(
            "no tray icon: the tray library panicked (is libayatana-appindicator3 installed?)"
        ),
    }
}

/// True once the tray icon exists.
pub fn is_installed<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.tray_by_id(TRAY_ID).is_some()
}

/// The tray tooltip: "Sealpost", the profile name unless it is the default one, and the number
/// of unread messages when there are any.
pub fn tooltip(options: &LaunchOptions, unread: u64) -> String {
    let mut text = if options.is_default_profile() {
        "Sealpost".to_owned()
    } else {
        format!("Sealpost ({})", options.profile)
    };
    if unread > 0 {
        text.push_str(&format!(" \u{2014} {unread} unread"));
    }
    text
}

/// Shows the unread count in the tooltip (a no-op when there is no tray).
pub fn set_unread<R: Runtime>(app: &AppHandle<R>, options: &LaunchOptions, unread: u64) {
    if let Some(tray) = app.tray_by_id(TRAY_ID)
        && let Err(error) = tray.set_tooltip(Some(tooltip(options, unread)))
    {
        tracing::debug!(%error, "could not update the tray tooltip");
    }
}

fn build<R: Runtime>(app: &AppHandle<R>, tooltip: &str) -> tauri::Result<()> {
    let toggle = MenuItem::with_id(app, TOGGLE_ID, "Show/Hide Sealpost", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, QUIT_ID, "Quit Sealpost", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&toggle, &quit])?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip(tooltip)
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id.as_ref() {
            TOGGLE_ID => toggle_main_window(app),
            QUIT_ID => app.exit(0),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                toggle_main_window(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)?;
    Ok(())
}

fn toggle_main_window<R: Runtime>(app: &AppHandle<R>) {
    let Some(window) = app.get_webview_window(MAIN_WINDOW) else {
        return;
    };
    match window.is_visible() {
        Ok(true) => {
            if let Err(error) = window.hide() {
                tracing::warn!(%error, "could not hide the window");
            }
        }
        _ => show_main_window(app),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(profile: &str) -> LaunchOptions {
        let args = ["sealpost", "--profile", profile];
        let line = crate::launch::CommandLine::try_parse_args(args).unwrap();
        let root = std::env::temp_dir().join("sealpost-tray-test");
        let profiles = sealpost_client::ProfilesConfig {
            data_root: Some(root),
        };
        LaunchOptions {
            dirs: sealpost_client::ProfileDirs::resolve(&profiles, &line.profile).unwrap(),
            profile: line.profile,
            profiles,
            local_relay: sealpost_client::LocalRelayMode::FromSettings,
            local_relay_port: None,
            extra_ca_pem: None,
            invite_link: None,
        }
    }

    #[test]
    fn tooltip_names_non_default_profiles_and_counts_unread() {
        assert_eq!(tooltip(&options("default"), 0), "Sealpost");
        assert_eq!(tooltip(&options("alice"), 0), "Sealpost (alice)");
        assert_eq!(
            tooltip(&options("alice"), 3),
            "Sealpost (alice) \u{2014} 3 unread"
        );
    }
}
