//! Disappearing messages in groups (`docs/engine.md` § Disappearing messages): an admin sets the
//! group's timer, every member agrees and gets a system line, every text carries the timer it
//! was sent with and leaves every member's store (and search) when it runs out; a member who is
//! not an admin cannot change it, neither through its engine nor with a forged roster; and
//! changes by two admins at once converge. Real clients on a loopback relay, the engines' clocks
//! moved forward (`crate::Clock`). Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test group_disappearing`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sealpost_client::EngineEvent;
use sealpost_client::content::Body;
use sealpost_client::group::{GroupId, RosterMessage};
use sealpost_client::store::DisappearingTimer;
use sealpost_test_support::{
    Client, Trio, group_of, group_of_three, has_text, member_key, send_as, system_lines, trio,
    wait_for_text, wait_introduced, wait_until,
};

const FIVE_MINUTES: u32 = 300;
const HOUR: u32 = 3600;
const DAY: u32 = 24 * 3600;

/// The group's timer as `client` has it.
async fn timer_of(client: &Client, id: &str) -> u32 {
    group_of(client, id).await.unwrap().timer_seconds
}

/// Waits until Bob and Carol have the group timer `seconds` that Alice set.
async fn wait_timer_reaches_members(t: &Trio, id: &str, seconds: u32) {
    for member in [&t.bob, &t.carol] {
        wait_until("the member has the group's timer", || async {
            timer_of(member, id).await == seconds
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_group_text_expires_on_every_member() {
    let t = trio().await;
    let id = group_of_three(&t).await;
    wait_introduced(&t).await;

    let view = t
        .alice
        .engine
        .set_group_timer(&id, FIVE_MINUTES)
        .await
        .unwrap();
    assert_eq!(view.timer_seconds, FIVE_MINUTES);
    wait_timer_reaches_members(&t, &id, FIVE_MINUTES).await;
    for member in [&t.bob, &t.carol] {
        assert!(
            system_lines(member, &id)
                .await
                .contains(&"timer:300".to_owned()),
            "a system line says so"
        );
    }
    assert!(
        system_lines(&t.alice, &id)
            .await
            .contains(&"timer:300".to_owned())
    );

    // Texts carry the timer they were sent with, from an admin and from a member alike.
    let sent = t
        .alice
        .engine
        .send_group_message(&id, "zqfleeting from alice")
        .await
        .unwrap();
    assert_eq!(sent.timer_seconds, Some(FIVE_MINUTES));
    assert!(sent.expires_at.is_some());
    t.bob
        .engine
        .send_group_message(&id, "zqfleeting from bob")
        .await
        .unwrap();
    for member in [&t.alice, &t.bob, &t.carol] {
        for text in ["zqfleeting from alice", "zqfleeting from bob"] {
            let got = wait_for_text(member, &id, text).await;
            assert_eq!(got.timer_seconds, Some(FIVE_MINUTES), "{text}");
            assert!(got.expires_at.is_some());
        }
        assert_eq!(member.search_count("zqfleeting").await, 2);
    }
    t.alice.wait_outbox_empty().await;
    t.bob.wait_outbox_empty().await;

    // Ten minutes later every member's next read finds neither text, nor does search.
    for member in [&t.alice, &t.bob, &t.carol] {
        member.engine.clock().advance(Duration::from_secs(600));
        assert!(
            !has_text(member, &id, |m| m.text.starts_with("zqfleeting")).await,
            "the expired texts are gone"
        );
        assert_eq!(member.search_count("zqfleeting").await, 0);
    }
    let mut carol = t.carol;
    carol
        .wait_event(|event| matches!(event, EngineEvent::GroupMessagesExpired { .. }))
        .await;

    // Off again: the next text has no timer and stays.
    t.alice.engine.set_group_timer(&id, 0).await.unwrap();
    wait_until("Bob's group timer is off", || async {
        timer_of(&t.bob, &id).await == 0
    })
    .await;
    let kept = t
        .alice
        .engine
        .send_group_message(&id, "zqkept")
        .await
        .unwrap();
    assert_eq!(kept.timer_seconds, None);
    let got = wait_for_text(&t.bob, &id, "zqkept").await;
    assert_eq!(got.timer_seconds, None);
    assert_eq!(got.expires_at, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_is_not_an_admin_cannot_change_the_timer() {
    let t = trio().await;
    let id = group_of_three(&t).await;

    // Through its engine: refused like any roster change.
    let refused = t.bob.engine.set_group_timer(&id, HOUR).await.unwrap_err();
    assert_eq!(refused.kind(), "group_not_admin");
    assert_eq!(timer_of(&t.bob, &id).await, 0);

    // With a forged roster (Bob's own state with a timer set by "himself") sent to Alice over
    // his real session: Alice holds it, never applies it.
    let mut forged = t
        .bob
        .engine
        .with_store(|store| store.group(id.parse::<GroupId>().unwrap()).unwrap())
        .unwrap()
        .replica
        .state;
    let admin = member_key(&t.alice);
    forged
        .set_timer(&admin, Some(DisappearingTimer::OneHour))
        .unwrap();
    send_as(
        &t.relay,
        &t.bob,
        &t.bob_alice,
        Body::GroupRoster {
            group_id: id.parse().unwrap(),
            change: RosterMessage::State(forged),
        },
    )
    .await;
    // Alice's next text proves her engine has processed what Bob sent before it.
    t.bob
        .engine
        .send_group_message(&id, "after the forgery")
        .await
        .unwrap();
    wait_for_text(&t.alice, &id, "after the forgery").await;
    assert_eq!(
        timer_of(&t.alice, &id).await,
        0,
        "a non-admin's timer is held"
    );
    let text = t
        .alice
        .engine
        .send_group_message(&id, "still untimed")
        .await
        .unwrap();
    assert_eq!(text.timer_seconds, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_timer_changes_by_two_admins_converge() {
    let t = trio().await;
    let id = group_of_three(&t).await;
    let bob_key = hex::encode(member_key(&t.bob).as_bytes());
    t.alice
        .engine
        .promote_group_member(&id, &bob_key)
        .await
        .unwrap();
    wait_until("Bob is an admin", || async {
        group_of(&t.bob, &id).await.unwrap().is_admin
    })
    .await;

    let (a, b) = tokio::join!(
        t.alice.engine.set_group_timer(&id, DAY),
        t.bob.engine.set_group_timer(&id, HOUR),
    );
    a.unwrap();
    b.unwrap();
    // Each side keeps the greatest (stamp, shorter timer): once both changes reached everyone,
    // the three agree.
    wait_until("all three agree", || async {
        let (x, y, z) = (
            timer_of(&t.alice, &id).await,
            timer_of(&t.bob, &id).await,
            timer_of(&t.carol, &id).await,
        );
        x == y && y == z && (x == DAY || x == HOUR)
    })
    .await;
    let agreed = timer_of(&t.alice, &id).await;
    // And the texts sent now carry that timer everywhere.
    let sent = t
        .carol
        .engine
        .send_group_message(&id, "under the agreed timer")
        .await
        .unwrap();
    assert_eq!(sent.timer_seconds, Some(agreed));
    let got = wait_for_text(&t.alice, &id, "under the agreed timer").await;
    assert_eq!(got.timer_seconds, Some(agreed));
}

/// A file sent while the group's timer is on carries it like a text (`docs/engine.md`
/// § Disappearing messages): every member stores it with its expiry, and once that has passed
/// the file (its row and message) is gone from every member, sender included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_file_sent_under_the_timer_expires_on_every_member() {
    let t = trio().await;
    let id = group_of_three(&t).await;
    wait_introduced(&t).await;
    t.alice
        .engine
        .set_group_timer(&id, FIVE_MINUTES)
        .await
        .unwrap();
    wait_timer_reaches_members(&t, &id, FIVE_MINUTES).await;
    let file = sealpost_client::engine::OutgoingFile {
        file_name: "zqfleeting.txt".into(),
        media_type: "text/plain".into(),
        bytes: b"a small file, sent inside the message".to_vec(),
    };
    t.alice
        .engine
        .send_group_attachment(&id, file)
        .await
        .unwrap();
    let files = |client: &Client| {
        let engine = client.engine.clone();
        let id = id.clone();
        async move { engine.get_group_attachments(&id).await.unwrap() }
    };
    for member in [&t.alice, &t.bob, &t.carol] {
        wait_until("the member has the file", || async {
            !files(member).await.is_empty()
        })
        .await;
        let message = wait_for_text(member, &id, "zqfleeting.txt").await;
        assert_eq!(
            message.timer_seconds,
            Some(FIVE_MINUTES),
            "it carries the timer"
        );
        assert!(message.expires_at.is_some());
    }
    t.alice.wait_outbox_empty().await;
    for member in [&t.alice, &t.bob, &t.carol] {
        member.engine.clock().advance(Duration::from_secs(600));
        assert!(
            !has_text(member, &id, |m| m.text == "zqfleeting.txt").await,
            "the file's message is gone"
        );
        assert!(files(member).await.is_empty(), "the file is gone");
    }
}
