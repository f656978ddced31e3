//! Harness for end-to-end tests of the real Sealpost window, driven through `tauri-driver`
//! (WebDriver) and Debian's `WebKitWebDriver` under Xvfb.
//!
//! `scripts/webdriver.sh` prepares everything (UI build, app build, Xvfb, D-Bus, an unlocked
//! gnome-keyring, one `tauri-driver` per app instance) and passes it to the tests through the
//! environment:
//!
//! | variable | meaning |
//! | --- | --- |
//! | `SEALPOST_WEBDRIVER_URLS` | comma-separated `tauri-driver` URLs; app instance *n* uses URL *n* (mod count) |
//! | `SEALPOST_APP_BIN` | the `sealpost` binary to launch |
//! | `SEALPOST_DATA_DIR` | the data root the apps use (each profile gets `profiles/NAME` under it) |
//! | `SEALPOST_SCREENSHOT_DIR` | where screenshots go (default `target/screenshots`) |
//! | `SEALPOST_LOCAL_RELAY_PORT` | optional: the local test relay port every instance is started with |
//! | `SEALPOST_DOWNLOAD_DIR` | where the apps save attachments (the app reads it too: no save dialog) |
//!
//! The helpers are what a person does: find a control by its test id (`data-testid`), type into
//! it, click it, and wait — always with a bound — until something shows; [`steps`] holds the
//! steps several tests take alike (onboarding, invites, making contacts).

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub mod steps;

/// How long a helper waits by default before it gives up.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(20);

/// How often a wait looks again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Keys as WebDriver's "send keys" writes them.
pub mod keys {
    /// Enter.
    pub const ENTER: &str = "\u{E007}";
    /// Escape.
    pub const ESCAPE: &str = "\u{E00C}";
    /// Shift, then Enter: sent as its own "send keys" call, at whose end WebDriver releases Shift.
    pub const SHIFT_ENTER: &str = "\u{E008}\u{E007}";
}

/// The smallest window screenshot [`App::window_shot`] accepts: a window, not a sliver.
pub const MIN_WINDOW_SHOT_SIDE: u32 = 200;

/// Everything that can go wrong while driving the app.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A required environment variable is missing: the test was not started by the script.
    #[error(
        "{name} is not set: this test drives the real app window; run it with scripts/webdriver.sh"
    )]
    MissingEnv {
        /// The variable.
        name: &'static str,
    },
    /// The WebDriver session could not be started.
    #[error("could not start a WebDriver session for profile {profile} at {url}: {source}")]
    NewSession {
        /// The profile being launched.
        profile: String,
        /// The tauri-driver URL.
        url: String,
        /// What the client said.
        source: Box<fantoccini::error::NewSessionError>,
    },
    /// A WebDriver command failed.
    #[error("WebDriver command failed ({what}): {source}")]
    Command {
        /// What the harness was doing.
        what: String,
        /// What the driver said.
        source: Box<fantoccini::error::CmdError>,
    },
    /// A bounded wait ran out.
    #[error("timed out after {waited:?} waiting until {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        waited: Duration,
    },
    /// An outside tool (xdotool) failed.
    #[error("could not {what}: {detail}")]
    Tool {
        /// What the harness was doing.
        what: String,
        /// What the tool said.
        detail: String,
    },
    /// A window screenshot is a sliver or one colour.
    #[error("screenshot {path} is not a window: {summary:?}")]
    NotAWindow {
        /// The file.
        path: PathBuf,
        /// What it shows.
        summary: PictureSummary,
    },
    /// A screenshot could not be saved.
    #[error("could not write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Shorthand for harness results.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

fn command_error(
    what: impl Into<String>,
) -> impl FnOnce(fantoccini::error::CmdError) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Command {
        what,
        source: Box::new(source),
    }
}

/// The test environment prepared by `scripts/webdriver.sh`.
#[derive(Debug)]
pub struct Harness {
    driver_urls: Vec<String>,
    app_binary: PathBuf,
    data_dir: PathBuf,
    screenshot_dir: PathBuf,
    launched: AtomicUsize,
}

