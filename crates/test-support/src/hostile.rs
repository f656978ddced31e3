//! What a hostile relay can do to a mailbox, for the tests that hold against one: store any
//! bytes in it (signed with the legitimate sender's key where the relay checks one; the relay
//! itself needs no key), and initial messages from an attacker's identity.

use sealpost_client::EngineEvent;
use sealpost_crypto::{IdentityKeyPair, MailboxSealingPublicKey, PrekeyBundle, SendId, Session};
use sealpost_relay_client::{ClientError, Connector, ConnectorConfig, RelayUrl};

use sealpost_client::content::{Body, CONTENT_VERSION, Content};
use sealpost_client::store::{ContactId, SessionStateBytes, UnixMillis};

use crate::client::Client;
use crate::relay::TestRelay;

/// Sends `envelope` into the mailbox `send_id` on `relay_url` on a connection of its own,
/// signed with `sender_key` if given; returns what the relay answered.
pub async fn send_raw(
    relay_url: &str,
    send_id: [u8; 32],
    send_secret: [u8; 32],
    sender_key: Option<&ed25519_dalek::SigningKey>,
    envelope: &[u8],
) -> Result<(), ClientError> {
    let connector = Connector::new(ConnectorConfig::default()).unwrap();
    let url = RelayUrl::parse(relay_url).unwrap();
    let connection = connector.connect_send(&url).await?;
    let result = connection
        .send(
            sealpost_relay_client::SendId(send_id),
            &sealpost_relay_client::SendSecret::new(send_secret),
            envelope,
            sender_key,
        )
        .await;
    connection.close();
    result
}

/// Stores raw envelope bytes in a mailbox as a malicious relay could: signed with `sender_key`
/// (the relay itself needs no key; the test uses the legitimate sender's). Fails the test if the
/// relay refuses.
pub async fn inject(
    relay_url: &str,
    send_id: [u8; 32],
    send_secret: [u8; 32],
    sender_key: &ed25519_dalek::SigningKey,
    envelope: &[u8],
) {
    send_raw(relay_url, send_id, send_secret, Some(sender_key), envelope)
        .await
        .unwrap();
}

/// Where a client writes to a contact (its first relay): the mailbox, its send secret and
/// sealing key, and the sender key the relay bound that mailbox to.
pub struct PeerMailbox {
    /// The relay.
    pub url: String,
    /// The mailbox's send id.
    pub send_id: [u8; 32],
    /// Its send secret.
    pub send_secret: [u8; 32],
    /// The X25519 key its envelopes are sealed to.
    pub sealing_public_key: [u8; 32],
    /// The sender key the relay checks on SEND.
    pub sender_key: ed25519_dalek::SigningKey,
}

impl PeerMailbox {
    /// The mailbox an invite names on `relay`, written to with `sender_key` (the key the relay
    /// bound it to once the invite was accepted).
    pub fn of_invite(
        relay: &sealpost_client::invite::InviteRelay,
        sender_key: ed25519_dalek::SigningKey,
    ) -> Self {
        Self {
            url: relay.url.clone(),
            send_id: relay.send_id,
            send_secret: relay.send_secret,
            sealing_public_key: relay.sealing_public_key,
            sender_key,
        }
    }

    /// [`inject`]s `envelope` into this mailbox.
    pub async fn inject(&self, envelope: &[u8]) {
        inject(
            &self.url,
            self.send_id,
            self.send_secret,
            &self.sender_key,
            envelope,
        )
        .await;
    }

    /// Replays an envelope captured from the outbox (`Client::sealed_messages_in_outbox`) to the
    /// relay and mailbox it was sealed for, as a malicious relay could, with this sender's key.
    pub async fn replay(&self, relay_url: &str, send_id: [u8; 32], envelope: &[u8]) {
        inject(
            relay_url,
            send_id,
            self.send_secret,
            &self.sender_key,
            envelope,
        )
        .await;
    }
}

