//! Property tests: random two-way interleavings with loss, duplication and reordering, the
//! MAX_SKIP boundary, and round trips (plus no-panic decoding) for every codec.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::{Party, establish};
use proptest::prelude::*;
use sealpost_crypto::ratchet::{MAX_SKIP, RatchetMessage};
use sealpost_crypto::{
    CryptoError, IdentityKey, InitialMessage, OneTimePrekey, SafetyNumber, Session, SessionMessage,
    SignedPrekey, open_envelope,
};

#[derive(Debug, Clone)]
enum Action {
    /// Alice (true) or Bob (false) seals a new message of this length.
    Send { from_alice: bool, len: usize },
    /// The relay delivers the in-flight envelope at `pick` (mod queue length); if `duplicate`,
    /// it keeps a copy to deliver again later.
    Deliver {
        to_bob: bool,
        pick: usize,
        duplicate: bool,
    },
    /// The relay drops the in-flight envelope at `pick`.
    Lose { to_bob: bool, pick: usize },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (any::<bool>(), 0usize..300).prop_map(|(from_alice, len)| Action::Send { from_alice, len }),
        3 => (any::<bool>(), any::<usize>(), prop::bool::weighted(0.2))
            .prop_map(|(to_bob, pick, duplicate)| Action::Deliver { to_bob, pick, duplicate }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(to_bob, pick)| Action::Lose { to_bob, pick }),
    ]
}

struct InFlight {
    bytes: Vec<u8>,
    serial: u64,
    plaintext: Vec<u8>,
}

struct World {
    alice: Party,
    bob: Party,
    a: Session,
    b: Option<Session>,
    to_bob: Vec<InFlight>,
    to_alice: Vec<InFlight>,
    next_serial: u64,
    opened: HashSet<u64>,
    opens: u64,
    /// Messages dropped in flight (never delivered).
    lost: u64,
}

impl World {
    fn new() -> Self {
        let alice = Party::new();
        let bob = Party::new();
        let a = Session::initiate(&alice.identity, &bob.bundle()).unwrap();
        Self {
            alice,
            bob,
            a,
            b: None,
            to_bob: Vec::new(),
            to_alice: Vec::new(),
            next_serial: 0,
            opened: HashSet::new(),
            opens: 0,
            lost: 0,
        }
    }

    fn send(&mut self, from_alice: bool, len: usize) {
        let serial = self.next_serial;
        let mut plaintext = serial.to_be_bytes().to_vec();
        plaintext.resize(8 + len, (serial % 251) as u8);
        let (sealed, queue) = if from_alice {
            (
                self.a
                    .seal(self.bob.mailbox.public(), &self.bob.send_id, &plaintext)
                    .unwrap(),
                &mut self.to_bob,
            )
        } else {
            let Some(b) = self.b.as_mut() else { return };
            (
                b.seal(self.alice.mailbox.public(), &self.alice.send_id, &plaintext)
                    .unwrap(),
                &mut self.to_alice,
            )
        };
        queue.push(InFlight {
            bytes: sealed.into_bytes(),
            serial,
            plaintext,
        });
        self.next_serial += 1;
    }

