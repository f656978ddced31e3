//! Frozen vectors for the crypto crate's own byte layouts (`docs/crypto.md` § Byte layouts,
//! `docs/formats.md`): the sealed envelope, the session messages inside it (an X3DH initial
//! message and a Double Ratchet message), and the stored session state. Committed in
//! `tests/frozen/conversation.json`: Alice's first message to Bob and Bob's answer, recorded
//! with the keys needed to open them, and both sides' stored session states.
//!
//! Today's code must open the recorded envelopes with the recorded keys, read the recorded
//! session states and write them back byte for byte, and go on from them. A layout change
//! (envelope, header, session message or state) therefore fails here and needs a version byte
//! bump or a store migration. (Outside test data lives apart, in `tests/vectors/`.)
//! To record anew after a deliberate change:
//! `SEALPOST_WRITE_VECTORS=1 cargo test -p sealpost-crypto --test frozen_formats`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sealpost_crypto::{
    IdentityKeyPair, IdentitySeed, MailboxSealingKey, OneTimePrekeyPair, PrekeyBundle, SendId,
    Session, SessionMessage, SignedPrekeyPair, open_envelope,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const ALICE_SEED: [u8; 32] = [0xA1; 32];
const BOB_SEED: [u8; 32] = [0xB0; 32];
const BOB_MAILBOX_IKM: &[u8] = b"frozen-vector bob mailbox";
const ALICE_MAILBOX_IKM: &[u8] = b"frozen-vector alice mailbox";
const BOB_SEND_ID: [u8; 32] = [0x0B; 32];
const ALICE_SEND_ID: [u8; 32] = [0x0A; 32];
const FIRST: &[u8] = b"first message, from Alice";
const ANSWER: &[u8] = b"the answer, from Bob";

/// Everything recorded, hex-encoded.
#[derive(Debug, Serialize, Deserialize)]
struct Conversation {
    /// Bob's signed prekey, in the store's layout (`SignedPrekeyPair::to_secret_bytes`).
    bob_signed_prekey_secret: String,
    /// Bob's one-time prekey, in the store's layout.
    bob_one_time_prekey_secret: String,
    /// Alice → Bob: sealed envelope carrying an X3DH initial message.
    first_envelope: String,
    /// Alice's stored session state after sealing the first message.
    alice_state_after_first: String,
    /// Bob → Alice: sealed envelope carrying a Double Ratchet message.
    answer_envelope: String,
    /// Bob's stored session state after sealing the answer.
    bob_state_after_answer: String,
}

fn identity(seed: [u8; 32]) -> IdentityKeyPair {
    IdentityKeyPair::from_seed(&IdentitySeed::from_bytes(Zeroizing::new(seed))).expect("identity")
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/frozen/conversation.json")
}

fn hex_of(text: &str) -> Vec<u8> {
    hex::decode(text).expect("hex")
}

/// Runs the conversation with fresh randomness and records it.
fn record() -> Conversation {
    let alice = identity(ALICE_SEED);
    let bob = identity(BOB_SEED);
    let bob_signed = SignedPrekeyPair::generate(&bob).expect("signed prekey");
    let bob_one_time = OneTimePrekeyPair::generate().expect("one-time prekey");
    let bob_mailbox = MailboxSealingKey::derive_from_ikm(BOB_MAILBOX_IKM);
    let alice_mailbox = MailboxSealingKey::derive_from_ikm(ALICE_MAILBOX_IKM);

    let bundle = PrekeyBundle::new(
        *bob.public(),
        *bob_signed.public(),
        Some(*bob_one_time.public()),
    )
    .expect("bundle");
    let mut alice_session = Session::initiate(&alice, &bundle).expect("initiate");
    let first = alice_session
        .seal(bob_mailbox.public(), &SendId(BOB_SEND_ID), FIRST)
        .expect("seal");
    let opened = open_envelope(&bob_mailbox, &SendId(BOB_SEND_ID), first.as_bytes()).expect("open");
    let (mut bob_session, _) =
        Session::respond(&bob, &bob_signed, Some(&bob_one_time), &opened).expect("respond");
    let answer = bob_session
        .seal(alice_mailbox.public(), &SendId(ALICE_SEND_ID), ANSWER)
        .expect("seal");
    Conversation {
        bob_signed_prekey_secret: hex::encode(bob_signed.to_secret_bytes().as_slice()),
        bob_one_time_prekey_secret: hex::encode(bob_one_time.to_secret_bytes().as_slice()),
        first_envelope: hex::encode(first.as_bytes()),
        alice_state_after_first: hex::encode(alice_session.to_bytes().expect("state").as_slice()),
        answer_envelope: hex::encode(answer.as_bytes()),
        bob_state_after_answer: hex::encode(bob_session.to_bytes().expect("state").as_slice()),
    }
}

