//! The first screen's data, handed to the page with its HTML instead of by the UI's first two
//! commands (`ARCHITECTURE.md` § The desktop shell's start, `ui/CONTRACT.md` § First screen).
//!
//! The profile opens on the async runtime while the main thread builds the window; once open, the
//! app keeps what `app_status` and `list_chats` would return ([`FirstScreen`], serialised exactly
//! as those commands' results). When the webview then asks for `index.html` (a request the app
//! itself answers), that JSON goes into the page as a data block
//! (`<script type="application/json" id="sealpost-first-screen">`, never executed, so the
//! content security policy is unchanged), once: a later reload asks the commands again. A page
//! requested before the profile is open gets nothing, and the UI asks the commands as before.
//! Nothing crosses here that those two commands do not return.

use std::borrow::Cow;
use std::sync::Mutex;

use sealpost_client::engine::ChatView;
use sealpost_client::{App, AppStatus};
use serde::Serialize;

/// The `id` of the data block the UI reads (`ui/src/lib/firstScreen.ts`).
pub const ELEMENT_ID: &str = "sealpost-first-screen";

/// What the first screen draws: `app_status`'s result, and `list_chats`'s (`None` when it failed
/// or the profile is not onboarded; the UI then asks for it).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FirstScreen {
    /// As `app_status` returns it.
    pub status: AppStatus,
    /// As `list_chats` returns it.
    pub chats: Option<Vec<ChatView>>,
}

impl FirstScreen {
    /// Reads the status and chat list of the open profile.
    pub async fn read(app: &App) -> Option<Self> {
        let status = match app.status().await {
            Ok(status) => status,
            Err(error) => {
                tracing::debug!(%error, "no first-screen data: the status failed");
                return None;
            }
        };
        let chats = if status.onboarded {
            app.engine().list_chats().await.ok()
        } else {
            None
        };
        Some(Self { status, chats })
    }
}

/// The first screen's data as JSON, from the profile's open until the page is served.
#[derive(Debug, Default)]
pub struct FirstScreenSlot(Mutex<Slot>);

#[derive(Debug, Default)]
enum Slot {
    /// The page has not been served, and there is no data yet.
    #[default]
    Empty,
    /// The data, waiting for the page.
    Ready(String),
    /// The page was served (with or without the data): data kept later would be stale on a reload.
    Served,
}

impl FirstScreenSlot {
    /// Keeps `data` for the page, unless the page was already served.
    pub fn put(&self, data: &FirstScreen) {
        let mut slot = self.lock();
        if matches!(*slot, Slot::Served) {
            return;
        }
        match serde_json::to_string(data) {
            Ok(json) => *slot = Slot::Ready(json),
            Err(error) => tracing::warn!(%error, "the first-screen data did not serialise"),
        }
    }

