//! Protocol tests: identity, prekeys, X3DH + Double Ratchet through sealed envelopes, the
//! LINE attacks at this layer (T1–T3, T5–T7, `docs/threat-model.md`) and the
//! state-unchanged-on-failure rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Party, deliver, establish};
use sealpost_crypto::envelope::ENVELOPE_VERSION;
use sealpost_crypto::ratchet::{MAX_CHECKED_GAP, MAX_SKIP, RatchetMessage};
use sealpost_crypto::{
    CryptoError, DecodeError, IdentityKey, IdentityKeyPair, IdentitySeed, PrekeyBundle,
    SafetyNumber, Session, SessionMessage, SignatureContext, SignedPrekey, open_envelope,
    seal_envelope,
};
use test_case::test_case;
use zeroize::Zeroizing;

fn state(session: &Session) -> Vec<u8> {
    session.to_bytes().unwrap().to_vec()
}

// ---------- identity, signatures, prekeys, safety numbers ----------

#[test]
fn identity_derivation_is_deterministic_and_keys_differ_per_seed() {
    let seed = IdentitySeed::generate().unwrap();
    let again = IdentitySeed::from_bytes(Zeroizing::new(*seed.expose_secret()));
    let first = IdentityKeyPair::from_seed(&seed).unwrap();
    let second = IdentityKeyPair::from_seed(&again).unwrap();
    assert_eq!(first.public(), second.public());
    let other = IdentityKeyPair::from_seed(&IdentitySeed::generate().unwrap()).unwrap();
    assert_ne!(first.public(), other.public());
    let bytes = first.public().to_bytes();
    assert_eq!(IdentityKey::from_bytes(&bytes).unwrap(), *first.public());
    // The two halves come from different HKDF infos, so they are not the same bytes.
    assert_ne!(bytes[..32], bytes[32..]);
}

#[test]
fn identity_derivation_matches_documented_hkdf_info_strings() {
    // Fixed seed → fixed public key: guards the documented derivation against silent change.
    let seed = IdentitySeed::from_bytes(Zeroizing::new([7u8; 32]));
    let pair = IdentityKeyPair::from_seed(&seed).unwrap();
    let mut ed_seed = [0u8; 32];
    sealpost_crypto::primitives::hkdf_sha256(
        None,
        &[7u8; 32],
        b"sealpost/v1/identity/ed25519",
        &mut ed_seed,
    )
    .unwrap();
    let ed = ed25519_dalek::SigningKey::from_bytes(&ed_seed).verifying_key();
    let mut x_seed = [0u8; 32];
    sealpost_crypto::primitives::hkdf_sha256(
        None,
        &[7u8; 32],
        b"sealpost/v1/identity/x25519",
        &mut x_seed,
    )
    .unwrap();
    let x = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(x_seed));
    let bytes = pair.public().to_bytes();
    assert_eq!(&bytes[..32], ed.as_bytes());
    assert_eq!(&bytes[32..], x.as_bytes());
}

#[test]
fn signatures_are_bound_to_their_context() {
    let alice = Party::new();
    let signature = alice
        .identity
        .sign(SignatureContext::Invite, b"invite bytes")
        .unwrap();
    let public = alice.identity.public();
    public
        .verify(SignatureContext::Invite, b"invite bytes", &signature)
        .unwrap();
    assert_eq!(
        public.verify(SignatureContext::SignedPrekey, b"invite bytes", &signature),
        Err(CryptoError::InvalidSignature)
    );
    assert_eq!(
        public.verify(SignatureContext::Invite, b"invite bytez", &signature),
        Err(CryptoError::InvalidSignature)
    );
    let bob = Party::new();
    assert_eq!(
        bob.identity
            .public()
            .verify(SignatureContext::Invite, b"invite bytes", &signature),
        Err(CryptoError::InvalidSignature)
    );
}

#[test]
fn prekey_bundle_refuses_bad_signatures() {
    let bob = Party::new();
    let mallory = Party::new();
    let good = *bob.signed_prekey.public();
    PrekeyBundle::new(*bob.identity.public(), good, None).unwrap();
    // Signed by someone else.
    assert_eq!(
        PrekeyBundle::new(
            *bob.identity.public(),
            *mallory.signed_prekey.public(),
            None
        ),
        Err(CryptoError::InvalidSignature)
    );
    // Every single-bit change of the signed prekey's bytes breaks the signature.
    let bytes = good.to_bytes();
    for bit in 0..bytes.len() * 8 {
        let mut tampered = bytes;
        tampered[bit / 8] ^= 1 << (bit % 8);
        let prekey = SignedPrekey::from_bytes(&tampered).unwrap();
        assert_eq!(
            PrekeyBundle::new(*bob.identity.public(), prekey, None),
            Err(CryptoError::InvalidSignature),
            "bit {bit}"
        );
    }
}

