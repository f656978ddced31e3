//! A relay as a separate process, for the crash tests (`tests/tests/crash.rs`): they kill it
//! with SIGKILL mid-conversation and start it again on the same address and database.
//!
//! Usage: `sealpost-test-relay [--log FILTER] --listen ADDR --database PATH` (`127.0.0.1:0`
//! picks a free port), the flags `sealpost_test_support::RelayProcess` passes. Prints
//! `listening on ws://ADDR` on stdout once it accepts connections, as `sealpost-relay` does,
//! then serves until killed. With `--log`, it logs to stderr as `sealpost-relay --log FILTER`
//! does (the relay-blindness test reads that log at `trace`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use sealpost_relay::{Relay, RelayConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let usage = "usage: sealpost-test-relay [--log FILTER] --listen ADDR --database PATH";
    let mut listen: Option<SocketAddr> = None;
    let mut database: Option<PathBuf> = None;
    let mut log: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().context(usage)?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().context("--listen is not an address")?),
            "--database" => database = Some(PathBuf::from(value)),
            "--log" => log = Some(value),
            _ => anyhow::bail!("{usage}"),
        }
    }
    if let Some(filter) = log {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).context("--log")?)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let config = RelayConfig {
        listen: listen.context(usage)?,
        database: database.context(usage)?.into(),
        ..RelayConfig::default()
    };
    tracing::info!(?config, "starting relay");
    let handle = Relay::start(config).await.context("starting the relay")?;
    println!("listening on ws://{}", handle.addr());
    // Serve until killed; a clean SIGTERM or Ctrl-C also stops it.
    tokio::signal::ctrl_c()
        .await
        .context("waiting for a signal")?;
    handle.shutdown().await.context("stopping the relay")?;
    Ok(())
}
