//! Signature inputs: the fixed, length-prefixed byte layouts that Ed25519 signatures cover.
//!
//! Every layout is a sequence of fields, each written as a 4-byte big-endian length followed by
//! the field's bytes (`lp(x) = u32_be(len(x)) ‖ x`). The first field is always an ASCII context
//! label, so a signature made for one purpose can never be taken for another. These are never
//! serde output; `docs/relay-protocol.md` writes every byte out.
//!
//! * CREATE: `lp("sealpost/v1/relay/create") ‖ lp(nonce) ‖ lp(auth_key)`.
//! * Owner commands: `lp("sealpost/v1/relay/owner") ‖ lp(nonce) ‖ lp(command) ‖ lp(receive_id)
//!   ‖ lp(argument)`, where command is `SUBSCRIBE`, `ACK`, `DELETE` or `SECURE` and the argument
//!   is empty, the acknowledged message ids (each 8 bytes big-endian, in the order the frame
//!   lists them), empty, or the 32-byte sender key.
//! * Sender session (protocol version 3): `lp("sealpost/v3/relay/sender-session") ‖ lp(nonce) ‖
//!   lp(send_id) ‖ lp(sender_key)`. One signature per connection and mailbox authorises every
//!   later SEND of that connection to a mailbox secured to `sender_key`; SEND itself carries no
//!   signature any more (version 2 signed `lp("sealpost/v1/relay/send") ‖ lp(send_id) ‖
//!   lp(SHA-256(envelope))` on every SEND, one Ed25519 verification per envelope).
//!
//! The nonce is the relay's per-connection HELLO challenge, so a CREATE, owner or sender-session
//! signature made on one connection is refused on any other.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::ids::{AuthPublicKey, MessageId, Nonce, ReceiveId, SendId, SignatureBytes};

/// Context label of the CREATE signature input.
pub const CREATE_CONTEXT: &[u8] = b"sealpost/v1/relay/create";
/// Context label of the owner-command signature input.
pub const OWNER_CONTEXT: &[u8] = b"sealpost/v1/relay/owner";
/// Context label of the sender-session signature input (protocol version 3).
pub const SENDER_SESSION_CONTEXT: &[u8] = b"sealpost/v3/relay/sender-session";

/// An owner command and its argument, as covered by the owner signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerCommand<'a> {
    /// SUBSCRIBE; empty argument.
    Subscribe,
    /// ACK of one or more delivered envelopes; the argument is the message ids, each as 8 bytes
    /// big-endian, concatenated in the order the frame lists them. One signature covers them all.
    Ack(&'a [MessageId]),
    /// DELETE; empty argument.
    Delete,
    /// SECURE; the argument is the 32-byte sender key.
    Secure(AuthPublicKey),
}

impl OwnerCommand<'_> {
    /// The ASCII command label written into the signature input.
    pub fn label(&self) -> &'static [u8] {
        match self {
            OwnerCommand::Subscribe => b"SUBSCRIBE",
            OwnerCommand::Ack(_) => b"ACK",
            OwnerCommand::Delete => b"DELETE",
            OwnerCommand::Secure(_) => b"SECURE",
        }
    }
}

/// Appends `u32_be(len(field)) ‖ field`.
fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    push_length(out, field.len());
    out.extend_from_slice(field);
}

/// Appends a field length as `u32_be`. Every field here is a short constant, at most 32 bytes,
/// or an ACK's id list (bounded by the frame size limit), so the length fits in u32.
fn push_length(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
}

/// The bytes a CREATE signature covers: `lp(CREATE_CONTEXT) ‖ lp(nonce) ‖ lp(auth_key)`.
pub fn create_signature_input(nonce: &Nonce, auth_key: &AuthPublicKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + CREATE_CONTEXT.len() + 2 * (4 + 32));
    push_field(&mut out, CREATE_CONTEXT);
    push_field(&mut out, nonce.as_bytes());
    push_field(&mut out, auth_key.as_bytes());
    out
}