impl Harness {
    /// Reads the environment (see the crate docs).
    pub fn from_env() -> Result<Self> {
        let required = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
                .ok_or(HarnessError::MissingEnv { name })
        };
        let driver_urls = required("SEALPOST_WEBDRIVER_URLS")?
            .split(',')
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty())
            .collect::<Vec<_>>();
        if driver_urls.is_empty() {
            return Err(HarnessError::MissingEnv {
                name: "SEALPOST_WEBDRIVER_URLS",
            });
        }
        let screenshot_dir = std::env::var_os("SEALPOST_SCREENSHOT_DIR")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots")
            });
        Ok(Self {
            driver_urls,
            app_binary: PathBuf::from(required("SEALPOST_APP_BIN")?),
            data_dir: PathBuf::from(required("SEALPOST_DATA_DIR")?),
            screenshot_dir,
            launched: AtomicUsize::new(0),
        })
    }

    /// The data root the app instances use.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where a profile's files live (mirrors the app's layout: `DATA/profiles/NAME`).
    pub fn profile_dir(&self, profile: &str) -> PathBuf {
        self.data_dir.join("profiles").join(profile)
    }

    /// Where screenshots are saved.
    pub fn screenshot_dir(&self) -> &Path {
        &self.screenshot_dir
    }

    /// Where the app instances save attachments: `SEALPOST_DOWNLOAD_DIR`, which the script sets
    /// for the apps as well (`ui/CONTRACT.md`: `save_attachment` writes there, without a dialog).
    pub fn download_dir(&self) -> Result<PathBuf> {
        std::env::var_os("SEALPOST_DOWNLOAD_DIR")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .ok_or(HarnessError::MissingEnv {
                name: "SEALPOST_DOWNLOAD_DIR",
            })
    }

    /// Starts one app instance for `profile` in local test relay mode, with `extra_args` after
    /// the app's own, and connects to its window.
    pub async fn launch(&self, profile: &str, extra_args: &[&str]) -> Result<App> {
        let index = self.launched.fetch_add(1, Ordering::SeqCst);
        let url = self.driver_urls[index % self.driver_urls.len()].clone();
        let mut args = vec![
            "--profile".to_owned(),
            profile.to_owned(),
            "--local-relay".to_owned(),
        ];
        if let Some(port) = std::env::var_os("SEALPOST_LOCAL_RELAY_PORT") {
            args.push("--local-relay-port".to_owned());
            args.push(port.to_string_lossy().into_owned());
        }
        args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("wry"));
        capabilities.insert(
            "tauri:options".to_owned(),
            json!({ "application": self.app_binary, "args": args }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .map_err(|source| HarnessError::NewSession {
                profile: profile.to_owned(),
                url: url.clone(),
                source: Box::new(source),
            })?;
        Ok(App {
            profile: profile.to_owned(),
            client,
            screenshot_dir: self.screenshot_dir.clone(),
        })
    }
}

/// One running app instance and its WebDriver session.
#[derive(Debug)]
pub struct App {
    profile: String,
    client: Client,
    screenshot_dir: PathBuf,
}

