//! An image and a file between two real windows (issue 13, `docs/engine.md` § Attachments).
//! Started by `scripts/webdriver.sh` (see the harness crate's docs for the environment).
//!
//! Bob chooses two files in the attach button's file chooser: a PNG holding an EXIF block with a
//! GPS position, and a file with a Japanese name (its name crosses IPC percent-encoded, its
//! bytes raw: `ui/CONTRACT.md` § Files across IPC). Alice sees the image's preview (a PNG the
//! engine encoded) and the file's card, downloads the file and saves both; saving needs no
//! dialog (`SEALPOST_DOWNLOAD_DIR`). The saved file equals the original byte for byte, the saved
//! image has the original's pixels and no EXIF block, and neither profile holds the file's
//! bytes at rest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use sealpost_client::scan::{Needle, scan_dir_for_needles};
use sealpost_webdriver_tests::{App, DEFAULT_WAIT, Harness, steps, test_id_selector};
use serde_json::json;

const ALICE_NAME: &str = "Alice Almond";
const BOB_NAME: &str = "Bob Beech";
const HELLO: &str = "Two files coming your way";

/// The image: small enough to download by itself.
const IMAGE_NAME: &str = "harbour.png";
const IMAGE_SIZE: (u32, u32) = (320, 200);
/// What the image's EXIF block says (an ImageDescription next to a GPS position): it must not
/// reach Alice.
const EXIF_TEXT: &str = "GPS 48.8583 N 2.2945 E sealpost-exif-marker";

/// The file: a Japanese name, several chunks, a marker to scan the profiles for.
const FILE_NAME: &str = "測量報告書.pdf";
const FILE_BYTES: usize = 300_000;
const FILE_MARKER: &[u8] = b"sealpost-webdriver-file-marker";

/// Delivery through the relay (and the uploads) on a loaded machine.
const DELIVERY_WAIT: Duration = Duration::from_secs(120);

/// Alice and Bob become contacts (Bob writes [`HELLO`]); Alice opens the chat with him.
async fn make_contacts(alice: &App, bob: &App) {
    steps::make_contacts(alice, bob, BOB_NAME, HELLO, DELIVERY_WAIT)
        .await
        .unwrap();
    alice.focus_window().await.unwrap();
    alice.click("chat-row").await.unwrap();
    alice
        .wait_for_text("message-text", DELIVERY_WAIT, |text| text == HELLO)
        .await
        .unwrap();
}

/// A PNG of `IMAGE_SIZE` with an `eXIf` chunk: a big-endian TIFF header and one IFD entry,
/// ImageDescription = [`EXIF_TEXT`]. Returns the PNG and its RGB pixels.
fn image_with_exif() -> (Vec<u8>, Vec<u8>) {
    let (width, height) = IMAGE_SIZE;
    let mut pixels = Vec::new();
    for y in 0..height {
        for x in 0..width {
            pixels.extend_from_slice(&[
                (x % 256) as u8,
                (y * 2 % 256) as u8,
                ((x + y) % 256) as u8,
            ]);
        }
    }
    let text = [EXIF_TEXT.as_bytes(), &[0]].concat();
    let mut exif = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    exif.extend_from_slice(&[0x00, 0x01]); // one entry
    exif.extend_from_slice(&[0x01, 0x0e, 0x00, 0x02]); // ImageDescription, ASCII
    exif.extend_from_slice(&u32::try_from(text.len()).unwrap().to_be_bytes());
    exif.extend_from_slice(&26u32.to_be_bytes()); // the text's offset
    exif.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    exif.extend_from_slice(&text);
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer
        .write_chunk(png::chunk::ChunkType(*b"eXIf"), &exif)
        .unwrap();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    (png_bytes, pixels)
}

/// The RGB pixels of a PNG (any colour type, 8 bits).
fn rgb_pixels(png_bytes: &[u8]) -> Vec<u8> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    assert_eq!((frame.width, frame.height), IMAGE_SIZE);
    let channels = frame.color_type.samples();
    buffer[..frame.buffer_size()]
        .chunks_exact(channels)
        .flat_map(|pixel| pixel[..3].to_vec())
        .collect()
}

fn file_bytes() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..FILE_BYTES).map(|i| (i * 13 % 241) as u8).collect();
    bytes[..FILE_MARKER.len()].copy_from_slice(FILE_MARKER);
    bytes
}

/// Runs `script` in `app`'s page with `card`, the card of the attachment named `name` (or
/// `undefined`), and `extra` as `arguments[3]` and on; returns what it returns.
async fn in_card(app: &App, name: &str, script: &str, extra: &[&str]) -> serde_json::Value {
    let script = format!(
        "const card = Array.from(document.querySelectorAll(arguments[0]))
        .find((c) => c.querySelector(arguments[1])?.textContent === arguments[2]);
        {script}"
    );
    let mut arguments = vec![
        json!(test_id_selector("attachment")),
        json!(test_id_selector("attachment-name")),
        json!(name),
    ];
    arguments.extend(extra.iter().map(|argument| json!(argument)));
    app.client().execute(&script, arguments).await.unwrap()
}

/// The card of the attachment named `name`: its state, and the natural size of its preview
/// image once that has decoded.
async fn card(app: &App, name: &str) -> Option<(String, Option<(u64, u64)>)> {
    let script = "if (card === undefined) return null;
        const img = card.querySelector('img.attachment-preview');
        const size = img !== null && img.complete && img.naturalWidth > 0
            ? [img.naturalWidth, img.naturalHeight] : null;
        return [card.dataset.state, size];";
    let found = in_card(app, name, script, &[]).await;
    let state = found.get(0)?.as_str()?.to_owned();
    let size = found
        .get(1)
        .and_then(|size| Some((size.get(0)?.as_u64()?, size.get(1)?.as_u64()?)));
    Some((state, size))
}

