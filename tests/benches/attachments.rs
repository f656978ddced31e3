//! A large file through the real engine (issue 13, `docs/benchmarks.md` § Client engine,
//! Attachments): run under a keychain as
//! `scripts/with-keyring.sh cargo bench -p sealpost-tests --bench attachments -- [MIB]`
//! (default 100).
//!
//! Two engines (two profiles on the real keychain, SQLCipher stores) and one in-process relay on
//! 127.0.0.1 with its blob store, all in this process. The file is written to disk first
//! (pseudo-random bytes, never an image, so the engine streams it). Measured:
//!
//! * **upload**: from `send_attachment_from_path` until the sender's attachment is `complete`
//!   (encrypted into chunk files, BLOB-CREATE, every chunk stored by the relay, the pointer
//!   sealed);
//! * **download**: from `download_attachment` until the receiver's attachment is `complete`
//!   (every chunk fetched, opened, written, the digest checked, the grant released);
//! * **save**: `save_attachment` (every chunk opened again and written as plaintext);
//! * **peak RSS above idle**: the process's resident set sampled every 5 ms (and VmHWM after
//!   `clear_refs`), minus VmRSS once both clients are up and idle. It covers the relay AND both
//!   engines (one process), so it bounds each of them.
//!
//! The saved file is compared with the original, block by block.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sealpost_client::engine::AttachmentStateView;
use sealpost_test_support::bench::machine;
use sealpost_test_support::{two_clients_on_new_relay, wait_attachment_state as wait_state};

const MIB: u64 = 1024 * 1024;

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Writes `bytes` pseudo-random bytes (xorshift) to `path`, 1 MiB at a time.
fn write_file(path: &std::path::Path, bytes: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; MIB as usize];
    let mut left = bytes;
    while left > 0 {
        for word in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        let take = left.min(MIB) as usize;
        file.write_all(&block[..take]).unwrap();
        left -= take as u64;
    }
    file.flush().unwrap();
}

/// Whether two files hold the same bytes (read 1 MiB at a time).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    let (mut a, mut b) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut x, mut y) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    loop {
        let n = a.read(&mut x).unwrap();
        let mut filled = 0;
        while filled < n {
            let m = b.read(&mut y[filled..n]).unwrap();
            if m == 0 {
                return false;
            }
            filled += m;
        }
        if n == 0 {
            return b.read(&mut y[..1]).unwrap() == 0;
        }
        if x[..n] != y[..n] {
            return false;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mib: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    println!("attachments bench: {mib} MiB, {}", machine());
    let (_relay, root, (alice, bob, alice_bob, bob_alice, _invite, _secrets)) =
        two_clients_on_new_relay(|_| {}).await;
    let original = root.path().join("big.bin");
    write_file(&original, mib * MIB);
    // A first message both ways, so sessions and connections are up before "idle".
    alice.send(&alice_bob, "hi").await;
    bob.wait_incoming_text(&bob_alice, "hi").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let idle_kib = status_kib("VmRSS:");
    // Reset the kernel's high-water mark; the sampler is the fallback where that is refused.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let peak_kib = Arc::new(AtomicU64::new(idle_kib));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak_kib, stop) = (peak_kib.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak_kib.fetch_max(status_kib("VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let started = Instant::now();
    alice
        .engine
        .send_attachment_from_path(&alice_bob, &original, "application/octet-stream")
        .await
        .unwrap();
    let queued = started.elapsed();
    wait_state(&alice, &alice_bob, "big.bin", AttachmentStateView::Complete).await;
    let uploaded = started.elapsed();

    let offered = wait_state(&bob, &bob_alice, "big.bin", AttachmentStateView::Offered).await;
    let download_started = Instant::now();
    bob.engine.download_attachment(&offered.id).await.unwrap();
    wait_state(&bob, &bob_alice, "big.bin", AttachmentStateView::Complete).await;
    let downloaded = download_started.elapsed();

    let save_started = Instant::now();
    let saved_dir = root.path().join("saved");
    let saved = bob
        .engine
        .save_attachment(&offered.id, &saved_dir)
        .await
        .unwrap();
    let save = save_started.elapsed();

    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let sampled_kib = peak_kib.load(Ordering::Relaxed);
    let hwm_kib = status_kib("VmHWM:");
    assert!(same_file(&original, &saved), "the saved file differs");

    let rate = |d: Duration| (mib as f64) / d.as_secs_f64();
    println!(
        "  upload:   {uploaded:.2?} ({:.1} MiB/s; send_attachment_from_path returned after {queued:.2?}: encrypted to chunk files)",
        rate(uploaded)
    );
    println!(
        "  download: {downloaded:.2?} ({:.1} MiB/s)",
        rate(downloaded)
    );
    println!("  save:     {save:.2?} ({:.1} MiB/s)", rate(save));
    println!(
        "  RSS: idle {} MiB; peak sampled {} MiB (+{} MiB), VmHWM {} MiB (+{} MiB) [relay and both engines, one process]",
        idle_kib / 1024,
        sampled_kib / 1024,
        sampled_kib.saturating_sub(idle_kib) / 1024,
        hwm_kib / 1024,
        hwm_kib.saturating_sub(idle_kib) / 1024,
    );
    println!("  end: {}", machine());
}
