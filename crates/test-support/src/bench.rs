//! What the bench binaries share (`docs/benchmarks.md`): percentiles of sorted samples, a line
//! describing the machine's load, and the disk's fdatasync latency (the floor under every
//! durable commit).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// The `p` (0.0–1.0) percentile of `sorted` (ascending, not empty), nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let last = sorted.len().saturating_sub(1);
    let index = (last as f64 * p).round() as usize;
    sorted[index.min(last)]
}

/// "nproc=N loadavg=A B C": the cores and the load average right now.
pub fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "nproc={cores} loadavg={}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// `count` fdatasync latencies of a 4 KiB write in `dir` right now, sorted ascending.
pub fn fdatasync_samples(dir: &Path, count: usize) -> Vec<Duration> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).unwrap();
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        file.write_all(&[0u8; 4096]).unwrap();
        let start = Instant::now();
        file.sync_data().unwrap();
        samples.push(start.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path).unwrap();
    samples.sort();
    samples
}
