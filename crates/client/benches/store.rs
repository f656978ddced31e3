//! Store benchmarks: what one durable commit costs, and how batching drains a backlog.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-client cargo bench -p sealpost-client --bench store`
//!
//! Each measurement starts when the `Store` call is made and stops when it returns, i.e. after
//! SQLCipher has encrypted the pages and (with `synchronous = FULL`) fsynced the WAL. The database
//! lives in a temporary directory on the machine's normal disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::cell::Cell;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sealpost_client::DatabaseKey;
use sealpost_client::store::{
    ContactId, ConversationSeq, EnvelopeId, IdentityKeyBytes, NewContact, Received,
    ReceivedContent, SessionStateBytes, Store, StoreConfig, UnixMillis,
};

fn received(contact: ContactId, seq: u64) -> Received {
    Received {
        contact,
        envelope_id: EnvelopeId::random().unwrap(),
        session_state: SessionStateBytes::new(vec![7; 400]),
        content: ReceivedContent::Message {
            seq: ConversationSeq::new(seq).unwrap(),
            body:
                "a message of about a hundred bytes, which is what most chat lines are in practice"
                    .to_owned(),
            sent_at: UnixMillis(1),
        },
        received_at: UnixMillis(2),
    }
}

fn setup(memory_security: bool) -> (tempfile::TempDir, Store, ContactId) {
    let dir = tempfile::tempdir().unwrap();
    let key = DatabaseKey::generate().unwrap();
    let config = StoreConfig {
        memory_security,
        ..StoreConfig::default()
    };
    let mut store = Store::open_with(&dir.path().join("bench.db"), &key, &config).unwrap();
    let contact = store
        .insert_contact(&NewContact {
            display_name: "bench".to_owned(),
            identity_key: IdentityKeyBytes::new(vec![1; 64]),
            created_at: UnixMillis(1),
        })
        .unwrap();
    (dir, store, contact.id)
}

fn bench_store(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group.sample_size(20);

    // OFF first: SQLCipher cannot turn memory security off again in a process once it is on.
    for (memory_security, label) in [(false, "memory_security_off"), (true, "memory_security_on")] {
        {
            let (_dir, mut store, contact) = setup(memory_security);
            let next = Cell::new(1u64);
            group.throughput(Throughput::Elements(1));
            group.bench_function(
                format!("commit_received/one_transaction_each/{label}"),
                |b| {
                    b.iter_batched(
                        || {
                            let seq = next.get();
                            next.set(seq + 1);
                            received(contact, seq)
                        },
                        |item| store.commit_received(&item).unwrap(),
                        BatchSize::SmallInput,
                    );
                },
            );
        }

        {
            let (_dir, mut store, contact) = setup(memory_security);
            let next = Cell::new(1u64);
            group.throughput(Throughput::Elements(1000));
            group.bench_function(
                format!("commit_received_batch/1000_per_transaction/{label}"),
                |b| {
                    b.iter_batched(
                        || {
                            let start = next.get();
                            next.set(start + 1000);
                            (start..start + 1000)
                                .map(|seq| received(contact, seq))
                                .collect::<Vec<_>>()
                        },
                        |batch| store.commit_received_batch(&batch).unwrap(),
                        BatchSize::LargeInput,
                    );
                },
            );
        }

        {
            let (_dir, mut store, contact) = setup(memory_security);
            for chunk in 0..10u64 {
                let batch: Vec<_> = (1..=1000)
                    .map(|n| received(contact, chunk * 1000 + n))
                    .collect();
                store.commit_received_batch(&batch).unwrap();
            }
            let middle = store.messages_page(contact, None, 5000).unwrap()[0].position();
            group.throughput(Throughput::Elements(50));
            group.bench_function(format!("messages_page/50_of_10k/{label}"), |b| {
                b.iter(|| store.messages_page(contact, Some(middle), 50).unwrap());
            });
            group.throughput(Throughput::Elements(1));
            group.bench_function(format!("chat_list/1_contact_10k_messages/{label}"), |b| {
                b.iter(|| store.chat_list().unwrap());
            });
        }
    }

    {
        let (dir, store, _contact) = setup(true);
        store.close().unwrap();
        let key = DatabaseKey::generate().unwrap();
        // A fresh key: measure the full create + key + pragmas + migrations path.
        group.throughput(Throughput::Elements(1));
        let counter = Cell::new(0u32);
        group.bench_function("open/new_database", |b| {
            b.iter(|| {
                let n = counter.get();
                counter.set(n + 1);
                let store = Store::open(&dir.path().join(format!("new-{n}.db")), &key).unwrap();
                store.close().unwrap();
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