#[test]
fn prekey_secrets_round_trip_through_storage_bytes() {
    let bob = Party::new();
    let spk =
        sealpost_crypto::SignedPrekeyPair::from_secret_bytes(&bob.signed_prekey.to_secret_bytes())
            .unwrap();
    assert_eq!(spk.public(), bob.signed_prekey.public());
    let opk = sealpost_crypto::OneTimePrekeyPair::from_secret_bytes(
        &bob.one_time_prekey.to_secret_bytes(),
    )
    .unwrap();
    assert_eq!(opk.public(), bob.one_time_prekey.public());
    let mailbox =
        sealpost_crypto::MailboxSealingKey::from_secret_bytes(&bob.mailbox.to_secret_bytes())
            .unwrap();
    assert_eq!(mailbox.public(), bob.mailbox.public());
}

#[test]
fn safety_number_is_60_digits_and_the_same_on_both_sides() {
    let alice = Party::new();
    let bob = Party::new();
    let at_alice = SafetyNumber::new(alice.identity.public(), bob.identity.public());
    let at_bob = SafetyNumber::new(bob.identity.public(), alice.identity.public());
    assert_eq!(at_alice.digits(), at_bob.digits());
    assert_eq!(at_alice.digits().len(), 60);
    assert!(at_alice.digits().bytes().all(|b| b.is_ascii_digit()));
    // Scanning each other's QR code matches; a QR code with a swapped key does not.
    assert!(at_alice.matches_scanned(&at_bob.qr_payload()).unwrap());
    assert!(at_bob.matches_scanned(&at_alice.qr_payload()).unwrap());
    let mallory = Party::new();
    let at_mallory = SafetyNumber::new(mallory.identity.public(), alice.identity.public());
    assert!(!at_alice.matches_scanned(&at_mallory.qr_payload()).unwrap());
    assert_ne!(at_mallory.digits(), at_alice.digits());
    let mut old = at_bob.qr_payload();
    old[0] = 0;
    assert_eq!(
        at_alice.matches_scanned(&old),
        Err(DecodeError::UnsupportedVersion { found: 0 })
    );
}

// ---------- sessions ----------

#[test]
fn conversation_both_ways_survives_serialisation() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    assert!(a.is_awaiting_reply());
    // Alice sends again before any reply: still an initial message, Bob accepts it.
    assert_eq!(deliver(&mut a, &mut b, &bob, b"second"), b"second");
    assert_eq!(deliver(&mut b, &mut a, &alice, b"hi alice"), b"hi alice");
    assert!(!a.is_awaiting_reply());
    for round in 0..5u8 {
        a = Session::from_bytes(&a.to_bytes().unwrap()).unwrap();
        b = Session::from_bytes(&b.to_bytes().unwrap()).unwrap();
        assert_eq!(deliver(&mut a, &mut b, &bob, &[round; 40]), vec![round; 40]);
        assert_eq!(
            deliver(&mut a, &mut b, &bob, &[round; 3000]),
            vec![round; 3000]
        );
        assert_eq!(deliver(&mut b, &mut a, &alice, &[round; 1]), vec![round; 1]);
    }
    assert_eq!(a.peer_identity(), bob.identity.public());
    assert_eq!(b.peer_identity(), alice.identity.public());
}

#[test]
fn session_without_one_time_prekey_works() {
    let alice = Party::new();
    let bob = Party::new();
    let mut a = Session::initiate(&alice.identity, &bob.bundle_without_one_time()).unwrap();
    let sealed = a
        .seal(bob.mailbox.public(), &bob.send_id, b"restart")
        .unwrap();
    let opened = bob.open(&sealed).unwrap();
    // Naming a one-time prekey the message did not use is refused.
    assert_eq!(
        bob.respond(&opened).err(),
        Some(CryptoError::PrekeyMismatch)
    );
    let (mut b, plaintext) =
        Session::respond(&bob.identity, &bob.signed_prekey, None, &opened).unwrap();
    assert_eq!(plaintext.as_slice(), b"restart");
    assert_eq!(deliver(&mut b, &mut a, &alice, b"ok"), b"ok");
}

#[test]
fn failed_decryption_leaves_session_unchanged() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    deliver(&mut b, &mut a, &alice, b"reply");
    let SessionMessage::Ratchet(message) = a.encrypt(b"tamper me").unwrap() else {
        panic!("expected a ratchet message")
    };
    let mut bytes = SessionMessage::Ratchet(message.clone()).to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let sealed = bob.sealed_raw_from(&alice, &bytes);
    let opened = bob.open(&sealed).unwrap();
    let before = state(&b);
    assert_eq!(b.receive(&opened), Err(CryptoError::DecryptFailed));
    assert_eq!(state(&b), before);
    // The genuine message still opens afterwards.
    let genuine = seal_envelope(
        bob.mailbox.public(),
        &bob.send_id,
        alice.identity.public(),
        &SessionMessage::Ratchet(message),
    )
    .unwrap();
    let opened = bob.open(&genuine).unwrap();
    assert_eq!(b.receive(&opened).unwrap().as_slice(), b"tamper me");
}

