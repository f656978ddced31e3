//! The main window. It is created in code rather than in `tauri.conf.json` so that the webview's
//! data directory (local storage, caches, cookies) lives inside the profile directory
//! (`docs/engine.md` § Profiles), and so that the webview can never navigate away from the app's
//! own pages.

use tauri::{
    Manager, Runtime, Url, WebviewUrl, WebviewWindow, WebviewWindowBuilder,
    webview::NewWindowResponse,
};

use crate::launch::LaunchOptions;
use crate::shell::Shell;

/// Label of the one app window (capabilities refer to it).
pub const MAIN_WINDOW: &str = "main";

/// Creates the main window showing the app's bundled UI (`index.html` from `frontendDist`),
/// handing the page the first screen's data when the profile is open by then
/// (`crate::first_screen`).
pub fn create_main_window<R: Runtime, M: Manager<R>>(
    manager: &M,
    options: &LaunchOptions,
) -> tauri::Result<WebviewWindow<R>> {
    let title = if options.is_default_profile() {
        "Sealpost".to_owned()
    } else {
        format!("Sealpost ({})", options.profile)
    };
    let handle = manager.app_handle().clone();
    WebviewWindowBuilder::new(manager, MAIN_WINDOW, WebviewUrl::App("index.html".into()))
        .title(title)
        .inner_size(980.0, 700.0)
        .min_inner_size(400.0, 480.0)
        .data_directory(options.dirs.webview_dir())
        // No remote content: the webview stays on the app's own pages, and links in messages never
        // open a window (they are shown as text, never fetched).
        .on_navigation(|url| {
            let allowed = is_app_url(url);
            if !allowed {
                tracing::warn!(
                    scheme = url.scheme(),
                    "blocked navigation away from the app"
                );
            }
            allowed
        })
        .on_new_window(|_url, _features| NewWindowResponse::Deny)
        .on_web_resource_request(move |request, response| {
            let shell = handle.state::<Shell>();
            crate::first_screen::add_to_page(shell.first_screen(), request.uri().path(), response);
        })
        .build()
}

/// Shows, unminimises and focuses the main window, if it exists.
pub fn show_main_window<R: Runtime, M: Manager<R>>(manager: &M) {
    if let Some(window) = manager.get_webview_window(MAIN_WINDOW) {
        let results = [window.show(), window.unminimize(), window.set_focus()];
        for error in results.into_iter().filter_map(Result::err) {
            tracing::warn!(%error, "could not bring the window forward");
        }
    }
}

/// True for the URLs Tauri serves the bundled UI from: `tauri://localhost` (Linux, macOS) and
/// `http(s)://tauri.localhost` (Windows).
pub fn is_app_url(url: &Url) -> bool {
    match url.scheme() {
        "tauri" => url.host_str() == Some("localhost"),
        "http" | "https" => url.host_str() == Some("tauri.localhost"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("tauri://localhost/index.html", true ; "linux and macos app url")]
    #[test_case("http://tauri.localhost/", true ; "windows app url")]
    #[test_case("https://tauri.localhost/assets/x.js", true ; "windows https app url")]
    #[test_case("https://example.com/", false ; "remote site")]
    #[test_case("http://localhost:5173/", false ; "dev server is not used")]
    #[test_case("tauri://evil.example/", false ; "other host on the app scheme")]
    #[test_case("file:///etc/passwd", false ; "local file")]
    #[test_case("sealpost:abc", false ; "invite link is data not a page")]
    fn app_urls(url: &str, expected: bool) {
        assert_eq!(is_app_url(&url.parse().unwrap()), expected);
    }
}