fn committed() -> Conversation {
    if std::env::var_os("SEALPOST_WRITE_VECTORS").is_some() {
        // Written to a temporary file and renamed, so the other test never reads half a file.
        let json = serde_json::to_string_pretty(&record()).expect("serialises");
        let temporary = path().with_extension(format!("json.{:?}", std::thread::current().id()));
        std::fs::write(&temporary, json + "\n").expect("writes the vector file");
        std::fs::rename(&temporary, path()).expect("moves the vector file in place");
    }
    let text = std::fs::read_to_string(path()).expect("the committed vector file");
    serde_json::from_str(&text).expect("the vector file parses")
}

#[test]
fn recorded_session_states_read_and_write_back_byte_for_byte() {
    let recorded = committed();
    for (name, hex_state) in [
        (
            "Alice after the first message",
            &recorded.alice_state_after_first,
        ),
        ("Bob after the answer", &recorded.bob_state_after_answer),
    ] {
        let bytes = hex_of(hex_state);
        let session = Session::from_bytes(&bytes)
            .unwrap_or_else(|e| panic!("{name}: the stored state no longer reads: {e}"));
        assert_eq!(
            session.to_bytes().expect("state").as_slice(),
            bytes.as_slice(),
            "{name}: the stored state no longer writes back to its frozen bytes"
        );
    }
}

#[test]
fn recorded_envelopes_open_and_their_session_messages_re_encode_byte_for_byte() {
    let recorded = committed();
    let alice = identity(ALICE_SEED);
    let bob = identity(BOB_SEED);
    let bob_mailbox = MailboxSealingKey::derive_from_ikm(BOB_MAILBOX_IKM);
    let alice_mailbox = MailboxSealingKey::derive_from_ikm(ALICE_MAILBOX_IKM);

    // Alice → Bob: an X3DH initial message that Bob's recorded prekeys answer.
    let first = open_envelope(
        &bob_mailbox,
        &SendId(BOB_SEND_ID),
        &hex_of(&recorded.first_envelope),
    )
    .expect("the recorded first envelope opens");
    assert_eq!(first.sender(), alice.public(), "sealed sender");
    assert!(first.payload().is_initial(), "an X3DH initial message");
    let message_bytes = first.payload().to_bytes();
    assert_eq!(
        SessionMessage::from_bytes(&message_bytes)
            .expect("decodes")
            .to_bytes(),
        message_bytes
    );
    let bob_signed =
        SignedPrekeyPair::from_secret_bytes(&hex_of(&recorded.bob_signed_prekey_secret))
            .expect("signed prekey");
    let bob_one_time =
        OneTimePrekeyPair::from_secret_bytes(&hex_of(&recorded.bob_one_time_prekey_secret))
            .expect("one-time prekey");
    let (_, plaintext) = Session::respond(&bob, &bob_signed, Some(&bob_one_time), &first)
        .expect("Bob answers the recorded initial message");
    assert_eq!(plaintext.as_slice(), FIRST);

    // Bob → Alice: a Double Ratchet message that Alice's recorded state opens.
    let answer = open_envelope(
        &alice_mailbox,
        &SendId(ALICE_SEND_ID),
        &hex_of(&recorded.answer_envelope),
    )
    .expect("the recorded answer opens");
    assert_eq!(answer.sender(), bob.public(), "sealed sender");
    assert!(!answer.payload().is_initial(), "a Double Ratchet message");
    let message_bytes = answer.payload().to_bytes();
    assert_eq!(
        SessionMessage::from_bytes(&message_bytes)
            .expect("decodes")
            .to_bytes(),
        message_bytes
    );
    let mut alice_session =
        Session::from_bytes(&hex_of(&recorded.alice_state_after_first)).expect("Alice's state");
    let plaintext = alice_session
        .receive(&answer)
        .expect("Alice's recorded state opens Bob's recorded answer");
    assert_eq!(plaintext.as_slice(), ANSWER);
}