#[test]
fn forged_new_ratchet_key_leaves_session_unchanged() {
    // A message with a fresh ratchet key forces a staged DH ratchet step; its failure must not commit.
    let alice = Party::new();
    let bob = Party::new();
    let mallory = Party::new();
    let (_a, mut b) = establish(&alice, &bob);
    let (mut m, _) = establish(&mallory, &Party::new());
    let forged = m.encrypt(b"forged").unwrap();
    let sealed = seal_envelope(
        bob.mailbox.public(),
        &bob.send_id,
        alice.identity.public(),
        &forged,
    )
    .unwrap();
    let opened = bob.open(&sealed).unwrap();
    let before = state(&b);
    assert!(b.receive(&opened).is_err());
    assert_eq!(state(&b), before);
}

#[test]
fn gap_beyond_max_skip_is_refused_and_session_recovers() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    deliver(&mut b, &mut a, &alice, b"reply");
    let mut held = Vec::new();
    for index in 0..(MAX_SKIP + 3) {
        let sealed = a
            .seal(bob.mailbox.public(), &bob.send_id, &index.to_be_bytes())
            .unwrap();
        held.push(sealed);
    }
    let before = state(&b);
    let last = open_envelope(&bob.mailbox, &bob.send_id, held.last().unwrap().as_bytes()).unwrap();
    // Authentic (it opens on a scratch chain), but MAX_SKIP + 2 keys ahead: reported as such,
    // so the engine may restart the session with X3DH; nothing is kept.
    assert_eq!(
        b.receive(&last),
        Err(CryptoError::AuthenticGapBeyondMaxSkip {
            skipped: u64::from(MAX_SKIP + 2),
            max_skip: u64::from(MAX_SKIP)
        })
    );
    assert_eq!(state(&b), before, "refusal leaves the state unchanged");
    // Messages inside the window still open, exactly once each.
    for (index, sealed) in held.iter().enumerate().take(10) {
        let opened = bob.open(sealed).unwrap();
        assert_eq!(
            b.receive(&opened).unwrap().as_slice(),
            &(index as u32).to_be_bytes()
        );
    }
    // Bob → Alice still works.
    assert_eq!(
        deliver(&mut b, &mut a, &alice, b"still here"),
        b"still here"
    );
    // Recovery per `docs/engine.md` § Session restart: Alice restarts X3DH with Bob's latest signed
    // prekey only.
    let mut restarted = Session::initiate(&alice.identity, &bob.bundle_without_one_time()).unwrap();
    let sealed = restarted
        .seal(bob.mailbox.public(), &bob.send_id, b"fresh start")
        .unwrap();
    let opened = bob.open(&sealed).unwrap();
    assert_eq!(b.receive(&opened), Err(CryptoError::NewSessionOffered));
    let (mut b2, plaintext) =
        Session::respond(&bob.identity, &bob.signed_prekey, None, &opened).unwrap();
    assert_eq!(plaintext.as_slice(), b"fresh start");
    assert_eq!(
        deliver(&mut b2, &mut restarted, &alice, b"welcome back"),
        b"welcome back"
    );
}

/// A ratchet message from nobody: the given header (ratchet key, PN, N) and a random
/// ciphertext, sealed to Bob's mailbox with Alice's identity as the (unauthenticated) sender.
fn forged(ratchet_key: [u8; 32], pn: u32, n: u32) -> SessionMessage {
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&ratchet_key);
    bytes.extend_from_slice(&pn.to_be_bytes());
    bytes.extend_from_slice(&n.to_be_bytes());
    let mut body = [0u8; 48];
    getrandom::fill(&mut body).unwrap();
    bytes.extend_from_slice(&body);
    SessionMessage::Ratchet(RatchetMessage::from_bytes(&bytes).unwrap())
}

fn open_forged(
    bob: &Party,
    alice: &Party,
    message: &SessionMessage,
) -> sealpost_crypto::OpenedEnvelope {
    let sealed = seal_envelope(
        bob.mailbox.public(),
        &bob.send_id,
        alice.identity.public(),
        message,
    )
    .unwrap();
    bob.open(&sealed).unwrap()
}