/// The CSS selector of an element with a given `data-testid`.
pub fn test_id_selector(test_id: &str) -> String {
    format!(
        "[data-testid=\"{}\"]",
        test_id.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

impl App {
    /// The profile this instance runs.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The raw WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The document's title.
    pub async fn title(&self) -> Result<String> {
        self.client
            .title()
            .await
            .map_err(command_error("read the title"))
    }

    /// Waits until `probe` yields `Some`, looking every [`POLL_INTERVAL`] for at most `timeout`.
    /// `what` names the awaited state in the timeout error.
    pub async fn wait_until<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let started = Instant::now();
        loop {
            if let Some(value) = probe().await? {
                return Ok(value);
            }
            if started.elapsed() >= timeout {
                return Err(HarnessError::Timeout {
                    what: format!("{what} (profile {})", self.profile),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until an element matching the CSS `selector` exists and returns it.
    pub async fn wait_for_css(&self, selector: &str, timeout: Duration) -> Result<Element> {
        self.wait_until(&format!("{selector} is present"), timeout, || async {
            Ok(self
                .client
                .find_all(Locator::Css(selector))
                .await
                .map_err(command_error(format!("find {selector}")))?
                .into_iter()
                .next())
        })
        .await
    }

    /// Waits until the element with `data-testid="test_id"` exists and returns it.
    pub async fn by_test_id(&self, test_id: &str) -> Result<Element> {
        self.wait_for_css(&test_id_selector(test_id), DEFAULT_WAIT)
            .await
    }

    /// Whether an element with `data-testid="test_id"` exists right now (no waiting).
    pub async fn has_test_id(&self, test_id: &str) -> Result<bool> {
        let selector = test_id_selector(test_id);
        let found = self
            .client
            .find_all(Locator::Css(&selector))
            .await
            .map_err(command_error(format!("find {selector}")))?;
        Ok(!found.is_empty())
    }

    /// Clicks the element with `data-testid="test_id"` once it exists.
    pub async fn click(&self, test_id: &str) -> Result<()> {
        self.by_test_id(test_id)
            .await?
            .click()
            .await
            .map_err(command_error(format!("click {test_id}")))
    }

    /// Types `text` into the element with `data-testid="test_id"` once it exists (after what it
    /// already holds; use WebDriver key codes such as `"\u{E007}"` for Enter).
    pub async fn type_into(&self, test_id: &str, text: &str) -> Result<()> {
        self.by_test_id(test_id)
            .await?
            .send_keys(text)
            .await
            .map_err(command_error(format!("type into {test_id}")))
    }

    /// The visible text of the element with `data-testid="test_id"`.
    pub async fn text_of(&self, test_id: &str) -> Result<String> {
        self.by_test_id(test_id)
            .await?
            .text()
            .await
            .map_err(command_error(format!("read the text of {test_id}")))
    }

    /// The `textContent` of every element with `data-testid="test_id"`, in document order.
    /// (`textContent`, not WebDriver's rendered text: WebKitWebDriver reports text inside
    /// ellipsised or unfocused windows unreliably.)
    pub async fn texts_of(&self, test_id: &str) -> Result<Vec<String>> {
        let script =
            "return Array.from(document.querySelectorAll(arguments[0])).map((e) => e.textContent);";
        let value = self
            .client
            .execute(script, vec![json!(test_id_selector(test_id))])
            .await
            .map_err(command_error(format!("read the texts of {test_id}")))?;
        Ok(value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits until an element with `data-testid="test_id"` holds text for which `accept` holds,
    /// and returns that text.
    pub async fn wait_for_text(
        &self,
        test_id: &str,
        timeout: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> Result<String> {
        self.wait_until(
            &format!("{test_id} shows the expected text"),
            timeout,
            || async {
                let texts = self.texts_of(test_id).await?;
                Ok(texts.into_iter().find(|text| accept(text)))
            },
        )
        .await
    }

    /// The `value` property of the element with `data-testid="test_id"` (inputs, text areas).
    pub async fn value_of(&self, test_id: &str) -> Result<String> {
        let value = self
            .by_test_id(test_id)
            .await?
            .prop("value")
            .await
            .map_err(command_error(format!("read the value of {test_id}")))?;
        Ok(value.unwrap_or_default())
    }

    /// Gives this instance's window the keyboard focus, as a person clicking on it would. Xvfb
    /// runs no window manager, so `xdotool` sets the X input focus directly; the UI marks
    /// messages read only in a focused window.
    pub async fn focus_window(&self) -> Result<()> {
        let title = if self.profile == "default" {
            "Sealpost".to_owned()
        } else {
            format!("Sealpost ({})", self.profile)
        };
        let pattern = format!("^{}$", title.replace('(', "\\(").replace(')', "\\)"));
        // A short blocking call: xdotool returns at once.
        let output = std::process::Command::new("xdotool")
            .args(["search", "--name", &pattern, "windowraise", "windowfocus"])
            .output()
            .map_err(|source| HarnessError::Tool {
                what: format!("run xdotool to focus {title}"),
                detail: source.to_string(),
            })?;
        if !output.status.success() {
            return Err(HarnessError::Tool {
                what: format!("focus the window {title:?} with xdotool"),
                detail: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        // Let the focus-in event reach the page.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(())
    }

    /// Takes screenshots of the window until one is a real picture (the first frames after load
    /// can still be blank), for at most [`DEFAULT_WAIT`]. Each is saved as
    /// `SCREENSHOT_DIR/NAME.png`, so the last one is there to look at even when the wait fails.
    /// Returns the path and the summary of the picture.
    pub async fn screenshot(&self, name: &str) -> Result<(PathBuf, PictureSummary)> {
        std::fs::create_dir_all(&self.screenshot_dir).map_err(|source| HarnessError::Write {
            path: self.screenshot_dir.clone(),
            source,
        })?;
        let path = self.screenshot_dir.join(format!("{name}.png"));
        let what = format!("screenshot {name} shows a real picture (not blank)");
        let summary = self
            .wait_until(&what, DEFAULT_WAIT, || async {
                let png = self
                    .client
                    .screenshot()
                    .await
                    .map_err(command_error(format!("take screenshot {name}")))?;
                std::fs::write(&path, &png).map_err(|source| HarnessError::Write {
                    path: path.clone(),
                    source,
                })?;
                Ok(check_picture(&png).ok())
            })
            .await?;
        Ok((path, summary))
    }

    /// [`App::screenshot`] of the whole window: at least [`MIN_WINDOW_SHOT_SIDE`] pixels each way
    /// and more than one colour. Returns the path.
    pub async fn window_shot(&self, name: &str) -> Result<PathBuf> {
        let (path, summary) = self.screenshot(name).await?;
        if summary.width < MIN_WINDOW_SHOT_SIDE
            || summary.height < MIN_WINDOW_SHOT_SIDE
            || summary.colours < 2
        {
            return Err(HarnessError::NotAWindow { path, summary });
        }
        Ok(path)
    }

    /// `result` as it is; if it is an error, first a screenshot `failed-PROFILE-what` (best
    /// effort: a failed screenshot does not hide the error), to look at after a failed step.
    pub async fn shot_on_failure<T>(&self, result: Result<T>, what: &str) -> Result<T> {
        if result.is_err() {
            let _ = self
                .screenshot(&format!("failed-{}-{what}", self.profile))
                .await;
        }
        result
    }

    /// Ends the WebDriver session, which closes the app instance.
    pub async fn close(self) -> Result<()> {
        self.client
            .close()
            .await
            .map_err(command_error("close the session"))
    }
}

/// What a screenshot shows, roughly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureSummary {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Number of different colours found (counting stops at [`PictureSummary::COLOUR_CAP`]).
    pub colours: usize,
}

impl PictureSummary {
    /// Counting colours stops here; more than this is "plenty".
    pub const COLOUR_CAP: usize = 4096;
}

/// Decodes a PNG and checks it is a real picture: at least 16×16 pixels and more than one colour
/// (a blank or failed webview renders as a single colour). Returns why not, in words.
pub fn check_picture(png_bytes: &[u8]) -> std::result::Result<PictureSummary, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|error| format!("not a PNG: {error}"))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| "the PNG is too large to decode".to_owned())?;
    let mut pixels = vec![0; size];
    let frame = reader
        .next_frame(&mut pixels)
        .map_err(|error| format!("the PNG does not decode: {error}"))?;
    if frame.width < 16 || frame.height < 16 {
        return Err(format!("only {}×{} pixels", frame.width, frame.height));
    }
    let channels = frame.color_type.samples();
    let mut colours = std::collections::HashSet::new();
    for pixel in pixels
        .get(..frame.buffer_size())
        .unwrap_or_default()
        .chunks_exact(channels)
    {
        colours.insert(pixel.to_vec());
        if colours.len() >= PictureSummary::COLOUR_CAP {
            break;
        }
    }
    if colours.len() < 2 {
        return Err("a single colour: the window shows nothing".to_owned());
    }
    Ok(PictureSummary {
        width: frame.width,
        height: frame.height,
        colours: colours.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&pixel(x, y));
            }
        }
        writer.write_image_data(&data).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn accepts_a_picture_with_content() {
        let png = encode(32, 32, |x, _| {
            if x < 16 {
                [255, 255, 255]
            } else {
                [20, 30, 40]
            }
        });
        let summary = check_picture(&png).unwrap();
        assert_eq!(
            (summary.width, summary.height, summary.colours),
            (32, 32, 2)
        );
    }

    #[test]
    fn refuses_a_single_colour() {
        let png = encode(32, 32, |_, _| [255, 255, 255]);
        assert!(check_picture(&png).unwrap_err().contains("single colour"));
    }

    #[test]
    fn refuses_a_tiny_picture() {
        let png = encode(4, 4, |x, _| [x as u8, 0, 0]);
        assert!(check_picture(&png).unwrap_err().contains("4×4"));
    }

    #[test]
    fn refuses_non_png_and_truncated_bytes() {
        assert!(check_picture(b"not a png").is_err());
        let png = encode(32, 32, |x, y| [x as u8, y as u8, 0]);
        assert!(check_picture(&png[..png.len() / 2]).is_err());
        assert!(check_picture(&[]).is_err());
    }

    #[test]
    fn test_id_selector_quotes() {
        assert_eq!(test_id_selector("composer"), "[data-testid=\"composer\"]");
        assert_eq!(test_id_selector("a\"b"), "[data-testid=\"a\\\"b\"]");
    }
}
