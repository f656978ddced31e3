//! A client as a separate process, for the crash tests (`tests/tests/crash.rs`): it opens an
//! existing profile's engine (real OS keychain, inherited D-Bus session) and sends messages
//! until it is killed with SIGKILL mid-send.
//!
//! Usage: `sealpost-test-sender PROFILE DATA_ROOT CONTACT_ID COUNT PREFIX`.
//! Sends `PREFIX 0` … `PREFIX COUNT-1` one after another; prints `queued N` on stdout after each
//! `send_message` returns (the message is stored and sealed), then waits to be killed.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sealpost_client::{Engine, ProfileName};
use sealpost_test_support::engine_config;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let usage = "usage: sealpost-test-sender PROFILE DATA_ROOT CONTACT_ID COUNT PREFIX";
    let mut args = std::env::args().skip(1);
    let profile = ProfileName::new(&args.next().context(usage)?).context("PROFILE")?;
    let root = PathBuf::from(args.next().context(usage)?);
    let contact = args.next().context(usage)?;
    let count: usize = args
        .next()
        .context(usage)?
        .parse()
        .context("COUNT is not a number")?;
    let prefix = args.next().context(usage)?;

    // The same engine configuration as the test's own clients (the real keychain vault).
    let (engine, mut events) = Engine::open(engine_config(&profile, &root))
        .await
        .context("opening the engine")?;
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let mut stdout = std::io::stdout();
    for index in 0..count {
        engine
            .send_message(&contact, &format!("{prefix} {index}"))
            .await
            .with_context(|| format!("sending message {index}"))?;
        writeln!(stdout, "queued {index}").context("stdout")?;
        stdout.flush().context("stdout")?;
    }
    // Keep the outbox running until the test kills this process.
    tokio::time::sleep(Duration::from_secs(600)).await;
    Ok(())
}
