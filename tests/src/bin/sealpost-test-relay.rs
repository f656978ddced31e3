//! A relay as a separate process, for the crash tests (`tests/tests/crash.rs`): they kill it
//! with SIGKILL mid-conversation and start it again on the same address and database.
//!
//! Usage: `sealpost-test-relay LISTEN_ADDR DATABASE_PATH` (`127.0.0.1:0` picks a free port).
//! Prints `listening ADDR` on stdout once it accepts connections, then serves until killed.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use sealpost_relay::{Relay, RelayConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .context("usage: sealpost-test-relay LISTEN_ADDR DATABASE_PATH")?
        .parse()
        .context("LISTEN_ADDR is not an address")?;
    let database = PathBuf::from(args.next().context("DATABASE_PATH is missing")?);
    let handle = Relay::start(RelayConfig {
        listen,
        database: database.into(),
        ..RelayConfig::default()
    })
    .await
    .context("starting the relay")?;
    println!("listening {}", handle.addr());
    // Serve until killed; a clean SIGTERM or Ctrl-C also stops it.
    tokio::signal::ctrl_c()
        .await
        .context("waiting for a signal")?;
    handle.shutdown().await.context("stopping the relay")?;
    Ok(())
}
