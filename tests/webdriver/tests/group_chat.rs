//! Three Sealpost windows, profiles `group_alice`, `group_bob` and `group_carol`, in local test
//! relay mode, as three people would run them (`docs/engine.md` § Groups). Started by
//! `scripts/webdriver.sh` (see the harness crate's docs for the environment it sets).
//!
//! Alice has Bob and Carol as contacts; Bob and Carol do not know each other. Alice makes a group
//! of the three in her window; the engine introduces Bob and Carol to each other. Each writes to
//! the group and every window shows every text with its author's name. Alice removes Carol:
//! Carol's window says she is no longer a member, and Alice and Bob go on writing without her.
//! Then Bob leaves, and Alice's window says so. Screenshots of each step are saved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use fantoccini::Locator;
use sealpost_webdriver_tests::keys::ENTER;
use sealpost_webdriver_tests::steps::{make_contacts, onboard};
use sealpost_webdriver_tests::{App, DEFAULT_WAIT, Harness, test_id_selector};
use serde_json::json;

const ALICE_NAME: &str = "Alice Aster";
const BOB_NAME: &str = "Bob Birch";
const CAROL_NAME: &str = "Carol Cedar";
const GROUP_NAME: &str = "Trail crew";

const HELLO_FROM_BOB: &str = "Bob says hi to Alice";
const HELLO_FROM_CAROL: &str = "Carol says hi to Alice";
const ALICE_TO_GROUP: &str = "Welcome to the trail crew!";
const BOB_TO_GROUP: &str = "Bob here, hello all";
const CAROL_TO_GROUP: &str = "Carol here, nice to meet you Bob";
const ALICE_AFTER_REMOVAL: &str = "Just the two of us now";
const BOB_AFTER_REMOVAL: &str = "Bob still here";

/// Delivery through the relay, and the introductions (an invite made, passed on by the admin
/// and accepted), take a few round trips on a loaded machine.
const DELIVERY_WAIT: Duration = Duration::from_secs(120);

/// Clicks the first element matching `selector` whose text contains `text`.
async fn click_with_text(app: &App, selector: &str, text: &str) {
    let script = "const el = Array.from(document.querySelectorAll(arguments[0]))
        .find((e) => e.textContent.includes(arguments[1]));
        if (el === undefined) return false;
        el.click();
        return true;";
    let clicked = app
        .wait_until(
            &format!("{selector} with {text:?} is there"),
            DELIVERY_WAIT,
            || async {
                let done = app
                    .client()
                    .execute(script, vec![json!(selector), json!(text)])
                    .await
                    .unwrap();
                Ok(done.as_bool().filter(|done| *done))
            },
        )
        .await;
    app.shot_on_failure(clicked, "click").await.unwrap();
}

/// Every group text shown, as (the sentence read to screen readers with its author, the text).
async fn group_texts(app: &App) -> Vec<(String, String)> {
    let script = "return Array.from(document.querySelectorAll(arguments[0])).map((m) => [
        m.querySelector('.sr-only')?.textContent ?? '',
        m.querySelector(arguments[1])?.textContent ?? '']);";
    let value = app
        .client()
        .execute(
            script,
            vec![
                json!(test_id_selector("group-message")),
                json!(test_id_selector("group-message-text")),
            ],
        )
        .await
        .unwrap();
    serde_json::from_value(value).unwrap_or_default()
}

/// Waits until `app` shows `text` said by `author` ("You" for its own).
async fn wait_for_group_text(app: &App, author: &str, text: &str) {
    let said = if author == "You" {
        "You said".to_owned()
    } else {
        format!("{author} said")
    };
    let found = app
        .wait_until(
            &format!("{text:?} by {author} is shown"),
            DELIVERY_WAIT,
            || async {
                Ok(group_texts(app)
                    .await
                    .into_iter()
                    .find(|(who, shown)| shown == text && who.starts_with(&said)))
            },
        )
        .await;
    if app.shot_on_failure(found, "group-text").await.is_err() {
        panic!(
            "{}: {text:?} by {author} not shown; shown: {:?}",
            app.profile(),
            group_texts(app).await
        );
    }
}

async fn send_to_group(app: &App, text: &str) {
    app.type_into("composer-input", &format!("{text}{ENTER}"))
        .await
        .unwrap();
    wait_for_group_text(app, "You", text).await;
}

async fn open_group(app: &App) {
    let row = app
        .wait_for_text("group-row-name", DELIVERY_WAIT, |name| name == GROUP_NAME)
        .await;
    app.shot_on_failure(row, "group-row").await.unwrap();
    app.click("group-row").await.unwrap();
    app.by_test_id("group-view").await.unwrap();
}

