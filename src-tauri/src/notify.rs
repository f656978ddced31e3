//! Desktop notifications for new messages.
//!
//! By default a notification says only "New message" (`docs/threat-model.md` § Plaintext never
//! leaves the device for features: no plaintext outside SQLCipher, and the notification daemon
//! keeps a history). The sender's name and the message text appear only when the user's setting
//! allows it. The engine's "message received" event will call [`show_new_message`] once it exists;
//! the policy comes from the engine's settings.
//!
//! The webview is not granted the notification plugin's `notify` permission, so this module is the
//! one place that decides what a notification says.

use tauri::{AppHandle, Runtime};
use tauri_plugin_notification::NotificationExt;

/// What a new-message notification may reveal (from the user's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotificationPreview {
    /// Only "New message" (the default).
    #[default]
    Hidden,
    /// The sender's name and the start of the message text.
    NameAndText,
}

/// The title and body of one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationText {
    /// The first line (bold on most desktops).
    pub title: String,
    /// The second line.
    pub body: String,
}

/// Longest shown part of a message, in characters.
pub const MAX_PREVIEW_CHARS: usize = 160;

/// Longest shown sender name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// What a new-message notification says under `preview`. `sender` and `text` come from others:
/// they are shortened and stripped of characters that notification servers read as markup.
pub fn new_message_text(
    preview: NotificationPreview,
    sender: &str,
    text: &str,
) -> NotificationText {
    match preview {
        NotificationPreview::Hidden => NotificationText {
            title: "Sealpost".to_owned(),
            body: "New message".to_owned(),
        },
        NotificationPreview::NameAndText => NotificationText {
            title: plain(sender, MAX_NAME_CHARS),
            body: plain(text, MAX_PREVIEW_CHARS),
        },
    }
}

/// Shortens `text` to `max_chars` characters (adding "…" when cut), turns control characters
/// (newlines included) into spaces, and replaces `<`, `>` and `&` with look-alikes: freedesktop
/// servers with the "body-markup" capability would otherwise read them as markup, including
/// `<img src=…>`, which would fetch a remote image chosen by the sender.
fn plain(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| match c {
            '<' => '‹',
            '>' => '›',
            '&' => '＆',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// Shows a notification. Without a notification daemon the plugin reports success and drops the
/// error (seen on headless Linux), so a returned `Ok` does not prove the notification was shown.
pub fn show_new_message<R: Runtime>(
    app: &AppHandle<R>,
    text: &NotificationText,
) -> Result<(), tauri_plugin_notification::Error> {
    app.notification()
        .builder()
        .title(&text.title)
        .body(&text.body)
        .show()
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test]
    fn hidden_by_default_says_only_new_message() {
        let shown = new_message_text(NotificationPreview::default(), "Mallory", "the secret plan");
        assert_eq!(shown.title, "Sealpost");
        assert_eq!(shown.body, "New message");
        assert!(!shown.body.contains("secret"));
        assert!(!shown.title.contains("Mallory"));
    }

    #[test_case("hello", "hello" ; "plain text kept")]
    #[test_case("<img src=\"http://x\">", "‹img src=\"http://x\"›" ; "markup defused")]
    #[test_case("a & b", "a ＆ b" ; "ampersand defused")]
    #[test_case("line1\nline2", "line1 line2" ; "newline flattened")]
    fn shown_text_is_plain(text: &str, expected: &str) {
        let shown = new_message_text(NotificationPreview::NameAndText, "Bob", text);
        assert_eq!(shown.title, "Bob");
        assert_eq!(shown.body, expected);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let text = "あ".repeat(MAX_PREVIEW_CHARS + 5);
        let shown = new_message_text(NotificationPreview::NameAndText, "Bob", &text);
        assert_eq!(shown.body.chars().count(), MAX_PREVIEW_CHARS + 1);
        assert!(shown.body.ends_with('…'));
    }

    #[test]
    fn text_of_exactly_the_limit_is_not_marked_cut() {
        let text = "x".repeat(MAX_PREVIEW_CHARS);
        let shown = new_message_text(NotificationPreview::NameAndText, "Bob", &text);
        assert_eq!(shown.body, text);
    }
}