/// The bytes an owner signature covers:
/// `lp(OWNER_CONTEXT) ‖ lp(nonce) ‖ lp(label) ‖ lp(receive_id) ‖ lp(argument)`.
pub fn owner_signature_input(
    nonce: &Nonce,
    command: OwnerCommand<'_>,
    receive_id: &ReceiveId,
) -> Vec<u8> {
    let argument_len = match command {
        OwnerCommand::Ack(message_ids) => 8 * message_ids.len(),
        _ => 32,
    };
    let mut out = Vec::with_capacity(4 + OWNER_CONTEXT.len() + 4 * 4 + 32 + 9 + 32 + argument_len);
    push_field(&mut out, OWNER_CONTEXT);
    push_field(&mut out, nonce.as_bytes());
    push_field(&mut out, command.label());
    push_field(&mut out, receive_id.as_bytes());
    match command {
        OwnerCommand::Subscribe | OwnerCommand::Delete => push_field(&mut out, &[]),
        OwnerCommand::Ack(message_ids) => {
            push_length(&mut out, 8 * message_ids.len());
            for message_id in message_ids {
                out.extend_from_slice(&message_id.0.to_be_bytes());
            }
        }
        OwnerCommand::Secure(sender_key) => push_field(&mut out, sender_key.as_bytes()),
    }
    out
}

/// The bytes a sender-session signature covers:
/// `lp(SENDER_SESSION_CONTEXT) ‖ lp(nonce) ‖ lp(send_id) ‖ lp(sender_key)`.
///
/// The nonce ties the session to one connection; the send id to one mailbox; the key is the
/// one the mailbox is (or will be) secured to, and the one that signs.
pub fn sender_session_signature_input(
    nonce: &Nonce,
    send_id: &SendId,
    sender_key: &AuthPublicKey,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + SENDER_SESSION_CONTEXT.len() + 3 * (4 + 32));
    push_field(&mut out, SENDER_SESSION_CONTEXT);
    push_field(&mut out, nonce.as_bytes());
    push_field(&mut out, send_id.as_bytes());
    push_field(&mut out, sender_key.as_bytes());
    out
}

/// Signs a signature input with an Ed25519 key (RFC 8032 Ed25519, not Ed25519ph).
pub fn sign(key: &SigningKey, input: &[u8]) -> SignatureBytes {
    SignatureBytes(key.sign(input).to_bytes())
}

/// The public half of a signing key, as sent in CREATE or SECURE.
pub fn public_key(key: &SigningKey) -> AuthPublicKey {
    AuthPublicKey(key.verifying_key().to_bytes())
}

/// Verifies a signature with RFC 8032 strict rules (`verify_strict`: no small-order keys, no
/// malleable signatures). False for a key that is not a valid point.
pub fn verify(key: &AuthPublicKey, input: &[u8], signature: &SignatureBytes) -> bool {
    let Ok(verifying_key) = VerifyingKey::from_bytes(key.as_bytes()) else {
        return false;
    };
    verify_with(&verifying_key, input, signature)
}