async fn wait_not_member(app: &App) {
    let banner = app
        .wait_until("the window says it is no member", DELIVERY_WAIT, || async {
            Ok(app.has_test_id("group-not-member").await?.then_some(()))
        })
        .await;
    app.shot_on_failure(banner, "not-member").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_bob_and_carol_chat_in_a_group_then_carol_is_removed_and_bob_leaves() {
    let started = Instant::now();
    let harness = Harness::from_env().unwrap();
    let alice = harness.launch("group_alice", &[]).await.unwrap();
    let bob = harness.launch("group_bob", &[]).await.unwrap();
    let carol = harness.launch("group_carol", &[]).await.unwrap();
    onboard(&alice, ALICE_NAME).await.unwrap();
    onboard(&bob, BOB_NAME).await.unwrap();
    onboard(&carol, CAROL_NAME).await.unwrap();
    eprintln!(
        "group_chat: three windows onboarded after {:?}",
        started.elapsed()
    );

    make_contacts(&alice, &bob, BOB_NAME, HELLO_FROM_BOB, DELIVERY_WAIT)
        .await
        .unwrap();
    make_contacts(&alice, &carol, CAROL_NAME, HELLO_FROM_CAROL, DELIVERY_WAIT)
        .await
        .unwrap();
    eprintln!("group_chat: contacts made after {:?}", started.elapsed());

    // Alice makes the group, naming it and picking both contacts.
    alice.focus_window().await.unwrap();
    alice.click("open-new-group").await.unwrap();
    alice.type_into("new-group-name", GROUP_NAME).await.unwrap();
    click_with_text(&alice, ".pick-row", BOB_NAME).await;
    click_with_text(&alice, ".pick-row", CAROL_NAME).await;
    alice.window_shot("group-01-new-group").await.unwrap();
    alice.click("new-group-create").await.unwrap();
    alice.by_test_id("group-view").await.unwrap();

    // Bob and Carol join, and are introduced to each other (each becomes the other's contact).
    open_group(&bob).await;
    open_group(&carol).await;
    bob.wait_for_text("chat-row-name", DELIVERY_WAIT, |name| name == CAROL_NAME)
        .await
        .unwrap();
    carol
        .wait_for_text("chat-row-name", DELIVERY_WAIT, |name| name == BOB_NAME)
        .await
        .unwrap();
    eprintln!(
        "group_chat: group made and members introduced after {:?}",
        started.elapsed()
    );

    // Each writes; every window shows every text with its author.
    send_to_group(&alice, ALICE_TO_GROUP).await;
    send_to_group(&bob, BOB_TO_GROUP).await;
    send_to_group(&carol, CAROL_TO_GROUP).await;
    for (app, me) in [(&alice, ALICE_NAME), (&bob, BOB_NAME), (&carol, CAROL_NAME)] {
        for (author, text) in [
            (ALICE_NAME, ALICE_TO_GROUP),
            (BOB_NAME, BOB_TO_GROUP),
            (CAROL_NAME, CAROL_TO_GROUP),
        ] {
            let author = if author == me { "You" } else { author };
            wait_for_group_text(app, author, text).await;
        }
    }
    // Alice's own text was delivered to both other members.
    alice
        .wait_for_text("group-delivery", DELIVERY_WAIT, |text| {
            text == "Delivered to 2 of 2" || text.starts_with("Read by")
        })
        .await
        .unwrap();
    eprintln!(
        "group_chat: three texts seen by all after {:?}",
        started.elapsed()
    );
    alice.window_shot("group-02-chat-alice").await.unwrap();
    bob.window_shot("group-03-chat-bob").await.unwrap();
    carol.window_shot("group-04-chat-carol").await.unwrap();

    // Alice removes Carol, after confirming.
    alice.click("open-group-members").await.unwrap();
    alice.by_test_id("group-members").await.unwrap();
    alice.window_shot("group-05-members").await.unwrap();
    let remove_carol = "const row = Array.from(document.querySelectorAll(arguments[0]))
        .find((r) => r.textContent.includes(arguments[1]));
        row?.querySelector(arguments[2])?.click();
        return row !== undefined;";
    let clicked = alice
        .client()
        .execute(
            remove_carol,
            vec![
                json!(test_id_selector("group-member")),
                json!(CAROL_NAME),
                json!(test_id_selector("group-member-remove")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        clicked.as_bool(),
        Some(true),
        "Carol is in Alice's member list"
    );
    alice.click("group-remove-confirm").await.unwrap();
    alice
        .wait_for_text("group-system-line", DEFAULT_WAIT, |line| {
            line == format!("You removed {CAROL_NAME}")
        })
        .await
        .unwrap();
    alice.click("dialog-close").await.unwrap();

    // Carol's window says she was removed; her composer is closed.
    wait_not_member(&carol).await;
    carol
        .wait_for_text("group-system-line", DELIVERY_WAIT, |line| {
            line.contains("removed you")
        })
        .await
        .unwrap();
    carol.window_shot("group-06-carol-removed").await.unwrap();

    // Alice and Bob go on.
    send_to_group(&alice, ALICE_AFTER_REMOVAL).await;
    wait_for_group_text(&bob, ALICE_NAME, ALICE_AFTER_REMOVAL).await;
    send_to_group(&bob, BOB_AFTER_REMOVAL).await;
    wait_for_group_text(&alice, BOB_NAME, BOB_AFTER_REMOVAL).await;
    let carol_sees: Vec<String> = group_texts(&carol)
        .await
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    assert!(
        !carol_sees
            .iter()
            .any(|text| text == ALICE_AFTER_REMOVAL || text == BOB_AFTER_REMOVAL),
        "Carol got a text sent after her removal: {carol_sees:?}"
    );
    eprintln!("group_chat: removal done after {:?}", started.elapsed());

    // Bob leaves, after confirming; Alice's window says so.
    bob.client()
        .find(Locator::Css(&format!(
            "{} .chat-header [aria-haspopup]",
            test_id_selector("group-view")
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_with_text(&bob, "[role=menuitem]", "Leave group").await;
    bob.click("group-leave-confirm").await.unwrap();
    wait_not_member(&bob).await;
    alice
        .wait_for_text("group-system-line", DELIVERY_WAIT, |line| {
            line == format!("{BOB_NAME} left the group")
        })
        .await
        .unwrap();
    alice.window_shot("group-07-bob-left").await.unwrap();
    eprintln!("group_chat: done after {:?}", started.elapsed());

    alice.close().await.unwrap();
    bob.close().await.unwrap();
    carol.close().await.unwrap();
}