/// A forged message claiming the peer's identity and a counter beyond MAX_SKIP is not taken at
/// its header's word: on the current chain, after a new ratchet key (N or PN beyond MAX_SKIP),
/// or beyond the check cap, it is an ordinary refusal, never "authentic gap", and the state is
/// byte-identical; the peer's next real message still opens.
#[test]
fn forged_counter_beyond_max_skip_is_refused_as_unauthenticated() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    deliver(&mut b, &mut a, &alice, b"turn");
    // Alice's current ratchet key, as Bob knows it from a message he opened.
    let probe = a
        .seal(bob.mailbox.public(), &bob.send_id, b"probe")
        .unwrap();
    let opened = bob.open(&probe).unwrap();
    let current_key = opened
        .payload()
        .ratchet_message()
        .header()
        .ratchet_key()
        .to_bytes();
    assert_eq!(b.receive(&opened).unwrap().as_slice(), b"probe");
    let fresh_key =
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([9u8; 32])).to_bytes();
    let before = state(&b);
    let cases = [
        (current_key, 0, MAX_SKIP + 10, CryptoError::DecryptFailed),
        (current_key, 0, MAX_CHECKED_GAP, CryptoError::DecryptFailed),
        (fresh_key, 0, MAX_SKIP + 1, CryptoError::DecryptFailed),
        (fresh_key, u32::MAX, 0, CryptoError::DecryptFailed),
        (
            fresh_key,
            MAX_SKIP + 5,
            MAX_SKIP + 5,
            CryptoError::DecryptFailed,
        ),
        (
            current_key,
            0,
            u32::MAX,
            CryptoError::GapBeyondCheckLimit {
                requested: u64::from(u32::MAX - 1),
                limit: u64::from(MAX_CHECKED_GAP),
            },
        ),
        (
            fresh_key,
            7,
            MAX_CHECKED_GAP + 1,
            CryptoError::GapBeyondCheckLimit {
                requested: u64::from(MAX_CHECKED_GAP + 1),
                limit: u64::from(MAX_CHECKED_GAP),
            },
        ),
    ];
    for (key, pn, n, expected) in cases {
        let opened = open_forged(&bob, &alice, &forged(key, pn, n));
        assert_eq!(b.receive(&opened), Err(expected), "pn {pn} n {n}");
        assert_eq!(state(&b), before, "pn {pn} n {n}: state unchanged");
    }
    assert_eq!(deliver(&mut a, &mut b, &bob, b"real"), b"real");
}

/// The authentic cases beyond MAX_SKIP, with the DH ratchet step: PN - Nr beyond MAX_SKIP on the
/// old chain (the new chain's first message is authentic), and N beyond MAX_SKIP on the current
/// chain. Both are reported as authentic gaps and leave the state unchanged.
#[test]
fn authentic_gaps_beyond_max_skip_on_either_chain_are_reported() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    deliver(&mut b, &mut a, &alice, b"turn");
    assert_eq!(deliver(&mut a, &mut b, &bob, b"first"), b"first");
    // N - Nr beyond MAX_SKIP on the current chain (Bob is at Nr = 1).
    for _ in 0..MAX_SKIP + 1 {
        a.encrypt(b"lost").unwrap();
    }
    let far = a.seal(bob.mailbox.public(), &bob.send_id, b"far").unwrap();
    let opened = bob.open(&far).unwrap();
    let before = state(&b);
    assert_eq!(
        b.receive(&opened),
        Err(CryptoError::AuthenticGapBeyondMaxSkip {
            skipped: u64::from(MAX_SKIP + 1),
            max_skip: u64::from(MAX_SKIP)
        })
    );
    assert_eq!(state(&b), before);
    // PN - Nr beyond MAX_SKIP: Bob answers, Alice steps her DH ratchet, her new chain's first
    // message carries PN = MAX_SKIP + 3 while Bob stands at 1 on the old chain.
    deliver(&mut b, &mut a, &alice, b"answer");
    let next = a
        .seal(bob.mailbox.public(), &bob.send_id, b"next chain")
        .unwrap();
    let opened = bob.open(&next).unwrap();
    assert_eq!(
        opened.payload().ratchet_message().header().message_number(),
        0
    );
    let before = state(&b);
    assert_eq!(
        b.receive(&opened),
        Err(CryptoError::AuthenticGapBeyondMaxSkip {
            skipped: u64::from(MAX_SKIP + 2),
            max_skip: u64::from(MAX_SKIP)
        })
    );
    assert_eq!(state(&b), before);
}

/// The check cap itself: an authentic message exactly MAX_CHECKED_GAP keys ahead is checked and
/// reported authentic; one key further it is refused unchecked.
#[test]
fn the_check_cap_bounds_the_scratch_walk() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    deliver(&mut b, &mut a, &alice, b"turn");
    for _ in 0..MAX_CHECKED_GAP {
        a.encrypt(b"").unwrap();
    }
    let at_cap = a
        .seal(bob.mailbox.public(), &bob.send_id, b"at cap")
        .unwrap();
    let beyond = a
        .seal(bob.mailbox.public(), &bob.send_id, b"beyond")
        .unwrap();
    let before = state(&b);
    let opened = bob.open(&at_cap).unwrap();
    assert!(matches!(
        b.receive(&opened),
        Err(CryptoError::AuthenticGapBeyondMaxSkip { .. })
    ));
    let opened = bob.open(&beyond).unwrap();
    assert_eq!(
        b.receive(&opened),
        Err(CryptoError::GapBeyondCheckLimit {
            requested: u64::from(MAX_CHECKED_GAP + 1),
            limit: u64::from(MAX_CHECKED_GAP)
        })
    );
    assert_eq!(state(&b), before);
}

#[test]
fn respond_requires_an_initial_message() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, _b) = establish(&alice, &bob);
    let reply_party = Party::new();
    let (mut x, mut y) = establish(&reply_party, &alice);
    deliver(&mut y, &mut x, &reply_party, b"turn");
    let message = x.encrypt(b"plain ratchet").unwrap();
    assert!(!message.is_initial());
    let sealed = seal_envelope(
        bob.mailbox.public(),
        &bob.send_id,
        alice.identity.public(),
        &message,
    )
    .unwrap();
    let opened = bob.open(&sealed).unwrap();
    assert_eq!(
        Session::respond(&bob.identity, &bob.signed_prekey, None, &opened).err(),
        Some(CryptoError::ExpectedInitialMessage)
    );
    let _ = a.encrypt(b"unused").unwrap();
}

