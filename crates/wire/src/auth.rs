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
//! * Secured SEND: `lp("sealpost/v1/relay/send") ‖ lp(send_id) ‖ lp(SHA-256(envelope))`.
//!
//! The nonce is the relay's per-connection HELLO challenge, so a CREATE or owner signature made
//! on one connection is refused on any other.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::ids::{AuthPublicKey, MessageId, Nonce, ReceiveId, SendId, SignatureBytes};

/// Context label of the CREATE signature input.
pub const CREATE_CONTEXT: &[u8] = b"sealpost/v1/relay/create";
/// Context label of the owner-command signature input.
pub const OWNER_CONTEXT: &[u8] = b"sealpost/v1/relay/owner";
/// Context label of the secured-SEND signature input.
pub const SEND_CONTEXT: &[u8] = b"sealpost/v1/relay/send";

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

/// The bytes a secured SEND's sender signature covers:
/// `lp(SEND_CONTEXT) ‖ lp(send_id) ‖ lp(SHA-256(envelope))`.
pub fn send_signature_input(send_id: &SendId, envelope: &[u8]) -> Vec<u8> {
    let digest = Sha256::digest(envelope);
    let mut out = Vec::with_capacity(4 + SEND_CONTEXT.len() + 2 * (4 + 32));
    push_field(&mut out, SEND_CONTEXT);
    push_field(&mut out, send_id.as_bytes());
    push_field(&mut out, digest.as_slice());
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
    let signature = Signature::from_bytes(&signature.0);
    verifying_key.verify_strict(input, &signature).is_ok()
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
    fn create_and_send_layouts_are_byte_exact() {
        let input = create_signature_input(&Nonce([1; 32]), &AuthPublicKey([2; 32]));
        assert_eq!(input.len(), 4 + 24 + 4 + 32 + 4 + 32);
        assert_eq!(&input[..4], &[0, 0, 0, 24]);
        assert_eq!(&input[4..28], b"sealpost/v1/relay/create");
        let send = send_signature_input(&SendId([3; 32]), b"abc");
        assert_eq!(&send[..4], &[0, 0, 0, 22]);
        assert_eq!(&send[4..26], b"sealpost/v1/relay/send");
        assert_eq!(&send[26..30], &[0, 0, 0, 32]);
        assert_eq!(&send[62..66], &[0, 0, 0, 32]);
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(&send[66..70], &[0xba, 0x78, 0x16, 0xbf]);
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
