//! Criterion benchmarks for the sealing core, each beside its floor measured in the same run:
//! - 1 KiB seal+open (ratchet step + sealed sender) vs one HPKE seal+open + one AEAD seal+open;
//! - the same 1 KiB through vodozemac's Olm (reference only, no sealed sender);
//! - X3DH session set-up; bulk AEAD throughput through our API vs raw chacha20poly1305.
//!
//! Run: `cargo bench -p sealpost-crypto --bench sealing -- --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hpke::Serializable;
use sealpost_crypto::{PrekeyBundle, Session, open_envelope};

mod common;

use common::{Floor, bundle, established, party};

const ONE_KIB: usize = 1024;
const ONE_MIB: usize = 1024 * 1024;

fn one_kib(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_kib");
    let plaintext = vec![0x42u8; ONE_KIB];

    // Ours: symmetric ratchet step + sealed sender, one direction.
    let (_alice, bob, mut a, mut b) = established();
    group.bench_function("sealpost_seal_open", |bencher| {
        bencher.iter(|| {
            let sealed = a
                .seal(bob.mailbox.public(), &bob.send_id, black_box(&plaintext))
                .unwrap();
            let opened = open_envelope(&bob.mailbox, &bob.send_id, sealed.as_bytes()).unwrap();
            black_box(b.receive(&opened).unwrap());
        })
    });

    // Ours alternating: every message carries a DH ratchet step (two X25519 per side).
    let (alice, bob, mut a, mut b) = established();
    group.bench_function("sealpost_seal_open_alternating", |bencher| {
        let mut alice_turn = true;
        bencher.iter(|| {
            let (sender, receiver, to) = if alice_turn {
                (&mut a, &mut b, &bob)
            } else {
                (&mut b, &mut a, &alice)
            };
            let sealed = sender
                .seal(to.mailbox.public(), &to.send_id, black_box(&plaintext))
                .unwrap();
            let opened = open_envelope(&to.mailbox, &to.send_id, sealed.as_bytes()).unwrap();
            black_box(receiver.receive(&opened).unwrap());
            alice_turn = !alice_turn;
        })
    });

    // Floor: one HPKE Base seal+open of 1 KiB plus one ChaCha20-Poly1305 seal+open of 1 KiB.
    let floor = Floor::new();
    group.bench_function("floor_hpke_plus_aead", |bencher| {
        bencher.iter(|| black_box(floor.hpke_plus_aead(&plaintext).to_bytes()))
    });

    // Reference: vodozemac Olm, same 1 KiB, one direction and alternating.
    let (mut olm_a, mut olm_b) = olm_pair();
    group.bench_function("vodozemac_olm_one_direction", |bencher| {
        bencher.iter(|| {
            let message = olm_a.encrypt(black_box(&plaintext)).unwrap();
            black_box(olm_b.decrypt(&message).unwrap());
        })
    });
    let (mut olm_a, mut olm_b) = olm_pair();
    group.bench_function("vodozemac_olm_alternating", |bencher| {
        let mut alice_turn = true;
        bencher.iter(|| {
            let (sender, receiver) = if alice_turn {
                (&mut olm_a, &mut olm_b)
            } else {
                (&mut olm_b, &mut olm_a)
            };
            let message = sender.encrypt(black_box(&plaintext)).unwrap();
            black_box(receiver.decrypt(&message).unwrap());
            alice_turn = !alice_turn;
        })
    });
    group.finish();
}

fn olm_pair() -> (vodozemac::olm::Session, vodozemac::olm::Session) {
    use vodozemac::olm::{Account, OlmMessage, SessionConfig};
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let one_time_key = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    let mut a = alice
        .create_outbound_session(
            SessionConfig::version_1(),
            bob.identity_keys().curve25519,
            one_time_key,
        )
        .unwrap();
    let OlmMessage::PreKey(first) = a.encrypt(b"hi").unwrap() else {
        panic!("pre-key message expected")
    };
    let created = bob
        .create_inbound_session(
            SessionConfig::version_1(),
            alice.identity_keys().curve25519,
            &first,
        )
        .unwrap();
    let mut b = created.session;
    let reply = b.encrypt(b"hi").unwrap();
    a.decrypt(&reply).unwrap();
    (a, b)
}

fn x3dh(c: &mut Criterion) {
    let mut group = c.benchmark_group("x3dh");
    let alice = party(1);
    let bob = party(2);
    let bob_bundle = bundle(&bob);
    group.bench_function("initiate_seal_open_respond", |bencher| {
        bencher.iter(|| {
            let mut a = Session::initiate(&alice.identity, black_box(&bob_bundle)).unwrap();
            let sealed = a
                .seal(bob.mailbox.public(), &bob.send_id, b"first")
                .unwrap();
            let opened = open_envelope(&bob.mailbox, &bob.send_id, sealed.as_bytes()).unwrap();
            black_box(
                Session::respond(
                    &bob.identity,
                    &bob.signed_prekey,
                    Some(&bob.one_time_prekey),
                    &opened,
                )
                .unwrap(),
            );
        })
    });
    group.bench_function("bundle_verify", |bencher| {
        bencher.iter(|| {
            black_box(
                PrekeyBundle::new(*bob.identity.public(), *bob.signed_prekey.public(), None)
                    .unwrap(),
            )
        })
    });
    group.finish();
}

fn bulk_aead(c: &mut Criterion) {
    let mut group = c.benchmark_group("bulk_aead_1mib");
    group.throughput(Throughput::Bytes(ONE_MIB as u64));
    let plaintext = vec![0x17u8; ONE_MIB];
    let (_alice, _bob, mut a, _b) = established();
    group.bench_function("sealpost_session_encrypt", |bencher| {
        bencher.iter(|| black_box(a.encrypt(black_box(&plaintext)).unwrap()))
    });
    let floor = Floor::new();
    group.bench_function("raw_chacha20poly1305_encrypt", |bencher| {
        bencher.iter(|| floor.aead_encrypt(&plaintext))
    });
    group.finish();
}

criterion_group!(benches, one_kib, x3dh, bulk_aead);
criterion_main!(benches);