    fn deliver(&mut self, to_bob: bool, pick: usize, duplicate: bool) {
        let queue = if to_bob {
            &mut self.to_bob
        } else {
            &mut self.to_alice
        };
        if queue.is_empty() {
            return;
        }
        let index = pick % queue.len();
        let item = if duplicate {
            let original = &queue[index];
            InFlight {
                bytes: original.bytes.clone(),
                serial: original.serial,
                plaintext: original.plaintext.clone(),
            }
        } else {
            queue.remove(index)
        };
        let result = if to_bob {
            let opened = open_envelope(&self.bob.mailbox, &self.bob.send_id, &item.bytes).unwrap();
            match self.b.as_mut() {
                Some(b) => b.receive(&opened).map(|p| p.to_vec()),
                None => {
                    let (session, plaintext) = Session::respond(
                        &self.bob.identity,
                        &self.bob.signed_prekey,
                        Some(&self.bob.one_time_prekey),
                        &opened,
                    )
                    .unwrap();
                    self.b = Some(session);
                    Ok(plaintext.to_vec())
                }
            }
        } else {
            let opened =
                open_envelope(&self.alice.mailbox, &self.alice.send_id, &item.bytes).unwrap();
            self.a.receive(&opened).map(|p| p.to_vec())
        };
        if self.opened.contains(&item.serial) {
            assert_eq!(
                result,
                Err(CryptoError::DuplicateOrExpired),
                "serial {} opened twice",
                item.serial
            );
        } else {
            assert_eq!(result.unwrap(), item.plaintext, "serial {}", item.serial);
            self.opened.insert(item.serial);
            self.opens += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Loss, duplication and reordering both ways within MAX_SKIP: every delivered message opens
    /// exactly once with its own plaintext, duplicates are refused, and nothing is lost that was
    /// not dropped.
    #[test]
    fn interleavings_open_every_message_exactly_once(
        actions in prop::collection::vec(action(), 1..80),
        final_order in prop::collection::vec(any::<usize>(), 0..200),
    ) {
        let mut world = World::new();
        world.send(true, 10);
        for action in actions {
            match action {
                Action::Send { from_alice, len } => world.send(from_alice, len),
                Action::Deliver { to_bob, pick, duplicate } => world.deliver(to_bob, pick, duplicate),
                Action::Lose { to_bob, pick } => {
                    let queue = if to_bob { &mut world.to_bob } else { &mut world.to_alice };
                    if !queue.is_empty() {
                        let index = pick % queue.len();
                        let dropped = queue.remove(index);
                        // A copy of it may have been delivered already (duplication).
                        if !world.opened.contains(&dropped.serial) {
                            world.lost += 1;
                        }
                    }
                }
            }
        }
        // Drain whatever is still in flight, in a random order.
        let mut picks = final_order.into_iter();
        while !world.to_bob.is_empty() || !world.to_alice.is_empty() {
            let pick = picks.next().unwrap_or(0);
            let to_bob = world.to_alice.is_empty() || (!world.to_bob.is_empty() && pick % 2 == 0);
            world.deliver(to_bob, pick / 2, false);
        }
        // Every message sent and not dropped opened exactly once (a run may drop them all).
        prop_assert_eq!(world.opens, world.next_serial - world.lost);
        // The session still works both ways afterwards.
        let serial = world.next_serial;
        world.send(true, 5);
        world.deliver(true, 0, false);
        prop_assert!(world.opened.contains(&serial));
    }

    /// An authentic gap beyond MAX_SKIP is a clear error, leaves the state unchanged, and the
    /// session still works afterwards (earlier messages open; the other direction works).
    #[test]
    fn gap_beyond_max_skip_is_a_clear_error(extra in 1u32..40) {
        let alice = Party::new();
        let bob = Party::new();
        let (mut a, mut b) = establish(&alice, &bob);
        common::deliver(&mut b, &mut a, &alice, b"turn");
        let kept = a.seal(bob.mailbox.public(), &bob.send_id, b"kept").unwrap();
        for _ in 0..(MAX_SKIP + extra - 1) {
            a.encrypt(b"lost").unwrap();
        }
        let far = a.seal(bob.mailbox.public(), &bob.send_id, b"far").unwrap();
        let before = b.to_bytes().unwrap().to_vec();
        let opened = open_envelope(&bob.mailbox, &bob.send_id, far.as_bytes()).unwrap();
        let too_many = matches!(
            b.receive(&opened),
            Err(CryptoError::AuthenticGapBeyondMaxSkip { skipped, .. })
                if skipped == u64::from(MAX_SKIP + extra)
        );
        prop_assert!(too_many);
        prop_assert_eq!(b.to_bytes().unwrap().to_vec(), before);
        let opened = open_envelope(&bob.mailbox, &bob.send_id, kept.as_bytes()).unwrap();
        let kept_plaintext = b.receive(&opened).unwrap();
        prop_assert_eq!(kept_plaintext.as_slice(), b"kept");
        prop_assert_eq!(common::deliver(&mut b, &mut a, &alice, b"back"), b"back".to_vec());
    }

    /// A forged ratchet message (random ciphertext) claiming the peer as sender, with any
    /// header, on the current chain or with a new ratchet key: never reported as an authentic
    /// gap (which would let the engine restart the session), and the state stays byte-identical.
    #[test]
    fn forged_headers_never_pass_as_authentic(
        current_chain in any::<bool>(),
        key in any::<[u8; 32]>(),
        pn in prop_oneof![0u32..2_000, any::<u32>()],
        n in prop_oneof![0u32..3_000, any::<u32>()],
        body in prop::collection::vec(any::<u8>(), 16..64),
    ) {
        let alice = Party::new();
        let bob = Party::new();
        let (mut a, mut b) = establish(&alice, &bob);
        common::deliver(&mut b, &mut a, &alice, b"turn");
        let probe = a.seal(bob.mailbox.public(), &bob.send_id, b"probe").unwrap();
        let opened = open_envelope(&bob.mailbox, &bob.send_id, probe.as_bytes()).unwrap();
        let dh = if current_chain {
            opened.payload().ratchet_message().header().ratchet_key().to_bytes()
        } else {
            key
        };
        b.receive(&opened).unwrap();
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&dh);
        bytes.extend_from_slice(&pn.to_be_bytes());
        bytes.extend_from_slice(&n.to_be_bytes());
        bytes.extend_from_slice(&body);
        let message = SessionMessage::Ratchet(RatchetMessage::from_bytes(&bytes).unwrap());
        let sealed = sealpost_crypto::seal_envelope(
            bob.mailbox.public(), &bob.send_id, alice.identity.public(), &message,
        ).unwrap();
        let opened = open_envelope(&bob.mailbox, &bob.send_id, sealed.as_bytes()).unwrap();
        let before = b.to_bytes().unwrap().to_vec();
        let result = b.receive(&opened);
        prop_assert!(result.is_err());
        let authentic = matches!(result, Err(CryptoError::AuthenticGapBeyondMaxSkip { .. }));
        prop_assert!(!authentic, "a forgery passed as authentic");
        prop_assert_eq!(b.to_bytes().unwrap().to_vec(), before);
        prop_assert_eq!(common::deliver(&mut a, &mut b, &bob, b"real"), b"real".to_vec());
    }

    /// Session state survives to_bytes/from_bytes at any point of a conversation, byte for byte.
    #[test]
    fn session_state_round_trips(rounds in prop::collection::vec((any::<bool>(), 0usize..4), 0..12)) {
        let alice = Party::new();
        let bob = Party::new();
        let (mut a, mut b) = establish(&alice, &bob);
        for (alice_sends, skip) in rounds {
            let (sender, receiver, to) = if alice_sends { (&mut a, &mut b, &bob) } else { (&mut b, &mut a, &alice) };
            for _ in 0..skip {
                sender.encrypt(b"skipped").unwrap();
            }
            common::deliver(sender, receiver, to, b"x");
        }
        for session in [&a, &b] {
            let bytes = session.to_bytes().unwrap();
            let restored = Session::from_bytes(&bytes).unwrap();
            prop_assert_eq!(restored.to_bytes().unwrap().to_vec(), bytes.to_vec());
        }
    }

    /// Sealed envelopes of every size open to exactly the session message that was sealed.
    #[test]
    fn envelope_round_trips(len in 0usize..70_000) {
        let alice = Party::new();
        let bob = Party::new();
        let (mut a, _b) = establish(&alice, &bob);
        let message = a.encrypt(&vec![7u8; len.min(65_000)]).unwrap();
        match sealpost_crypto::seal_envelope(bob.mailbox.public(), &bob.send_id, alice.identity.public(), &message) {
            Ok(sealed) => {
                let opened = open_envelope(&bob.mailbox, &bob.send_id, sealed.as_bytes()).unwrap();
                prop_assert_eq!(opened.payload(), &message);
                prop_assert_eq!(opened.sender(), alice.identity.public());
                prop_assert_eq!(opened.envelope_id(), sealed.envelope_id());
                prop_assert!(sealpost_crypto::envelope::PADDING_BUCKETS.contains(&(sealed.as_bytes().len() - 49)));
            }
            Err(error) => {
                let too_large = matches!(error, CryptoError::PayloadTooLarge { .. });
                prop_assert!(too_large);
            }
        }
    }

    /// Every decoder: arbitrary bytes never panic, and whatever decodes re-encodes to the same bytes.
    #[test]
    fn decoders_never_panic_and_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(message) = SessionMessage::from_bytes(&bytes) {
            prop_assert_eq!(message.to_bytes(), bytes.clone());
        }
        if let Ok(message) = RatchetMessage::from_bytes(&bytes) {
            prop_assert_eq!(message.to_bytes(), bytes.clone());
        }
        if let Ok(message) = InitialMessage::from_bytes(&bytes) {
            prop_assert_eq!(message.to_bytes(), bytes.clone());
        }
        if let Ok(prekey) = SignedPrekey::from_bytes(&bytes) {
            prop_assert_eq!(prekey.to_bytes().to_vec(), bytes.clone());
        }
        if let Ok(prekey) = OneTimePrekey::from_bytes(&bytes) {
            prop_assert_eq!(prekey.to_bytes().to_vec(), bytes.clone());
        }
        if let Ok(array) = <[u8; 64]>::try_from(bytes.as_slice())
            && let Ok(key) = IdentityKey::from_bytes(&array)
        {
            prop_assert_eq!(key.to_bytes(), array);
        }
        let _ = Session::from_bytes(&bytes);
        let _ = sealpost_crypto::SignedPrekeyPair::from_secret_bytes(&bytes);
        let _ = sealpost_crypto::OneTimePrekeyPair::from_secret_bytes(&bytes);
    }