/// Waits until the card of `name` is in `state`.
async fn wait_card_state(app: &App, name: &str, state: &str) {
    let found = app
        .wait_until(
            &format!("the card of {name} is {state}"),
            DELIVERY_WAIT,
            || async { Ok(card(app, name).await.filter(|(now, _)| now == state)) },
        )
        .await;
    app.shot_on_failure(found, "card").await.unwrap();
}

/// Clicks the control `test_id` inside the card of `name`.
async fn click_in_card(app: &App, name: &str, test_id: &str) {
    let script = "const button = card?.querySelector(arguments[3]);
        if (button == null) return false;
        button.click();
        return true;";
    let clicked = in_card(app, name, script, &[&test_id_selector(test_id)]).await;
    assert_eq!(clicked, json!(true), "{test_id} of {name} is there");
}

/// Saves the attachment `name` and returns the bytes written: its card says where once the
/// engine has written the whole file.
async fn save(app: &App, download_dir: &Path, name: &str) -> Vec<u8> {
    click_in_card(app, name, "attachment-save").await;
    let saved = app
        .wait_until(&format!("{name} is saved"), DEFAULT_WAIT, || async {
            let shown = app.texts_of("attachment-saved").await?;
            Ok(shown.into_iter().find(|text| text.contains(name)))
        })
        .await
        .unwrap();
    let path: PathBuf = download_dir.join(name);
    assert!(
        saved.contains(&path.display().to_string()),
        "the card names {}: {saved:?}",
        path.display()
    );
    std::fs::read(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_and_a_file_cross_between_two_windows_and_are_saved_intact() {
    let harness = Harness::from_env().unwrap();
    let download_dir = harness.download_dir().unwrap();
    let alice = harness.launch("files_alice", &[]).await.unwrap();
    let bob = harness.launch("files_bob", &[]).await.unwrap();
    steps::onboard(&alice, ALICE_NAME).await.unwrap();
    steps::onboard(&bob, BOB_NAME).await.unwrap();
    make_contacts(&alice, &bob).await;

    // Bob picks both files in the file chooser of the attach button.
    let (image, image_pixels) = image_with_exif();
    assert!(
        image
            .windows(EXIF_TEXT.len())
            .any(|w| w == EXIF_TEXT.as_bytes()),
        "the test image carries its EXIF block"
    );
    let file = file_bytes();
    let outbox = tempfile::tempdir().unwrap();
    let image_path = outbox.path().join(IMAGE_NAME);
    let file_path = outbox.path().join(FILE_NAME);
    std::fs::write(&image_path, &image).unwrap();
    std::fs::write(&file_path, &file).unwrap();
    bob.focus_window().await.unwrap();
    bob.by_test_id("attach-input")
        .await
        .unwrap()
        .send_keys(&format!(
            "{}\n{}",
            image_path.display(),
            file_path.display()
        ))
        .await
        .unwrap();
    wait_card_state(&bob, IMAGE_NAME, "complete").await;
    wait_card_state(&bob, FILE_NAME, "complete").await;

    // Alice: the image downloads by itself and its preview, first made from the thumbnail (at
    // most 256 px a side), becomes the whole image; the file waits for her.
    alice.focus_window().await.unwrap();
    let full_size = (u64::from(IMAGE_SIZE.0), u64::from(IMAGE_SIZE.1));
    let preview = alice
        .wait_until(
            "the image's full preview is shown",
            DELIVERY_WAIT,
            || async {
                Ok(card(&alice, IMAGE_NAME)
                    .await
                    .filter(|(state, size)| state == "complete" && *size == Some(full_size)))
            },
        )
        .await;
    alice.shot_on_failure(preview, "preview").await.unwrap();
    wait_card_state(&alice, FILE_NAME, "offered").await;
    bob.window_shot("attachments-sender").await.unwrap();
    click_in_card(&alice, FILE_NAME, "attachment-download").await;
    wait_card_state(&alice, FILE_NAME, "complete").await;

    // Saved without a dialog: the file byte for byte, the image without its EXIF block.
    let saved_file = save(&alice, &download_dir, FILE_NAME).await;
    assert!(
        saved_file == file,
        "the saved file differs from the original"
    );
    let saved_image = save(&alice, &download_dir, IMAGE_NAME).await;
    assert!(
        !saved_image
            .windows(EXIF_TEXT.len())
            .any(|w| w == EXIF_TEXT.as_bytes()),
        "the EXIF block reached the recipient"
    );
    assert!(
        rgb_pixels(&saved_image) == image_pixels,
        "the image's pixels changed"
    );
    // The file's card, with where it was saved, in view for the screenshot.
    let script = "const cards = Array.from(document.querySelectorAll(arguments[0]));
        cards[cards.length - 1]?.scrollIntoView({ block: 'end' });";
    alice
        .client()
        .execute(script, vec![json!(test_id_selector("attachment"))])
        .await
        .unwrap();
    alice.window_shot("attachments-receiver").await.unwrap();

    alice.close().await.unwrap();
    bob.close().await.unwrap();

    // At rest, neither profile (store, chunk files, the webview's data) holds the file's bytes.
    let needles = [Needle::new("the file's marker", FILE_MARKER.to_vec())];
    for profile in ["files_alice", "files_bob"] {
        let findings = scan_dir_for_needles(&harness.profile_dir(profile), &needles);
        assert!(
            findings.is_empty(),
            "plaintext found in profile {profile}: {findings:?}"
        );
    }
}
