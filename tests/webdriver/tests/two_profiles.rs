//! Two Sealpost instances, profiles `alice` and `bob`, side by side in local test relay mode, as a
//! person would run them. Started by `scripts/webdriver.sh` (see the harness crate's docs for the
//! environment it sets).
//!
//! The whole first conversation goes through the real windows: both onboard on the local relay,
//! Alice shows her invite, Bob pastes it, previews and accepts it, they write both ways, each sees
//! the other's message and the ticks of their own move on to "read", and the verify screen shows
//! the same 60-digit safety number on both sides. Screenshots of every step are saved (CI keeps
//! them as artifacts; `docs/screenshots/` holds current ones). When both apps are closed, both
//! profile directories — the SQLCipher store and the webview's own data — are scanned for the
//! display names and every message text (`docs/threat-model.md` § A thief of the user's data
//! directory): none may be there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use fantoccini::Locator;
use sealpost_client::scan::{Needle, scan_dir_for_needles};
use sealpost_webdriver_tests::keys::{ENTER, ESCAPE, SHIFT_ENTER};
use sealpost_webdriver_tests::steps::{check_invite, show_invite};
use sealpost_webdriver_tests::{App, DEFAULT_WAIT, Harness, test_id_selector};
use serde_json::json;

/// The display names: long enough that encrypted bytes never match them by chance.
const ALICE_NAME: &str = "Alice Aster";
const BOB_NAME: &str = "Bob Birch";
/// Every message text of the conversation.
const BOB_MESSAGE: &str = "Hi Alice, it's Bob";
const ALICE_FIRST_LINE: &str = "Hello Bob!";
const ALICE_SECOND_LINE: &str = "Second line.";

/// The UI's root element (`ui/index.html`).
const UI_ROOT: &str = "#app";

/// Delivery through the relay, with receipts, may take a few seconds on a loaded CI machine.
const DELIVERY_WAIT: Duration = Duration::from_secs(60);

async fn window_is_up(harness: &Harness, app: &App) {
    let title = app
        .wait_until("the document title is Sealpost", DEFAULT_WAIT, || async {
            let title = app.title().await?;
            Ok((title == "Sealpost").then_some(title))
        })
        .await
        .unwrap();
    assert_eq!(title, "Sealpost");
    app.wait_for_css(&format!("{UI_ROOT} > *"), DEFAULT_WAIT)
        .await
        .unwrap();
    // The webview's own storage lives inside the profile directory (`docs/engine.md` § Profiles).
    let webview_dir = harness.profile_dir(app.profile()).join("webview");
    assert!(
        webview_dir.is_dir(),
        "{} should exist",
        webview_dir.display()
    );
}

async fn onboard(app: &App, display_name: &str) {
    app.type_into("onboarding-name", display_name)
        .await
        .unwrap();
    // The local test relay is the preselected choice.
    let local = app
        .client()
        .find(Locator::Css("input[name=relay][value=local]"))
        .await
        .unwrap();
    assert_eq!(
        local.prop("checked").await.unwrap().as_deref(),
        Some("true")
    );
    app.window_shot(&format!("01-onboarding-{}", app.profile()))
        .await
        .unwrap();
    app.click("onboarding-submit").await.unwrap();
    // Ready: the toolbar is there and the empty chat list says what to do.
    app.by_test_id("open-invite").await.unwrap();
}

/// The `data-state` of the message whose text is `text`, if it is shown.
async fn message_state(app: &App, text: &str) -> Option<String> {
    let script = "return Array.from(document.querySelectorAll(arguments[0]))
        .filter((m) => m.textContent.includes(arguments[1]))
        .map((m) => m.dataset.state)[0] ?? null;";
    let state = app
        .client()
        .execute(
            script,
            vec![json!(test_id_selector("message")), json!(text)],
        )
        .await
        .unwrap();
    state.as_str().map(str::to_owned)
}

async fn wait_for_state(app: &App, text: &str, states: &[&str]) -> String {
    let found = app
        .wait_until(
            &format!("the message {text:?} is in one of the states {states:?}"),
            DELIVERY_WAIT,
            || async {
                Ok(message_state(app, text)
                    .await
                    .filter(|state| states.contains(&state.as_str())))
            },
        )
        .await;
    app.shot_on_failure(found, "message-state").await.unwrap()
}

/// Types `keys` and Enter into the composer; `shown` is a part of the text to find it by.
async fn send(app: &App, keys: &str, shown: &str) {
    app.type_into("composer-input", &format!("{keys}{ENTER}"))
        .await
        .unwrap();
    // It shows at once, queued or already further on.
    wait_for_state(app, shown, &["queued", "on_relay", "delivered", "read"]).await;
    assert_eq!(
        app.value_of("composer-input").await.unwrap(),
        "",
        "composer cleared"
    );
}