// ---------- T1: reflection ----------

#[test]
fn t1_reflection_of_own_envelope_is_refused() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    deliver(&mut b, &mut a, &alice, b"reply");
    let to_bob = a
        .seal(bob.mailbox.public(), &bob.send_id, b"for bob only")
        .unwrap();
    let before = state(&a);
    // The relay shows Alice her own A→B envelope on her mailbox, as if from Bob.
    assert_eq!(alice.open(&to_bob), Err(CryptoError::EnvelopeOpenFailed));
    // Even with Bob's send ID it does not open with Alice's mailbox key.
    assert_eq!(
        open_envelope(&alice.mailbox, &bob.send_id, to_bob.as_bytes()),
        Err(CryptoError::EnvelopeOpenFailed)
    );
    // And if an insider re-seals Alice's own ratchet message to Alice's mailbox:
    // claiming to be Alice → not the peer; claiming to be Bob → the ratchet refuses it.
    let own = a.encrypt(b"reflect me").unwrap();
    let as_alice = seal_envelope(
        alice.mailbox.public(),
        &alice.send_id,
        alice.identity.public(),
        &own,
    )
    .unwrap();
    let opened = alice.open(&as_alice).unwrap();
    assert_eq!(a.receive(&opened), Err(CryptoError::SenderNotPeer));
    let as_bob = seal_envelope(
        alice.mailbox.public(),
        &alice.send_id,
        bob.identity.public(),
        &own,
    )
    .unwrap();
    let opened = alice.open(&as_bob).unwrap();
    let before_reflect = state(&a);
    assert!(a.receive(&opened).is_err());
    assert_eq!(state(&a), before_reflect);
    assert_ne!(before, state(&a), "only the local encrypt advanced Alice");
}

// ---------- T2: tampered sender, key id, type, version ----------

#[test]
fn t2_tampered_sender_is_refused() {
    let alice = Party::new();
    let bob = Party::new();
    let mallory = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    let message = a.encrypt(b"from alice").unwrap();
    // The same genuine session message, sealed with Mallory as the claimed sender.
    let sealed = seal_envelope(
        bob.mailbox.public(),
        &bob.send_id,
        mallory.identity.public(),
        &message,
    )
    .unwrap();
    let opened = bob.open(&sealed).unwrap();
    let before = state(&b);
    assert_eq!(b.receive(&opened), Err(CryptoError::SenderNotPeer));
    assert_eq!(state(&b), before);
    // A second sender on a bound mailbox (another initial message using the same invite) is refused.
    let mut m = Session::initiate(&mallory.identity, &bob.bundle()).unwrap();
    let sealed = m
        .seal(bob.mailbox.public(), &bob.send_id, b"let me in")
        .unwrap();
    let opened = bob.open(&sealed).unwrap();
    assert_eq!(b.receive(&opened), Err(CryptoError::SenderNotPeer));
    // Mallory claiming to be Alice with her own session: the ratchet (AD = IK_A ‖ IK_B) refuses.
    let sealed = m
        .seal(bob.mailbox.public(), &bob.send_id, b"i am alice")
        .unwrap();
    let mut raw = bob.open(&sealed).unwrap().payload().clone();
    if let SessionMessage::Initial(_) = raw {
        raw = SessionMessage::Ratchet(raw.ratchet_message().clone());
    }
    let forged = seal_envelope(
        bob.mailbox.public(),
        &bob.send_id,
        alice.identity.public(),
        &raw,
    )
    .unwrap();
    let opened = bob.open(&forged).unwrap();
    assert!(b.receive(&opened).is_err());
    assert_eq!(state(&b), before);
}

#[test]
fn t2_tampered_key_ids_are_refused() {
    let alice = Party::new();
    let bob = Party::new();
    let mut a = Session::initiate(&alice.identity, &bob.bundle()).unwrap();
    let SessionMessage::Initial(initial) = a.encrypt(b"first").unwrap() else {
        panic!("initiator must send an initial message")
    };
    let genuine = SessionMessage::Initial(initial).to_bytes();
    // Layout: type(1) ‖ suite(1) ‖ EK(32) ‖ SPK id(4) ‖ has_OPK(1) ‖ OPK id(4) ‖ ratchet …
    for (name, offset) in [
        ("spk id", 34usize),
        ("opk id", 39usize),
        ("ephemeral key", 2usize),
    ] {
        let mut bytes = genuine.clone();
        bytes[offset] ^= 0x01;
        let sealed = bob.sealed_raw_from(&alice, &bytes);
        let opened = bob.open(&sealed).unwrap();
        let result = bob.respond(&opened);
        match name {
            "ephemeral key" => assert!(matches!(
                result.err(),
                Some(CryptoError::DecryptFailed | CryptoError::NonContributory)
            )),
            _ => assert_eq!(result.err(), Some(CryptoError::PrekeyMismatch), "{name}"),
        }
    }
    // Dropping the one-time prekey id (has_OPK = 0) is refused too.
    let mut bytes = genuine.clone();
    bytes[38] = 0;
    bytes.drain(39..43);
    let sealed = bob.sealed_raw_from(&alice, &bytes);
    let opened = bob.open(&sealed).unwrap();
    assert_eq!(
        bob.respond(&opened).err(),
        Some(CryptoError::PrekeyMismatch)
    );
    // Pretending the wrong prekey was used: the X3DH secret differs and the ratchet refuses.
    assert_eq!(
        Session::respond(&bob.identity, &bob.signed_prekey, None, &opened).err(),
        Some(CryptoError::DecryptFailed)
    );
}

