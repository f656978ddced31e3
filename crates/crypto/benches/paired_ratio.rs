//! Paired ratio benchmark: on a shared, noisy machine, criterion's sequential groups can see
//! different background load. This binary alternates short batches of our path and its floor
//! (swapping the order each round) and reports the median of the per-round ratios, which
//! cancels most of the background drift.
//!
//! Run: `cargo bench -p sealpost-crypto --bench paired_ratio`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use sealpost_crypto::open_envelope;

mod common;

use common::{Floor, established};

const ROUNDS: usize = 600;

fn time_batch(batch: usize, mut operation: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..batch {
        operation();
    }
    start.elapsed() / batch as u32
}

/// Minor page faults of this process so far (field 10 of /proc/self/stat), for diagnosing
/// allocation effects in the bulk comparison; 0 where unavailable.
fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after_name = stat.rsplit_once(')')?.1.to_owned();
            after_name.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn paired(name: &str, batch: usize, mut ours: impl FnMut(), mut floor: impl FnMut()) {
    let mut ratios = Vec::with_capacity(ROUNDS);
    let mut ours_times = Vec::with_capacity(ROUNDS);
    let mut floor_times = Vec::with_capacity(ROUNDS);
    let mut ours_faults = 0;
    let mut floor_faults = 0;
    for round in 0..ROUNDS {
        let before = minor_faults();
        time_batch(1, &mut ours);
        let middle = minor_faults();
        time_batch(1, &mut floor);
        ours_faults += middle - before;
        floor_faults += minor_faults() - middle;
        let (ours_time, floor_time) = if round % 2 == 0 {
            let o = time_batch(batch, &mut ours);
            (o, time_batch(batch, &mut floor))
        } else {
            let f = time_batch(batch, &mut floor);
            (time_batch(batch, &mut ours), f)
        };
        ratios.push(ours_time.as_secs_f64() / floor_time.as_secs_f64());
        ours_times.push(ours_time.as_secs_f64() * 1e6);
        floor_times.push(floor_time.as_secs_f64() * 1e6);
    }
    println!(
        "{name}: median ratio ours/floor = {:.3}  (median ours {:.1} µs, median floor {:.1} µs, {ROUNDS} rounds × {batch}; minor page faults per op: ours {:.1}, floor {:.1})",
        median(&mut ratios),
        median(&mut ours_times),
        median(&mut floor_times),
        ours_faults as f64 / ROUNDS as f64,
        floor_faults as f64 / ROUNDS as f64
    );
}

fn main() {
    let (_alice, bob, mut a, mut b) = established();

    let one_kib = vec![0x42u8; 1024];
    let floor = Floor::new();
    paired(
        "one_kib seal+open (ratchet step + sealed sender) vs HPKE+AEAD floor",
        2,
        || {
            let sealed = a
                .seal(bob.mailbox.public(), &bob.send_id, black_box(&one_kib))
                .unwrap();
            let opened = open_envelope(&bob.mailbox, &bob.send_id, sealed.as_bytes()).unwrap();
            black_box(b.receive(&opened).unwrap());
        },
        || {
            floor.hpke_plus_aead(&one_kib);
        },
    );

    let one_mib = vec![0x17u8; 1024 * 1024];
    paired(
        "bulk 1 MiB encrypt: Session::encrypt vs raw chacha20poly1305",
        1,
        || {
            black_box(a.encrypt(black_box(&one_mib)).unwrap());
        },
        || floor.aead_encrypt(&one_mib),
    );

    paired(
        "bulk 1 MiB encrypt: primitives::aead_seal (the AEAD call inside the ratchet) vs raw chacha20poly1305",
        1,
        || {
            black_box(
                sealpost_crypto::primitives::aead_seal(
                    &[7u8; 32],
                    &[9u8; 12],
                    b"",
                    black_box(&one_mib),
                )
                .unwrap(),
            );
        },
        || floor.aead_encrypt(&one_mib),
    );

    // Issue 13: file encryption throughput >= 0.9x raw chacha20poly1305. Ours: 16 chunks of an
    // attachment (1 MiB) through ChunkSealer plus the digest; floor: the same 1 MiB as 16 raw
    // AEAD calls of 64 KiB, each on a fresh copy as ours does.
    let key = sealpost_crypto::attachment::AttachmentKey::generate().unwrap();
    let chunk = vec![0x5Au8; sealpost_crypto::attachment::CHUNK_PLAINTEXT_BYTES];
    let sealer =
        sealpost_crypto::attachment::ChunkSealer::new(&key, 16 * chunk.len() as u64).unwrap();
    paired(
        "attachment 1 MiB encrypt: ChunkSealer (STREAM, 16 chunks) + digest vs raw chacha20poly1305 (16 x 64 KiB)",
        1,
        || {
            let mut digest =
                sealpost_crypto::attachment::DigestBuilder::new(16 * chunk.len() as u64).unwrap();
            for index in 0..16 {
                let sealed = sealer.seal_chunk(index, black_box(&chunk)).unwrap();
                digest.push(&sealed).unwrap();
                black_box(sealed);
            }
            black_box(digest.finish().unwrap());
        },
        || {
            for _ in 0..16 {
                floor.aead_encrypt(black_box(&chunk));
            }
        },
    );
}