    /// Structured random messages round trip through their codecs.
    #[test]
    fn structured_messages_round_trip(
        ephemeral in any::<[u8; 32]>(), spk in any::<u32>(), opk in any::<Option<u32>>(),
        dh in any::<[u8; 32]>(), pn in any::<u32>(), n in any::<u32>(),
        ciphertext in prop::collection::vec(any::<u8>(), 16..300),
    ) {
        let mut ratchet = vec![1u8];
        ratchet.extend_from_slice(&dh);
        ratchet.extend_from_slice(&pn.to_be_bytes());
        ratchet.extend_from_slice(&n.to_be_bytes());
        ratchet.extend_from_slice(&ciphertext);
        let decoded = RatchetMessage::from_bytes(&ratchet).unwrap();
        prop_assert_eq!(decoded.header().message_number(), n);
        prop_assert_eq!(decoded.header().previous_chain_length(), pn);
        prop_assert_eq!(decoded.to_bytes(), ratchet.clone());
        let mut initial = vec![1u8];
        initial.extend_from_slice(&ephemeral);
        initial.extend_from_slice(&spk.to_be_bytes());
        match opk {
            Some(id) => { initial.push(1); initial.extend_from_slice(&id.to_be_bytes()); }
            None => initial.push(0),
        }
        initial.extend_from_slice(&ratchet);
        let decoded = InitialMessage::from_bytes(&initial).unwrap();
        prop_assert_eq!(decoded.signed_prekey_id().0, spk);
        prop_assert_eq!(decoded.one_time_prekey_id().map(|id| id.0), opk);
        prop_assert_eq!(decoded.to_bytes(), initial.clone());
        let wrapped = SessionMessage::Initial(decoded);
        prop_assert_eq!(SessionMessage::from_bytes(&wrapped.to_bytes()).unwrap(), wrapped);
    }