#[test_case(0 => Err(DecodeError::UnknownTag { found: 0 }) ; "type zero")]
#[test_case(3 => Err(DecodeError::UnknownTag { found: 3 }) ; "type three")]
#[test_case(255 => Err(DecodeError::UnknownTag { found: 255 }) ; "type 255")]
fn t2_tampered_type_is_refused(type_byte: u8) -> Result<(), DecodeError> {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, _b) = establish(&alice, &bob);
    let mut bytes = a.encrypt(b"typed").unwrap().to_bytes();
    bytes[0] = type_byte;
    let sealed = bob.sealed_raw_from(&alice, &bytes);
    match bob.open(&sealed) {
        Err(CryptoError::Decode(error)) => Err(error),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn t2_swapped_type_initial_to_ratchet_is_refused() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    deliver(&mut b, &mut a, &alice, b"turn");
    // A ratchet message relabelled as an initial message does not parse as one or is refused.
    let mut bytes = a.encrypt(b"typed").unwrap().to_bytes();
    assert_eq!(bytes[0], 2);
    bytes[0] = 1;
    let sealed = bob.sealed_raw_from(&alice, &bytes);
    let before = state(&b);
    match bob.open(&sealed) {
        Err(_) => {}
        Ok(opened) => assert!(b.receive(&opened).is_err()),
    }
    assert_eq!(state(&b), before);
}

#[test]
fn t2_tampered_envelope_version_is_refused() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, _b) = establish(&alice, &bob);
    let sealed = a
        .seal(bob.mailbox.public(), &bob.send_id, b"versioned")
        .unwrap();
    for version in [0u8, 2, 0x7f, 0xff] {
        let mut bytes = sealed.as_bytes().to_vec();
        bytes[0] = version;
        assert_eq!(
            open_envelope(&bob.mailbox, &bob.send_id, &bytes),
            Err(CryptoError::Decode(DecodeError::UnsupportedVersion {
                found: version
            }))
        );
    }
    // The ratchet header's own version byte is checked too (sealed by a sender who set it).
    let mut inner = a.encrypt(b"x").unwrap().to_bytes();
    // type(1) ‖ suite(1) ‖ EK(32) ‖ SPK id(4) ‖ has_OPK(1) ‖ OPK id(4) ‖ header version
    inner[43] = 9;
    let resealed = bob.sealed_raw_from(&alice, &inner);
    assert_eq!(
        bob.open(&resealed),
        Err(CryptoError::Decode(DecodeError::UnsupportedVersion {
            found: 9
        }))
    );
}

#[test]
fn envelope_sealed_to_another_mailbox_does_not_open() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, _b) = establish(&alice, &bob);
    let sealed = a
        .seal(bob.mailbox.public(), &bob.send_id, b"for this mailbox")
        .unwrap();
    let mut other_send_id = bob.send_id;
    other_send_id.0[0] ^= 1;
    assert_eq!(
        open_envelope(&bob.mailbox, &other_send_id, sealed.as_bytes()),
        Err(CryptoError::EnvelopeOpenFailed)
    );
}

// ---------- T3: bit flips and truncation ----------

fn assert_all_mutations_refused(
    bob: &Party,
    bytes: &[u8],
    bits: impl Iterator<Item = usize>,
    cuts: impl Iterator<Item = usize>,
) -> (usize, usize) {
    let mut flips = 0;
    for bit in bits {
        let mut tampered = bytes.to_vec();
        tampered[bit / 8] ^= 1 << (bit % 8);
        assert!(
            open_envelope(&bob.mailbox, &bob.send_id, &tampered).is_err(),
            "bit {bit}"
        );
        flips += 1;
    }
    let mut truncations = 0;
    for len in cuts {
        assert!(
            open_envelope(&bob.mailbox, &bob.send_id, &bytes[..len]).is_err(),
            "len {len}"
        );
        truncations += 1;
    }
    (flips, truncations)
}

