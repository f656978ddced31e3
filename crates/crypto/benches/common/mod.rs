//! Set-up shared by the crypto benchmarks: parties with an established session, and the floor
//! the sealing path is measured against (one HPKE Base seal+open plus one ChaCha20-Poly1305
//! seal+open of the same bytes).
#![allow(dead_code)]

use std::hint::black_box;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hpke::aead::ChaCha20Poly1305 as HpkeChaCha;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Kem, OpModeR, OpModeS};
use sealpost_crypto::{
    IdentityKeyPair, IdentitySeed, MailboxSealingKey, OneTimePrekeyPair, PrekeyBundle, SendId,
    Session, SignedPrekeyPair, open_envelope,
};

/// One user with one mailbox (the mailbox the others write to).
pub struct Party {
    pub identity: IdentityKeyPair,
    pub signed_prekey: SignedPrekeyPair,
    pub one_time_prekey: OneTimePrekeyPair,
    pub mailbox: MailboxSealingKey,
    pub send_id: SendId,
}

/// A new party whose mailbox's send id is `tag` repeated.
pub fn party(tag: u8) -> Party {
    let identity = IdentityKeyPair::from_seed(&IdentitySeed::generate().unwrap()).unwrap();
    Party {
        signed_prekey: SignedPrekeyPair::generate(&identity).unwrap(),
        identity,
        one_time_prekey: OneTimePrekeyPair::generate().unwrap(),
        mailbox: MailboxSealingKey::generate().unwrap(),
        send_id: SendId([tag; 32]),
    }
}

/// The bundle an invite from `of` yields (identity + signed prekey + one-time prekey).
pub fn bundle(of: &Party) -> PrekeyBundle {
    PrekeyBundle::new(
        *of.identity.public(),
        *of.signed_prekey.public(),
        Some(*of.one_time_prekey.public()),
    )
    .unwrap()
}

/// Alice (send id 1…) and Bob (2…) with a session past its X3DH: Alice sealed "hi" to Bob,
/// Bob answered "hi" and Alice opened it. Returns (Alice, Bob, Alice's session, Bob's session).
pub fn established() -> (Party, Party, Session, Session) {
    let alice = party(1);
    let bob = party(2);
    let mut a = Session::initiate(&alice.identity, &bundle(&bob)).unwrap();
    let sealed = a.seal(bob.mailbox.public(), &bob.send_id, b"hi").unwrap();
    let opened = open_envelope(&bob.mailbox, &bob.send_id, sealed.as_bytes()).unwrap();
    let (mut b, _) = Session::respond(
        &bob.identity,
        &bob.signed_prekey,
        Some(&bob.one_time_prekey),
        &opened,
    )
    .unwrap();
    let reply = b
        .seal(alice.mailbox.public(), &alice.send_id, b"hi")
        .unwrap();
    let opened = open_envelope(&alice.mailbox, &alice.send_id, reply.as_bytes()).unwrap();
    a.receive(&opened).unwrap();
    (alice, bob, a, b)
}

/// The floor: raw HPKE (X25519, HKDF-SHA256, ChaCha20-Poly1305) and raw ChaCha20-Poly1305.
pub struct Floor {
    secret: <X25519HkdfSha256 as Kem>::PrivateKey,
    public: <X25519HkdfSha256 as Kem>::PublicKey,
    aead: ChaCha20Poly1305,
    nonce: Nonce,
}

impl Floor {
    pub fn new() -> Self {
        let (secret, public) = X25519HkdfSha256::gen_keypair();
        Self {
            secret,
            public,
            aead: ChaCha20Poly1305::new(&Key::from([7u8; 32])),
            nonce: Nonce::from([9u8; 12]),
        }
    }

    /// One HPKE Base seal+open of `plaintext` plus one AEAD seal+open of it; returns the
    /// encapsulated key.
    pub fn hpke_plus_aead(&self, plaintext: &[u8]) -> <X25519HkdfSha256 as Kem>::EncappedKey {
        let (encapped, mut sender) =
            hpke::setup_sender::<HpkeChaCha, HkdfSha256, X25519HkdfSha256>(
                &OpModeS::Base,
                &self.public,
                b"floor",
            )
            .unwrap();
        let sealed = sender.seal(black_box(plaintext), b"aad").unwrap();
        let mut receiver = hpke::setup_receiver::<HpkeChaCha, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            &self.secret,
            &encapped,
            b"floor",
        )
        .unwrap();
        black_box(receiver.open(&sealed, b"aad").unwrap());
        let mut buffer = plaintext.to_vec();
        let tag = self
            .aead
            .encrypt_inout_detached(&self.nonce, b"aad", buffer.as_mut_slice().into())
            .unwrap();
        self.aead
            .decrypt_inout_detached(&self.nonce, b"aad", buffer.as_mut_slice().into(), &tag)
            .unwrap();
        black_box(buffer);
        encapped
    }

    /// Raw ChaCha20-Poly1305 encryption of a copy of `data` (no associated data).
    pub fn aead_encrypt(&self, data: &[u8]) {
        let mut buffer = data.to_vec();
        let tag = self
            .aead
            .encrypt_inout_detached(&self.nonce, b"", buffer.as_mut_slice().into())
            .unwrap();
        black_box((buffer, tag));
    }
}