/// [`verify`] with a key already decompressed (for a key that checks many signatures).
pub fn verify_with(key: &VerifyingKey, input: &[u8], signature: &SignatureBytes) -> bool {
    let signature = Signature::from_bytes(&signature.0);
    key.verify_strict(input, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_layout_is_byte_exact() {
        let nonce = Nonce([0x11; 32]);
        let receive_id = ReceiveId([0x22; 32]);
        let input =
            owner_signature_input(&nonce, OwnerCommand::Ack(&[MessageId(0x0102)]), &receive_id);
        let mut expected = Vec::new();
        expected.extend_from_slice(&[0, 0, 0, 23]);
        expected.extend_from_slice(b"sealpost/v1/relay/owner");
        expected.extend_from_slice(&[0, 0, 0, 32]);
        expected.extend_from_slice(&[0x11; 32]);
        expected.extend_from_slice(&[0, 0, 0, 3]);
        expected.extend_from_slice(b"ACK");
        expected.extend_from_slice(&[0, 0, 0, 32]);
        expected.extend_from_slice(&[0x22; 32]);
        expected.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(input, expected);
    }

    #[test]
    fn ack_of_several_ids_signs_them_all_in_order() {
        let nonce = Nonce([0x11; 32]);
        let receive_id = ReceiveId([0x22; 32]);
        let ids = [MessageId(1), MessageId(0x0203)];
        let input = owner_signature_input(&nonce, OwnerCommand::Ack(&ids), &receive_id);
        let tail = &input[input.len() - 20..];
        assert_eq!(
            tail,
            &[0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 3]
        );
        let swapped = [MessageId(0x0203), MessageId(1)];
        let key = SigningKey::from_bytes(&[7; 32]);
        let signature = sign(&key, &input);
        let other = owner_signature_input(&nonce, OwnerCommand::Ack(&swapped), &receive_id);
        assert!(!verify(&public_key(&key), &other, &signature));
        let fewer = owner_signature_input(&nonce, OwnerCommand::Ack(&ids[..1]), &receive_id);
        assert!(!verify(&public_key(&key), &fewer, &signature));
    }

    #[test]
    fn create_and_sender_session_layouts_are_byte_exact() {
        let input = create_signature_input(&Nonce([1; 32]), &AuthPublicKey([2; 32]));
        assert_eq!(input.len(), 4 + 24 + 4 + 32 + 4 + 32);
        assert_eq!(&input[..4], &[0, 0, 0, 24]);
        assert_eq!(&input[4..28], b"sealpost/v1/relay/create");
        let session = sender_session_signature_input(
            &Nonce([4; 32]),
            &SendId([3; 32]),
            &AuthPublicKey([5; 32]),
        );
        let mut expected = vec![0, 0, 0, 32];
        expected.extend_from_slice(b"sealpost/v3/relay/sender-session");
        for byte in [4u8, 3, 5] {
            expected.extend_from_slice(&[0, 0, 0, 32]);
            expected.extend_from_slice(&[byte; 32]);
        }
        assert_eq!(session, expected);
        assert_eq!(session.len(), 144);
    }

    #[test]
    fn a_sender_session_signature_holds_for_one_connection_mailbox_and_key() {
        let sender = SigningKey::from_bytes(&[7; 32]);
        let key = public_key(&sender);
        let input = sender_session_signature_input(&Nonce([1; 32]), &SendId([2; 32]), &key);
        let signature = sign(&sender, &input);
        assert!(verify(&key, &input, &signature));
        let other_nonce = sender_session_signature_input(&Nonce([9; 32]), &SendId([2; 32]), &key);
        assert!(!verify(&key, &other_nonce, &signature));
        let other_mailbox = sender_session_signature_input(&Nonce([1; 32]), &SendId([8; 32]), &key);
        assert!(!verify(&key, &other_mailbox, &signature));
        let stranger = public_key(&SigningKey::from_bytes(&[6; 32]));
        let other_key =
            sender_session_signature_input(&Nonce([1; 32]), &SendId([2; 32]), &stranger);
        assert!(!verify(&stranger, &other_key, &signature));
    }

    #[test]
    fn sign_verify_and_context_separation() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let nonce = Nonce([9; 32]);
        let receive_id = ReceiveId([5; 32]);
        let input = owner_signature_input(&nonce, OwnerCommand::Subscribe, &receive_id);
        let signature = sign(&key, &input);
        assert!(verify(&public_key(&key), &input, &signature));
        let other = owner_signature_input(&nonce, OwnerCommand::Delete, &receive_id);
        assert!(!verify(&public_key(&key), &other, &signature));
        let other_nonce =
            owner_signature_input(&Nonce([8; 32]), OwnerCommand::Subscribe, &receive_id);
        assert!(!verify(&public_key(&key), &other_nonce, &signature));
    }
}
