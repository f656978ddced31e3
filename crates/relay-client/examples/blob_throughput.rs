//! Blob throughput on loopback (`docs/benchmarks.md` § Relay): an embedded relay on
//! 127.0.0.1:0 with a SQLite file, one 100 MiB blob (1 600 sealed-size chunks) uploaded over one
//! [`sealpost_relay_client::BlobConnection`] with `IN_FLIGHT` puts pipelined, then downloaded
//! over another with `IN_FLIGHT` gets pipelined. Prints the wall time of each phase, MiB/s of
//! file bytes, and the process's peak RSS (relay and client share the process).
//!
//! `cargo run --release -p sealpost-relay-client --example blob_throughput [DIR]` (DIR: where the
//! relay's database goes; default a temporary directory). Rate limits are raised so they do not
//! cap the figure (with the defaults a connection sends 500 frames/s after a burst of 1 000).

use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt};
use sealpost_relay::{Limits, Rate, Relay, RelayConfig};
use sealpost_relay_client::{
    BLOB_CHUNK_BYTES, BlobUpload, Connector, ConnectorConfig, RelayUrl, random_download,
};

const CHUNKS: u32 = 1_600;
const IN_FLIGHT: usize = 8;
/// Plaintext bytes per chunk (the file size a chunk carries).
const FILE_BYTES_PER_CHUNK: f64 = 65_536.0;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temporary = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temporary.path().to_path_buf());
    let generous = Rate {
        per_second: 1_000_000,
        burst: 1_000_000,
    };
    let config = RelayConfig {
        listen: "127.0.0.1:0".parse()?,
        database: dir.join("relay.db").into(),
        limits: Limits {
            rate_per_connection: generous,
            rate_per_ip: generous,
            ..Limits::default()
        },
        ..RelayConfig::default()
    };
    let relay = Relay::start(config).await?;
    let url = RelayUrl::parse(&format!("ws://{}", relay.addr()))?;
    let connector = Connector::new(ConnectorConfig::default())?;
    let chunk: Vec<u8> = (0..BLOB_CHUNK_BYTES)
        .map(|k| (k * 131 % 251) as u8)
        .collect();
    let upload = BlobUpload::random()?;
    let recipient = random_download()?;
    let mib = f64::from(CHUNKS) * FILE_BYTES_PER_CHUNK / (1024.0 * 1024.0);

    let uploader = connector.connect_blob(&url).await?;
    let started = Instant::now();
    uploader
        .create(&upload, CHUNKS, std::slice::from_ref(&recipient), None)
        .await?;
    futures_util::stream::iter(0..CHUNKS)
        .map(|index| {
            let (uploader, upload, chunk) = (uploader.clone(), upload.clone(), &chunk);
            async move { uploader.put_chunk(&upload, index, chunk).await }
        })
        .buffered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    let upload_secs = started.elapsed().as_secs_f64();
    uploader.close();

    let downloader = connector.connect_blob(&url).await?;
    let started = Instant::now();
    let expected = &chunk;
    let received = futures_util::stream::iter(0..CHUNKS)
        .map(|index| {
            let (downloader, recipient) = (downloader.clone(), &recipient);
            async move { downloader.get_chunk(recipient, index).await }
        })
        .buffered(IN_FLIGHT)
        .try_fold(0usize, |count, bytes| async move {
            Ok(count + usize::from(bytes == *expected))
        })
        .await?;
    let download_secs = started.elapsed().as_secs_f64();
    if received != CHUNKS as usize {
        return Err(format!("{received} of {CHUNKS} chunks came back intact").into());
    }
    println!(
        "blob {mib:.0} MiB in {CHUNKS} chunks, {IN_FLIGHT} in flight: upload {upload_secs:.2} s \
         ({:.1} MiB/s), download {download_secs:.2} s ({:.1} MiB/s), peak RSS {:.0} MiB",
        mib / upload_secs,
        mib / download_secs,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    relay.shutdown().await?;
    Ok(())
}
