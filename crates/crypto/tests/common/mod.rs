//! Shared set-up for the integration tests: parties with identities, prekeys and a mailbox.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use sealpost_crypto::envelope::seal_raw;
use sealpost_crypto::{
    CryptoError, EnvelopeId, IdentityKeyPair, IdentitySeed, MailboxSealingKey, OneTimePrekeyPair,
    OpenedEnvelope, PrekeyBundle, SealedEnvelope, SendId, Session, SignedPrekeyPair, open_envelope,
};
use zeroize::Zeroizing;

/// One user with one mailbox (the mailbox the *others* write to).
pub struct Party {
    pub seed: IdentitySeed,
    pub identity: IdentityKeyPair,
    pub signed_prekey: SignedPrekeyPair,
    pub one_time_prekey: OneTimePrekeyPair,
    pub mailbox: MailboxSealingKey,
    pub send_id: SendId,
}

impl Party {
    pub fn new() -> Self {
        let seed = IdentitySeed::generate().unwrap();
        let identity = IdentityKeyPair::from_seed(&seed).unwrap();
        let signed_prekey = SignedPrekeyPair::generate(&identity).unwrap();
        let one_time_prekey = OneTimePrekeyPair::generate().unwrap();
        let mailbox = MailboxSealingKey::generate().unwrap();
        let mut send_id = [0u8; 32];
        getrandom::fill(&mut send_id).unwrap();
        Self {
            seed,
            identity,
            signed_prekey,
            one_time_prekey,
            mailbox,
            send_id: SendId(send_id),
        }
    }

    /// The bundle an invite from this party yields (identity + signed prekey + one-time prekey).
    pub fn bundle(&self) -> PrekeyBundle {
        PrekeyBundle::new(
            *self.identity.public(),
            *self.signed_prekey.public(),
            Some(*self.one_time_prekey.public()),
        )
        .unwrap()
    }

    /// The bundle for restarting a broken session: latest signed prekey only.
    pub fn bundle_without_one_time(&self) -> PrekeyBundle {
        PrekeyBundle::new(*self.identity.public(), *self.signed_prekey.public(), None).unwrap()
    }

    /// Raw session-message bytes (tampered, relabelled) sealed to this party's mailbox with
    /// `sender` as the sealed sender and a fresh envelope id: the HPKE layer seals them as given.
    pub fn sealed_raw_from(&self, sender: &Party, session_message: &[u8]) -> SealedEnvelope {
        seal_raw(
            self.mailbox.public(),
            &self.send_id,
            sender.identity.public(),
            EnvelopeId::random().unwrap(),
            session_message,
        )
        .unwrap()
    }

    /// Opens an envelope that arrived on this party's mailbox.
    pub fn open(&self, envelope: &SealedEnvelope) -> Result<OpenedEnvelope, CryptoError> {
        open_envelope(&self.mailbox, &self.send_id, envelope.as_bytes())
    }

    /// Answers an initial message with this party's signed and one-time prekeys.
    pub fn respond(
        &self,
        opened: &OpenedEnvelope,
    ) -> Result<(Session, Zeroizing<Vec<u8>>), CryptoError> {
        Session::respond(
            &self.identity,
            &self.signed_prekey,
            Some(&self.one_time_prekey),
            opened,
        )
    }
}

/// Alice initiates from Bob's invite; Bob responds to the first envelope. Returns both sessions.
pub fn establish(alice: &Party, bob: &Party) -> (Session, Session) {
    let mut alice_session = Session::initiate(&alice.identity, &bob.bundle()).unwrap();
    let sealed = alice_session
        .seal(bob.mailbox.public(), &bob.send_id, b"hello bob")
        .unwrap();
    let opened = open_envelope(&bob.mailbox, &bob.send_id, sealed.as_bytes()).unwrap();
    let (bob_session, plaintext) = Session::respond(
        &bob.identity,
        &bob.signed_prekey,
        Some(&bob.one_time_prekey),
        &opened,
    )
    .unwrap();
    assert_eq!(plaintext.as_slice(), b"hello bob");
    (alice_session, bob_session)
}

/// Seals from `from` to `to`'s mailbox and opens + receives it on `to`'s side.
pub fn deliver(
    sender: &mut Session,
    receiver: &mut Session,
    to: &Party,
    plaintext: &[u8],
) -> Vec<u8> {
    let sealed = sender
        .seal(to.mailbox.public(), &to.send_id, plaintext)
        .unwrap();
    let opened = open_envelope(&to.mailbox, &to.send_id, sealed.as_bytes()).unwrap();
    receiver.receive(&opened).unwrap().to_vec()
}