#[test]
fn t3_every_bit_flip_and_truncation_on_256_byte_bucket_is_refused() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    deliver(&mut b, &mut a, &alice, b"turn");
    let sealed = a
        .seal(bob.mailbox.public(), &bob.send_id, b"short message")
        .unwrap();
    let bytes = sealed.as_bytes();
    assert_eq!(bytes.len(), 33 + 256 + 16, "the 256-byte bucket");
    let (flips, truncations) =
        assert_all_mutations_refused(&bob, bytes, 0..bytes.len() * 8, 0..bytes.len());
    assert_eq!(flips, 305 * 8);
    assert_eq!(truncations, 305);
    // Appending bytes is refused too, and the original still opens once.
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(open_envelope(&bob.mailbox, &bob.send_id, &longer).is_err());
    let opened = open_envelope(&bob.mailbox, &bob.send_id, bytes).unwrap();
    assert_eq!(b.receive(&opened).unwrap().as_slice(), b"short message");
}

#[test_case(700 ; "1 KiB bucket")]
#[test_case(3000 ; "4 KiB bucket")]
#[test_case(15000 ; "16 KiB bucket")]
#[test_case(60000 ; "64 KiB bucket")]
fn t3_sampled_bit_flips_and_truncations_on_larger_buckets_are_refused(len: usize) {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    let plaintext = vec![0x5a; len];
    let sealed = a
        .seal(bob.mailbox.public(), &bob.send_id, &plaintext)
        .unwrap();
    let bytes = sealed.as_bytes();
    let total_bits = bytes.len() * 8;
    // Deterministic spread: every bit of the header, then a stride over the rest.
    let stride = (total_bits / 300).max(1);
    let bits = (0..33 * 8)
        .chain((33 * 8..total_bits).step_by(stride))
        .chain(total_bits - 8..total_bits);
    let cuts = (0..40)
        .chain((40..bytes.len()).step_by((bytes.len() / 100).max(1)))
        .chain(bytes.len() - 17..bytes.len());
    let (flips, truncations) = assert_all_mutations_refused(&bob, bytes, bits, cuts);
    assert!(flips > 500 && truncations > 100);
    let opened = open_envelope(&bob.mailbox, &bob.send_id, bytes).unwrap();
    assert_eq!(b.receive(&opened).unwrap().to_vec(), plaintext);
}

#[test]
fn payload_above_the_largest_bucket_is_refused() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, _b) = establish(&alice, &bob);
    let before = state(&a);
    assert!(matches!(
        a.seal(bob.mailbox.public(), &bob.send_id, &vec![0u8; 70_000]),
        Err(CryptoError::PayloadTooLarge { .. })
    ));
    assert_eq!(
        state(&a),
        before,
        "a failed seal does not advance the ratchet"
    );
}

// ---------- T5: replay and reordering ----------

#[test]
fn t5_replay_is_refused_and_reordering_uses_the_senders_counter() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, mut b) = establish(&alice, &bob);
    deliver(&mut b, &mut a, &alice, b"turn");
    let sealed: Vec<_> = (0u8..6)
        .map(|index| {
            a.seal(bob.mailbox.public(), &bob.send_id, &[index])
                .unwrap()
        })
        .collect();
    // The relay reorders: 5, 2, 0, 4, 1, 3. Each opens once with its own text, and the
    // sender's counter (header N) gives the true order regardless of the relay.
    let mut seen = Vec::new();
    for index in [5usize, 2, 0, 4, 1, 3] {
        let opened = open_envelope(&bob.mailbox, &bob.send_id, sealed[index].as_bytes()).unwrap();
        let counter = opened.payload().ratchet_message().header().message_number();
        let plaintext = b.receive(&opened).unwrap();
        assert_eq!(plaintext.as_slice(), &[index as u8]);
        seen.push((counter, plaintext[0]));
    }
    seen.sort();
    assert_eq!(
        seen.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5]
    );
    // Replays, immediately and "days later" (after many more messages both ways), are refused.
    for _ in 0..20 {
        deliver(&mut a, &mut b, &bob, b"later");
        deliver(&mut b, &mut a, &alice, b"later");
    }
    for envelope in &sealed {
        let opened = bob.open(envelope).unwrap();
        let before = state(&b);
        assert_eq!(b.receive(&opened), Err(CryptoError::DuplicateOrExpired));
        assert_eq!(state(&b), before);
    }
    // Envelope ids are distinct, so the client can also deduplicate on them.
    let mut ids: Vec<_> = sealed.iter().map(|s| s.envelope_id()).collect();
    ids.dedup();
    assert_eq!(ids.len(), sealed.len());
}

// ---------- T6: downgrade ----------

