//! A client as a separate process for the attachment crash tests
//! (`tests/tests/attachment_crash.rs`): it opens an existing profile's engine (real OS keychain,
//! inherited D-Bus session) with a blob transport that pauses before every chunk
//! ([`WatchedBlobs`]), starts one transfer, and reports it until it is killed with SIGKILL in the
//! middle of it.
//!
//! Usage:
//! - `sealpost-test-transfer PROFILE DATA_ROOT PAUSE_MS upload CONTACT_ID FILE`: sends the file
//!   at FILE (under its own name) to the contact.
//! - `sealpost-test-transfer PROFILE DATA_ROOT PAUSE_MS download ATTACHMENT_ID`: downloads a
//!   received file.
//!
//! Prints `started ID` once the transfer is the engine's, then `progress ID DONE TOTAL` for every
//! `attachment-updated` event (the engine records progress every 8 chunks), then waits to be
//! killed.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sealpost_client::engine::OutgoingFile;
use sealpost_client::{Engine, EngineEvent, ProfileName};
use sealpost_test_support::engine_config;
use sealpost_tests::watched_blobs::WatchedBlobs;

fn say(line: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{line}").context("stdout")?;
    stdout.flush().context("stdout")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let usage = "usage: sealpost-test-transfer PROFILE DATA_ROOT PAUSE_MS \
                 (upload CONTACT_ID FILE | download ATTACHMENT_ID)";
    let mut args = std::env::args().skip(1);
    let profile = ProfileName::new(&args.next().context(usage)?).context("PROFILE")?;
    let root = PathBuf::from(args.next().context(usage)?);
    let pause: u64 = args
        .next()
        .context(usage)?
        .parse()
        .context("PAUSE_MS is not a number")?;
    let mode = args.next().context(usage)?;

    // The test's engine configuration (the real keychain vault), with the pausing transport.
    let mut config = engine_config(&profile, &root);
    config.blobs = Some(
        WatchedBlobs::over_relay(&config, Duration::from_millis(pause))
            .context("the blob transport")?,
    );
    let (engine, mut events) = Engine::open(config).await.context("opening the engine")?;
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let EngineEvent::AttachmentUpdated { attachment } = event {
                let line = format!(
                    "progress {} {} {}",
                    attachment.id, attachment.done_chunks, attachment.total_chunks
                );
                if say(&line).is_err() {
                    return;
                }
            }
        }
    });

    let started = match mode.as_str() {
        "upload" => {
            let contact = args.next().context(usage)?;
            let path = PathBuf::from(args.next().context(usage)?);
            let file_name = path
                .file_name()
                .context("FILE has no name")?
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).with_context(|| format!("reading {path:?}"))?;
            let file = OutgoingFile {
                file_name,
                media_type: "application/octet-stream".to_owned(),
                bytes,
            };
            engine
                .send_attachment(&contact, file)
                .await
                .context("send_attachment")?
        }
        "download" => {
            let attachment = args.next().context(usage)?;
            engine
                .download_attachment(&attachment)
                .await
                .context("download_attachment")?
        }
        other => anyhow::bail!("unknown mode {other:?}; {usage}"),
    };
    say(&format!("started {}", started.id))?;
    // Keep the transfer running until the test kills this process.
    tokio::time::sleep(Duration::from_secs(600)).await;
    Ok(())
}
