//! Two Sealpost instances, profiles `alice` and `bob`, side by side in local test relay mode, as a
//! person would run them. Started by `scripts/webdriver.sh` (see the harness crate's docs for the
//! environment it sets).
//!
//! Today this checks what the shell alone provides: each window comes up with the app's document,
//! each profile keeps its webview storage inside its own profile directory, and the windows render
//! real pictures. The chat flow (onboard, exchange invites, send both ways, delivery and read
//! states, verify screen) is added here once the engine's commands exist, with the harness's
//! `by_test_id` / `type_into` / `click` / `wait_for_text` helpers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_webdriver_tests::{App, DEFAULT_WAIT, Harness};

/// The UI's root element (`ui/index.html`).
const UI_ROOT: &str = "#app";

async fn assert_window_is_up(harness: &Harness, app: &App) {
    let title = app
        .wait_until("the document title is Sealpost", DEFAULT_WAIT, || async {
            let title = app.title().await?;
            Ok((title == "Sealpost").then_some(title))
        })
        .await
        .unwrap();
    assert_eq!(title, "Sealpost");
    app.wait_for_css(UI_ROOT, DEFAULT_WAIT).await.unwrap();
    // The UI has rendered something into its root.
    app.wait_for_css(&format!("{UI_ROOT} > *"), DEFAULT_WAIT)
        .await
        .unwrap();

    // BRIEF §3a.8: the webview's own storage lives inside the profile directory.
    let webview_dir = harness.profile_dir(app.profile()).join("webview");
    assert!(
        webview_dir.is_dir(),
        "{} should exist for profile {}",
        webview_dir.display(),
        app.profile()
    );

    let (path, summary) = app
        .screenshot(&format!("window-{}", app.profile()))
        .await
        .unwrap();
    assert!(
        summary.width >= 200 && summary.height >= 200,
        "{}: {summary:?}",
        path.display()
    );
    assert!(summary.colours >= 2, "{}: {summary:?}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_and_bob_windows_come_up_side_by_side() {
    let harness = Harness::from_env().unwrap();
    let alice = harness.launch("alice", &[]).await.unwrap();
    let bob = harness.launch("bob", &[]).await.unwrap();

    assert_window_is_up(&harness, &alice).await;
    assert_window_is_up(&harness, &bob).await;

    alice.close().await.unwrap();
    bob.close().await.unwrap();
}