    /// The data for the page being served, once; afterwards (and if none was there) `None`.
    pub fn take(&self) -> Option<String> {
        match std::mem::replace(&mut *self.lock(), Slot::Served) {
            Slot::Ready(json) => Some(json),
            Slot::Empty | Slot::Served => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether a request path is the app's page (the one that gets the data).
pub fn is_page_path(path: &str) -> bool {
    matches!(path, "/" | "/index.html")
}

/// `html` with `json` added as a data block just before `</head>`, or `None` when the page has no
/// `</head>`. Every `<` of the JSON is written `\u003c` (the same JSON to a parser), so no text in
/// it (a contact named `</script>`) can end the block early.
pub fn inject(html: &[u8], json: &str) -> Option<Vec<u8>> {
    const HEAD_END: &[u8] = b"</head>";
    let at = html
        .windows(HEAD_END.len())
        .position(|window| window == HEAD_END)?;
    let escaped = json.replace('<', "\\u003c");
    let block = format!(r#"<script type="application/json" id="{ELEMENT_ID}">{escaped}</script>"#);
    let mut out = Vec::with_capacity(html.len() + block.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(block.as_bytes());
    out.extend_from_slice(&html[at..]);
    Some(out)
}

/// Adds the kept data (if any, once) to the response for the app's page.
pub fn add_to_page(
    slot: &FirstScreenSlot,
    path: &str,
    response: &mut tauri::http::Response<Cow<'static, [u8]>>,
) {
    if !is_page_path(path) || !response.status().is_success() {
        return;
    }
    let Some(json) = slot.take() else {
        tracing::debug!(
            "the page was asked for before the profile opened: the UI asks the commands"
        );
        return;
    };
    if let Some(page) = inject(response.body(), &json) {
        *response.body_mut() = Cow::Owned(page);
        tracing::debug!("the first screen's data went into the page");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &[u8] = b"<!doctype html><html><head><title>S</title></head><body></body></html>";

    #[test]
    fn the_block_goes_before_the_end_of_head() {
        let page = inject(PAGE, r#"{"a":1}"#).unwrap();
        let text = String::from_utf8(page).unwrap();
        assert_eq!(
            text,
            "<!doctype html><html><head><title>S</title><script type=\"application/json\" \
             id=\"sealpost-first-screen\">{\"a\":1}</script></head><body></body></html>"
        );
    }

    #[test]
    fn no_text_in_the_data_can_end_the_block() {
        let json =
            serde_json::to_string(&serde_json::json!({"name": "</script><img src=x>"})).unwrap();
        let page = String::from_utf8(inject(PAGE, &json).unwrap()).unwrap();
        let block_start = page.find("sealpost-first-screen\">").unwrap();
        let block = &page[block_start..];
        let end = block.find("</script>").unwrap();
        let content = &block["sealpost-first-screen\">".len()..end];
        assert!(!content.contains('<'), "{content}");
        let back: serde_json::Value = serde_json::from_str(content).unwrap();
        assert_eq!(back["name"], "</script><img src=x>");
    }

    #[test]
    fn a_page_without_head_is_left_alone() {
        assert_eq!(inject(b"<p>no head</p>", "{}"), None);
    }

    #[test]
    fn only_the_page_gets_the_data_and_only_once() {
        let slot = FirstScreenSlot::default();
        *slot.lock() = Slot::Ready("{}".to_owned());
        let response = |body: &'static [u8]| {
            tauri::http::Response::builder()
                .body(Cow::Borrowed(body))
                .unwrap()
        };

        let mut script = response(b"</head>");
        add_to_page(&slot, "/assets/index.js", &mut script);
        assert_eq!(script.body().as_ref(), b"</head>");

        let mut page = response(PAGE);
        add_to_page(&slot, "/index.html", &mut page);
        assert!(
            String::from_utf8_lossy(page.body()).contains(ELEMENT_ID),
            "the page gets the data"
        );

        let mut reloaded = response(PAGE);
        add_to_page(&slot, "/index.html", &mut reloaded);
        assert_eq!(reloaded.body().as_ref(), PAGE, "a reload asks the commands");
    }

    #[test]
    fn data_kept_after_the_page_was_served_is_never_served() {
        let slot = FirstScreenSlot::default();
        assert_eq!(slot.take(), None, "the page came before the profile opened");
        *slot.lock() = Slot::Served;
        let status = AppStatus {
            profile: "p".to_owned(),
            onboarded: true,
            local_relay: sealpost_client::app::LocalRelayStatus {
                enabled: false,
                running: false,
                url: None,
            },
            connections: Vec::new(),
        };
        let data = FirstScreen {
            status,
            chats: Some(Vec::new()),
        };
        slot.put(&data);
        assert_eq!(slot.take(), None, "a reload asks the commands");

        let fresh = FirstScreenSlot::default();
        fresh.put(&data);
        let json = fresh.take().unwrap();
        assert!(
            json.starts_with(r#"{"status":{"profile":"p","onboarded":true,"#),
            "{json}"
        );
        assert!(json.ends_with(r#""chats":[]}"#), "{json}");
    }

    #[test]
    fn page_paths() {
        assert!(is_page_path("/"));
        assert!(is_page_path("/index.html"));
        assert!(!is_page_path("/assets/index-abc.js"));
        assert!(!is_page_path("/favicon.svg"));
    }
}
