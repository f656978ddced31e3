//! The steps every window test takes the same way, as a person would: onboard, show an invite,
//! paste and check one, and make two windows contacts. Each returns the harness's [`Result`];
//! the tests unwrap it.

use std::time::Duration;

use crate::keys::{ENTER, ESCAPE};
use crate::{App, DEFAULT_WAIT, Result};

/// Waits until the window shows Sealpost, then onboards it as `display_name` with the
/// preselected relay; returns once the chat list's toolbar is there.
pub async fn onboard(app: &App, display_name: &str) -> Result<()> {
    app.wait_until("the window shows Sealpost", DEFAULT_WAIT, || async {
        Ok((app.title().await? == "Sealpost").then_some(()))
    })
    .await?;
    app.type_into("onboarding-name", display_name).await?;
    app.click("onboarding-submit").await?;
    app.by_test_id("open-invite").await?;
    Ok(())
}

/// Opens the invite dialog and returns the invite text once it is shown (the dialog stays open).
pub async fn show_invite(app: &App) -> Result<String> {
    app.click("open-invite").await?;
    app.wait_until("the invite text is shown", DEFAULT_WAIT, || async {
        let value = app.value_of("invite-text").await?;
        Ok(value.starts_with("sealpost:").then_some(value))
    })
    .await
}

/// Opens "add contact", pastes `invite` and checks it; returns the name the preview suggests
/// (the dialog stays open, ready to accept).
pub async fn check_invite(app: &App, invite: &str) -> Result<String> {
    app.click("open-add-contact").await?;
    app.type_into("add-contact-text", invite).await?;
    app.click("add-contact-check").await?;
    let preview = app
        .wait_until("the preview suggests a name", DEFAULT_WAIT, || async {
            let value = app.value_of("add-contact-name").await?;
            Ok((!value.is_empty()).then_some(value))
        })
        .await;
    // The dialog with its error, if the invite did not check (screenshot failed-PROFILE-invite).
    app.shot_on_failure(preview, "invite").await
}

/// `inviter` shows an invite, `invitee` accepts it and writes `hello`; waits (at most
/// `delivery_wait`) until the chat with `invitee_name` is in `inviter`'s list, with a screenshot
/// `failed-PROFILE-contact` of `inviter` if it never comes.
pub async fn make_contacts(
    inviter: &App,
    invitee: &App,
    invitee_name: &str,
    hello: &str,
    delivery_wait: Duration,
) -> Result<()> {
    let invite = show_invite(inviter).await?;
    inviter.type_into("invite-text", ESCAPE).await?;
    check_invite(invitee, &invite).await?;
    invitee.click("add-contact-accept").await?;
    invitee.focus_window().await?;
    invitee
        .type_into("composer-input", &format!("{hello}{ENTER}"))
        .await?;
    let row = inviter
        .wait_for_text("chat-row-name", delivery_wait, |name| name == invitee_name)
        .await;
    inviter.shot_on_failure(row, "contact").await?;
    Ok(())
}
