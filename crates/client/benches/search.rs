//! Search benchmark (`docs/benchmarks.md` § Client engine / Search; not run in CI): query time on
//! a real encrypted store of 1,000,000 messages, the index size relative to the text, and the time
//! the background pass takes to index 100,000 messages (and the longest it holds the store).
//!
//! Run: `cargo bench -p sealpost-client --bench search` (release), or on a shared machine the
//! dev profile (dependencies, SQLCipher included, are built at opt-level 3):
//! `cargo bench --profile dev -p sealpost-client --bench search`.
//! `SEALPOST_SEARCH_MESSAGES` and `SEALPOST_SEARCH_BACKLOG` change the two sizes.
//! `SEALPOST_SEARCH_STORE=<dir>` keeps the big store in `<dir>` (keyed with a fixed key: the text
//! is synthetic) and reuses it on the next run, so query settings can be compared on the same
//! file without filling it again.
//!
//! The text is synthetic and deterministic: Zipf-distributed words from a 20,000-word vocabulary
//! (with accents), one message in ten in Japanese, one in twenty with a URL; about 80 bytes each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use sealpost_client::DatabaseKey;
use sealpost_client::store::{SearchQuery, Store};
use sealpost_test_support::bench::percentile;

use common::{Rng, fill_messages};

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Roughly Zipf: small indices are much more frequent.
    fn zipf(&mut self, n: u64) -> u64 {
        let uniform = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(uniform) - 1.0) as u64
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "ri", "mo", "te", "sa", "lu", "vé", "no", "pa", "ßi", "dor", "en", "ça", "mi", "tu",
    "ro", "be", "ël", "an", "go",
];
const KANJI: &str =
    "東京都大阪府京都日本語今日明日会議電話写真駅前料理天気映画音楽友達家族仕事週末旅行時間場所";
const KANA: &str = "のにをはがでとしてもからまでですますよねかなあいうえお";

fn word(rng: &mut Rng, vocabulary: u64) -> String {
    let mut index = rng.zipf(vocabulary);
    let mut word = String::new();
    loop {
        word.push_str(SYLLABLES[(index % SYLLABLES.len() as u64) as usize]);
        index /= SYLLABLES.len() as u64;
        if index == 0 {
            break;
        }
    }
    word
}