async fn safety_digits(app: &App) -> String {
    app.click("open-verify").await.unwrap();
    let shown = app
        .wait_for_text("safety-number", DEFAULT_WAIT, |text| {
            text.chars().filter(char::is_ascii_digit).count() == 60
        })
        .await
        .unwrap();
    shown.chars().filter(char::is_ascii_digit).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_and_bob_meet_chat_and_verify_through_the_local_relay() {
    let harness = Harness::from_env().unwrap();
    let alice = harness.launch("alice", &[]).await.unwrap();
    let bob = harness.launch("bob", &[]).await.unwrap();
    window_is_up(&harness, &alice).await;
    window_is_up(&harness, &bob).await;

    onboard(&alice, ALICE_NAME).await;
    onboard(&bob, BOB_NAME).await;
    alice.window_shot("02-empty-chat-list").await.unwrap();

    // Alice shows her invite.
    let invite = show_invite(&alice).await.unwrap();
    alice.window_shot("03-my-invite").await.unwrap();
    alice.type_into("invite-text", ESCAPE).await.unwrap();

    // Bob pastes it, sees who it is from, names the contact and accepts.
    let suggested = check_invite(&bob, &invite).await.unwrap();
    assert_eq!(
        suggested, ALICE_NAME,
        "the invite carries Alice's display name"
    );
    bob.window_shot("04-add-contact-preview").await.unwrap();
    bob.click("add-contact-accept").await.unwrap();

    // Bob writes first; the chat with Alice is open after accepting.
    bob.focus_window().await.unwrap();
    send(&bob, BOB_MESSAGE, BOB_MESSAGE).await;
    wait_for_state(&bob, BOB_MESSAGE, &["on_relay", "delivered", "read"]).await;

    // Alice sees Bob in her list (named by his Hello), opens the chat and reads the message.
    let bob_row = alice
        .wait_for_text("chat-row-name", DELIVERY_WAIT, |name| name == BOB_NAME)
        .await;
    alice.shot_on_failure(bob_row, "chat-list").await.unwrap();
    alice.window_shot("05-chat-list-unread").await.unwrap();
    alice.focus_window().await.unwrap();
    alice.click("chat-row").await.unwrap();
    alice
        .wait_for_text("message-text", DELIVERY_WAIT, |text| text == BOB_MESSAGE)
        .await
        .unwrap();

    // Read receipts are on by default: Bob's tick moves to "read".
    wait_for_state(&bob, BOB_MESSAGE, &["read"]).await;

    // Alice answers on two lines (Shift+Enter is a new line, Enter sends); Bob, whose chat is
    // open and focused, reads it, and her tick follows.
    alice
        .type_into("composer-input", ALICE_FIRST_LINE)
        .await
        .unwrap();
    alice
        .type_into("composer-input", SHIFT_ENTER)
        .await
        .unwrap();
    send(&alice, ALICE_SECOND_LINE, ALICE_SECOND_LINE).await;
    bob.focus_window().await.unwrap();
    bob.wait_for_text("message-text", DELIVERY_WAIT, |text| {
        text.lines().collect::<Vec<_>>() == [ALICE_FIRST_LINE, ALICE_SECOND_LINE]
    })
    .await
    .unwrap();
    wait_for_state(&alice, ALICE_SECOND_LINE, &["read"]).await;
    alice.window_shot("06-chat-alice").await.unwrap();
    bob.window_shot("07-chat-bob").await.unwrap();

    // Both verify screens show one and the same safety number.
    let alice_digits = safety_digits(&alice).await;
    let bob_digits = safety_digits(&bob).await;
    assert_eq!(alice_digits.len(), 60);
    assert_eq!(
        alice_digits, bob_digits,
        "both sides see the same safety number"
    );
    alice.window_shot("08-verify-alice").await.unwrap();
    bob.window_shot("09-verify-bob").await.unwrap();

    // Bob joined the relay Alice's app started: Settings says it runs, at its loopback URL.
    bob.click("dialog-close").await.unwrap();
    bob.click("open-settings").await.unwrap();
    bob.wait_for_text("local-relay-status", DEFAULT_WAIT, |text| {
        text.contains("ws://127.0.0.1:")
    })
    .await
    .unwrap();
    bob.window_shot("10-settings").await.unwrap();

    alice.close().await.unwrap();
    bob.close().await.unwrap();

    // Data at rest: nothing the two people wrote or called themselves is readable on disk.
    let texts = [
        ALICE_NAME,
        BOB_NAME,
        BOB_MESSAGE,
        ALICE_FIRST_LINE,
        ALICE_SECOND_LINE,
        &format!("{ALICE_FIRST_LINE}\n{ALICE_SECOND_LINE}"),
    ];
    let needles: Vec<Needle> = texts.iter().flat_map(|text| text_needles(text)).collect();
    for profile in ["alice", "bob"] {
        let dir = harness.profile_dir(profile);
        assert!(
            dir.join("webview").is_dir(),
            "the webview's data belongs in {}",
            dir.display()
        );
        let findings = scan_dir_for_needles(&dir, &needles);
        assert!(
            findings.is_empty(),
            "plaintext found in profile {profile}: {findings:?}"
        );
    }
}

/// Needles for `text` as UTF-8 and as UTF-16 in both byte orders (WebKit keeps some strings,
/// e.g. local storage values, as UTF-16).
fn text_needles(text: &str) -> Vec<Needle> {
    let utf16: Vec<u16> = text.encode_utf16().collect();
    let mut needles = vec![Needle::new(
        format!("{text:?} (UTF-8)"),
        text.as_bytes().to_vec(),
    )];
    for (order, to_bytes) in [
        ("LE", u16::to_le_bytes as fn(u16) -> [u8; 2]),
        ("BE", u16::to_be_bytes),
    ] {
        let bytes: Vec<u8> = utf16.iter().flat_map(|unit| to_bytes(*unit)).collect();
        needles.push(Needle::new(format!("{text:?} (UTF-16{order})"), bytes));
    }
    needles
}