impl Client {
    /// Where this client writes to `contact` on its first relay.
    pub fn peer_mailbox(&self, contact: &str) -> PeerMailbox {
        self.engine.with_store(|s| {
            let address = s
                .peer_addresses(contact.parse().unwrap())
                .unwrap()
                .remove(0);
            PeerMailbox {
                url: address.relay_url.as_str().to_owned(),
                send_id: *address.send_id.as_bytes(),
                send_secret: address.send_secret.expose_secret().try_into().unwrap(),
                sealing_public_key: address.sealing_public_key.as_bytes().try_into().unwrap(),
                sender_key: ed25519_dalek::SigningKey::from_bytes(
                    &address
                        .sender_auth_secret_key
                        .expose_secret()
                        .try_into()
                        .unwrap(),
                ),
            }
        })
    }
}

/// An X3DH initial message from `identity` to the owner of `bundle`, sealed to the mailbox
/// (`sealing_public_key`, `send_id`), carrying the content bytes `plaintext`.
pub fn initial_message(
    identity: &IdentityKeyPair,
    bundle: &PrekeyBundle,
    sealing_public_key: [u8; 32],
    send_id: [u8; 32],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut session = Session::initiate(identity, bundle).unwrap();
    session
        .seal(
            &MailboxSealingPublicKey::from_bytes(sealing_public_key),
            &SendId(send_id),
            plaintext,
        )
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// Matches an `EnvelopeRefused` event whose reason contains `what`.
pub fn refused(what: &'static str) -> impl Fn(&EngineEvent) -> bool {
    move |event| matches!(event, EngineEvent::EnvelopeRefused { reason } if reason.contains(what))
}

/// Where `sender` writes to its contact (the test plays a member or a malicious relay).
pub struct Route {
    /// The contact's mailbox send id.
    pub send_id: [u8; 32],
    /// Its send secret.
    pub send_secret: [u8; 32],
    /// The key the mailbox is sealed to.
    pub sealing: [u8; 32],
    /// The key the sender signs its SENDs there with.
    pub sender_key: ed25519_dalek::SigningKey,
}

/// `sender`'s route to `contact` (its first relay address), from its store.
pub fn route(sender: &Client, contact: &str) -> Route {
    let mailbox = sender.peer_mailbox(contact);
    Route {
        send_id: mailbox.send_id,
        send_secret: mailbox.send_secret,
        sealing: mailbox.sealing_public_key,
        sender_key: mailbox.sender_key,
    }
}

/// Seals `body` on `sender`'s real session with `contact` (advancing it as the engine would)
/// and puts the envelope into the contact's mailbox: what a member can send, whatever its
/// engine would have refused to make.
pub async fn send_as(relay: &TestRelay, sender: &Client, contact: &str, body: Body) -> Vec<u8> {
    let route = route(sender, contact);
    let contact_id: ContactId = contact.parse().unwrap();
    let content = Content {
        v: CONTENT_VERSION,
        seq: 0,
        sent_at_ms: 0,
        body,
        receipts: vec![],
    };
    let envelope = sender.engine.with_store(|s| {
        let state = s.session_state(contact_id).unwrap().unwrap();
        let mut session = Session::from_bytes(state.expose_secret()).unwrap();
        let sealed = session
            .seal(
                &MailboxSealingPublicKey::from_bytes(route.sealing),
                &SendId(route.send_id),
                &content.to_bytes().unwrap(),
            )
            .unwrap();
        s.save_session_state(
            contact_id,
            &SessionStateBytes::new(session.to_bytes().unwrap().to_vec()),
            UnixMillis::now(),
        )
        .unwrap();
        sealed.as_bytes().to_vec()
    });
    inject_envelope(relay, &route, &envelope).await;
    envelope
}

/// Stores `envelope` in the mailbox of `route` on `relay` ([`inject`]).
pub async fn inject_envelope(relay: &TestRelay, route: &Route, envelope: &[u8]) {
    inject(
        &relay.url(),
        route.send_id,
        route.send_secret,
        &route.sender_key,
        envelope,
    )
    .await;
}
