//! `sealpost-relay`: run a Sealpost relay from the command line.
//!
//! Settings come from defaults, then an optional TOML file (`--config`), then flags. On start it
//! prints one machine-readable line on stdout: `listening on ws://ADDR` (or `wss://`). SIGTERM
//! or Ctrl-C shuts it down gracefully: in-flight requests are committed and answered first.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use sealpost_relay::{Database, Relay, RelayConfig, TlsConfig};

/// A blind, durable store-and-forward relay for Sealpost sealed envelopes.
#[derive(Debug, Parser)]
#[command(name = "sealpost-relay", version, about, long_about = None)]
struct Args {
    /// TOML configuration file (keys as in RelayConfig: listen, database, password, [tls],
    /// [limits]). Flags override it.
    #[arg(long, short = 'c', env = "SEALPOST_RELAY_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:7443; port 0 picks a free port.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// SQLite database file (created if absent), or a postgres:// URL that several relay nodes
    /// share (prefer the config file or the env variable: the URL may hold a password).
    #[arg(long, env = "SEALPOST_RELAY_DATABASE", hide_env_values = true)]
    database: Option<Database>,
    /// PEM certificate chain for wss:// (requires --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for wss:// (requires --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Relay password that CREATE must present (prefer the env variable or config file).
    #[arg(long, env = "SEALPOST_RELAY_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Serve Prometheus metrics (GET /metrics, plain HTTP) on this address, e.g.
    /// 127.0.0.1:9464. Off unless set here or as `metrics_listen` in the config file.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Largest WebSocket frame accepted, bytes.
    #[arg(long)]
    max_frame_bytes: Option<usize>,
    /// Largest envelope accepted in SEND, bytes.
    #[arg(long)]
    max_envelope_bytes: Option<usize>,
    /// Most simultaneous connections.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Most envelopes stored per mailbox.
    #[arg(long)]
    mailbox_max_envelopes: Option<u64>,
    /// Most envelope bytes stored per mailbox.
    #[arg(long)]
    mailbox_max_bytes: Option<u64>,
    /// Envelope time to live, seconds.
    #[arg(long)]
    envelope_ttl_secs: Option<u64>,
    /// Mailboxes unused by their owner for this long are deleted, seconds.
    #[arg(long)]
    mailbox_idle_ttl_secs: Option<u64>,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "sealpost_relay=debug".
    #[arg(long, env = "SEALPOST_RELAY_LOG", default_value = "info")]
    log: String,
}

fn load_config(args: &Args) -> Result<RelayConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("parsing config file {}", path.display()))?
        }
        None => RelayConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(database) = &args.database {
        config.database = database.clone();
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    if let Some(password) = &args.password {
        config.password = Some(password.clone());
    }
    if let Some(metrics_listen) = args.metrics_listen {
        config.metrics_listen = Some(metrics_listen);
    }
    let limits = &mut config.limits;
    if let Some(value) = args.max_frame_bytes {
        limits.max_frame_bytes = value;
    }
    if let Some(value) = args.max_envelope_bytes {
        limits.max_envelope_bytes = value;
    }
    if let Some(value) = args.max_connections {
        limits.max_connections = value;
    }
    if let Some(value) = args.mailbox_max_envelopes {
        limits.mailbox_max_envelopes = value;
    }
    if let Some(value) = args.mailbox_max_bytes {
        limits.mailbox_max_bytes = value;
    }
    if let Some(value) = args.envelope_ttl_secs {
        limits.envelope_ttl_secs = value;
    }
    if let Some(value) = args.mailbox_idle_ttl_secs {
        limits.mailbox_idle_ttl_secs = value;
    }
    Ok(config)
}

async fn wait_for_signal() -> Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("installing the SIGTERM handler")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("--log")?)
        .with_writer(std::io::stderr)
        .init();
    let config = load_config(&args)?;
    let scheme = if config.tls.is_some() { "wss" } else { "ws" };
    tracing::info!(?config, "starting relay");
    let relay = Relay::start(config).await.context("starting the relay")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {scheme}://{}", relay.addr()).context("stdout")?;
        if let Some(metrics) = relay.metrics_addr() {
            writeln!(stdout, "metrics on http://{metrics}/metrics").context("stdout")?;
        }
        stdout.flush().context("stdout")?;
    }
    wait_for_signal().await?;
    tracing::info!("shutting down");
    relay.shutdown().await.context("shutting down")?;
    tracing::info!("stopped");
    Ok(())
}