#[test]
fn t6_version_downgrade_is_refused_everywhere() {
    let alice = Party::new();
    let bob = Party::new();
    let (mut a, _b) = establish(&alice, &bob);
    assert_eq!(ENVELOPE_VERSION, 1);
    let sealed = a.seal(bob.mailbox.public(), &bob.send_id, b"v1").unwrap();
    let mut downgraded = sealed.as_bytes().to_vec();
    downgraded[0] = 0;
    assert_eq!(
        open_envelope(&bob.mailbox, &bob.send_id, &downgraded),
        Err(CryptoError::Decode(DecodeError::UnsupportedVersion {
            found: 0
        }))
    );
    // Session state of an older (or unknown) version is refused rather than misread.
    let mut stored = a.to_bytes().unwrap().to_vec();
    for version in [0u8, 2] {
        stored[0] = version;
        assert_eq!(
            Session::from_bytes(&stored).err(),
            Some(DecodeError::UnsupportedVersion { found: version })
        );
    }
    // An initial message of another X3DH suite (e.g. a future PQXDH = 2, or 0) is refused.
    let mut initial = a.encrypt(b"x").unwrap().to_bytes();
    for suite in [0u8, 2] {
        initial[1] = suite;
        assert_eq!(
            SessionMessage::from_bytes(&initial),
            Err(DecodeError::UnsupportedVersion { found: suite })
        );
    }
}

// ---------- T7: forward secrecy ----------

#[test]
fn t7_leaked_identity_and_signed_prekey_cannot_open_recorded_traffic() {
    let alice = Party::new();
    let bob = Party::new();
    // Record a conversation: the first (initial) message and later ones both ways.
    let mut a = Session::initiate(&alice.identity, &bob.bundle()).unwrap();
    let first = a
        .seal(bob.mailbox.public(), &bob.send_id, b"secret one")
        .unwrap();
    let opened = bob.open(&first).unwrap();
    let (mut b, _) = bob.respond(&opened).unwrap();
    let reply = b
        .seal(alice.mailbox.public(), &alice.send_id, b"secret two")
        .unwrap();
    let opened = alice.open(&reply).unwrap();
    a.receive(&opened).unwrap();
    let later = a
        .seal(bob.mailbox.public(), &bob.send_id, b"secret three")
        .unwrap();
    let opened = bob.open(&later).unwrap();
    b.receive(&opened).unwrap();
    // Bob deleted his one-time prekey after use (X3DH §3.4); the sessions end.
    drop((a, b));

    // Everything long-term leaks: both identity seeds, Bob's signed prekey, both mailbox keys.
    let leaked_bob = IdentityKeyPair::from_seed(&bob.seed).unwrap();
    let leaked_alice = IdentityKeyPair::from_seed(&alice.seed).unwrap();
    let leaked_spk =
        sealpost_crypto::SignedPrekeyPair::from_secret_bytes(&bob.signed_prekey.to_secret_bytes())
            .unwrap();

    // The HPKE layer opens (the mailbox key leaked), but the ratchet layer does not.
    let recorded_first = bob.open(&first).unwrap();
    assert_eq!(
        Session::respond(&leaked_bob, &leaked_spk, None, &recorded_first).err(),
        Some(CryptoError::PrekeyMismatch)
    );
    // A substitute one-time prekey gives the wrong X3DH secret.
    let substitute = sealpost_crypto::OneTimePrekeyPair::generate().unwrap();
    assert!(
        Session::respond(&leaked_bob, &leaked_spk, Some(&substitute), &recorded_first).is_err()
    );

    // Start fresh sessions from the leaked keys in both roles: neither opens recorded traffic.
    let mut attacker_as_alice =
        Session::initiate(&leaked_alice, &bob.bundle_without_one_time()).unwrap();
    let recorded_reply = alice.open(&reply).unwrap();
    assert!(attacker_as_alice.receive(&recorded_reply).is_err());
    let recorded_later = bob.open(&later).unwrap();
    let probe = attacker_as_alice
        .seal(bob.mailbox.public(), &bob.send_id, b"probe")
        .unwrap();
    let probe = bob.open(&probe).unwrap();
    let (mut attacker_as_bob, _) =
        Session::respond(&leaked_bob, &leaked_spk, None, &probe).unwrap();
    assert!(attacker_as_bob.receive(&recorded_later).is_err());
    assert!(attacker_as_bob.receive(&recorded_first).is_err());
}

#[test]
fn t7_without_one_time_prekey_later_messages_stay_closed() {
    // Without a one-time prekey, X3DH §4.7 notes the first message depends on SPK secrecy;
    // the ratchet still protects everything after the first DH ratchet step.
    let alice = Party::new();
    let bob = Party::new();
    let mut a = Session::initiate(&alice.identity, &bob.bundle_without_one_time()).unwrap();
    let first = a.seal(bob.mailbox.public(), &bob.send_id, b"one").unwrap();
    let opened = bob.open(&first).unwrap();
    let (mut b, _) = Session::respond(&bob.identity, &bob.signed_prekey, None, &opened).unwrap();
    deliver(&mut b, &mut a, &alice, b"two");
    let later = a
        .seal(bob.mailbox.public(), &bob.send_id, b"three")
        .unwrap();
    drop((a, b));
    let leaked_bob = IdentityKeyPair::from_seed(&bob.seed).unwrap();
    let recorded_first = bob.open(&first).unwrap();
    let (mut attacker, _) =
        Session::respond(&leaked_bob, &bob.signed_prekey, None, &recorded_first).unwrap();
    let recorded_later = bob.open(&later).unwrap();
    assert_eq!(
        attacker.receive(&recorded_later),
        Err(CryptoError::DecryptFailed)
    );
}