fn message(rng: &mut Rng) -> String {
    let kind = rng.below(20);
    if kind < 2 {
        let kanji: Vec<char> = KANJI.chars().collect();
        let kana: Vec<char> = KANA.chars().collect();
        (0..rng.below(20) + 8)
            .map(|n| {
                if n % 3 == 2 {
                    kana[rng.below(kana.len() as u64) as usize]
                } else {
                    kanji[rng.zipf(kanji.len() as u64) as usize]
                }
            })
            .collect()
    } else {
        let mut text: Vec<String> = (0..rng.below(12) + 4).map(|_| word(rng, 20_000)).collect();
        if kind == 2 {
            text.push(format!(
                "https://{}.example.org/{}/{}?q={}",
                word(rng, 300),
                word(rng, 2000),
                word(rng, 20_000),
                word(rng, 20_000)
            ));
        }
        text.join(" ")
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A store with `count` messages spread over 20 contacts, one per second of a local clock.
fn filled_store(dir: &std::path::Path, count: usize) -> (Store, u64, Duration) {
    let key = DatabaseKey::generate().unwrap();
    fill_store(Store::open(&dir.join("search.db"), &key).unwrap(), count)
}

/// The big store of `SEALPOST_SEARCH_STORE`: reused when it is there, else filled and kept.
fn kept_store(dir: &std::path::Path, count: usize) -> (Store, u64, Duration) {
    let key = DatabaseKey::from_bytes([0x5e; 32]);
    let path = dir.join("search.db");
    let sizes = dir.join("text-bytes");
    if path.exists() {
        let text_bytes = std::fs::read_to_string(&sizes)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        return (
            Store::open(&path, &key).unwrap(),
            text_bytes,
            Duration::ZERO,
        );
    }
    std::fs::create_dir_all(dir).unwrap();
    let filled = fill_store(Store::open(&path, &key).unwrap(), count);
    std::fs::write(&sizes, filled.1.to_string()).unwrap();
    filled
}

fn fill_store(mut store: Store, count: usize) -> (Store, u64, Duration) {
    let mut rng = Rng(0x5EA1_9057);
    let started = Instant::now();
    let text_bytes = fill_messages(&mut store, count, || message(&mut rng));
    (store, text_bytes, started.elapsed())
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn main() {
    let backlog = env_count("SEALPOST_SEARCH_BACKLOG", 100_000);
    let total = env_count("SEALPOST_SEARCH_MESSAGES", 1_000_000);

    // 1. Background indexing: a store of `backlog` messages whose index is emptied and rebuilt
    //    by the pass the engine runs (batches of 200, the store released between batches).
    if backlog > 0 {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _, _) = filled_store(dir.path(), backlog);
        store.requeue_search_index().unwrap();
        let mut batches = Vec::new();
        let started = Instant::now();
        loop {
            let batch_started = Instant::now();
            let left = store.index_search_backlog(200).unwrap();
            batches.push(batch_started.elapsed());
            if left == 0 {
                break;
            }
        }
        let elapsed = started.elapsed();
        batches.sort();
        println!(
            "background index of {backlog} messages: {:.1} s in {} batches of 200; batch p50 {}, p95 {}, max {} (the longest the store is held)",
            elapsed.as_secs_f64(),
            batches.len(),
            ms(percentile(&batches, 0.5)),
            ms(percentile(&batches, 0.95)),
            ms(*batches.last().unwrap()),
        );
    }

    // 2. The big store: inline indexing while storing, size, queries.
    let temporary = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("SEALPOST_SEARCH_STORE").map(std::path::PathBuf::from);
    let dir = kept
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    let (store, text_bytes, fill) = match &kept {
        Some(kept) => kept_store(kept, total),
        None => filled_store(&dir, total),
    };
    let index_bytes = store.search_index_bytes().unwrap();
    println!(
        "stored and indexed {total} messages in {:.1} s ({:.0} µs each, batches of 10,000)",
        fill.as_secs_f64(),
        fill.as_secs_f64() * 1e6 / total as f64
    );
    println!(
        "text {:.1} MB, index {:.1} MB = {:.2}x the text; database file {:.1} MB",
        text_bytes as f64 / 1e6,
        index_bytes as f64 / 1e6,
        index_bytes as f64 / text_bytes as f64,
        std::fs::metadata(dir.join("search.db")).unwrap().len() as f64 / 1e6
    );

    let mut rng = Rng(42);
    let mut queries: Vec<(String, &str)> = Vec::new();
    for _ in 0..10 {
        queries.push((word(&mut rng, 50), "common word"));
        queries.push((word(&mut rng, 20_000), "any word"));
        queries.push((
            format!("{} {}", word(&mut rng, 200), word(&mut rng, 200)),
            "two words",
        ));
    }
    for query in [
        "ka",
        "dor",
        "東",
        "京都",
        "日本語",
        "example",
        "zzzz",
        "\"NEAR(*",
    ] {
        queries.push((query.to_owned(), "fixed"));
    }
    let mut times = Vec::new();
    let mut by_kind: std::collections::BTreeMap<&str, Vec<Duration>> = Default::default();
    let mut hits_total = 0usize;
    for round in 0..5 {
        for (query, kind) in &queries {
            let started = Instant::now();
            let page = store
                .search_messages(&SearchQuery::parse(query), None, 50)
                .unwrap();
            let elapsed = started.elapsed();
            if round > 0 {
                times.push(elapsed);
                by_kind.entry(kind).or_default().push(elapsed);
                hits_total += page.hits.len();
            }
        }
    }
    times.sort();
    println!(
        "first page of 50, {} queries x 4 rounds (after 1 warm-up): p50 {}, p95 {}, max {}; {:.1} hits per page",
        queries.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
        ms(*times.last().unwrap()),
        hits_total as f64 / times.len() as f64
    );
    for (kind, mut list) in by_kind {
        list.sort();
        println!(
            "  {kind}: p50 {}, p95 {}",
            ms(percentile(&list, 0.5)),
            ms(percentile(&list, 0.95))
        );
    }
}