    /// Arbitrary bytes never make the envelope opener or the QR checker panic.
    #[test]
    fn envelope_and_qr_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let bob = Party::new();
        prop_assert!(open_envelope(&bob.mailbox, &bob.send_id, &bytes).is_err());
        let number = SafetyNumber::new(bob.identity.public(), Party::new().identity.public());
        let _ = number.matches_scanned(&bytes);
    }

    /// Key codecs: identity (seed → public bytes), stored prekey pairs, mailbox keys, QR payloads.
    #[test]
    fn key_codecs_round_trip(seed in any::<[u8; 32]>(), mailbox_secret in any::<[u8; 32]>()) {
        use sealpost_crypto::{IdentityKeyPair, IdentitySeed, MailboxSealingKey, OneTimePrekeyPair, SignedPrekeyPair};
        let pair = IdentityKeyPair::from_seed(&IdentitySeed::from_bytes(zeroize::Zeroizing::new(seed))).unwrap();
        let public = *pair.public();
        prop_assert_eq!(IdentityKey::from_bytes(&public.to_bytes()).unwrap(), public);
        let signed = SignedPrekeyPair::generate(&pair).unwrap();
        let restored = SignedPrekeyPair::from_secret_bytes(&signed.to_secret_bytes()).unwrap();
        prop_assert_eq!(restored.public(), signed.public());
        prop_assert_eq!(&SignedPrekey::from_bytes(&signed.public().to_bytes()).unwrap(), signed.public());
        let one_time = OneTimePrekeyPair::generate().unwrap();
        let restored = OneTimePrekeyPair::from_secret_bytes(&one_time.to_secret_bytes()).unwrap();
        prop_assert_eq!(restored.public(), one_time.public());
        let mailbox = MailboxSealingKey::from_secret_bytes(&mailbox_secret).unwrap();
        let again = MailboxSealingKey::from_secret_bytes(&mailbox.to_secret_bytes()).unwrap();
        prop_assert_eq!(again.public(), mailbox.public());
        let other = IdentityKeyPair::from_seed(&IdentitySeed::from_bytes(zeroize::Zeroizing::new(mailbox_secret))).unwrap();
        let mine = SafetyNumber::new(&public, other.public());
        let theirs = SafetyNumber::new(other.public(), &public);
        prop_assert_eq!(mine.digits(), theirs.digits());
        prop_assert!(mine.matches_scanned(&theirs.qr_payload()).unwrap());
    }
}
