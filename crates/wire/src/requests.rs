//! Ready-made requests for clients: each builds the command with its signature over the right
//! layout (see [`crate::auth`]), so a client never assembles a signature input by hand.

use ed25519_dalek::SigningKey;

use crate::auth::{
    OwnerCommand, create_signature_input, owner_signature_input, public_key,
    sender_session_signature_input, sign,
};
use crate::frame::{ClientFrame, Request};
use crate::ids::{
    AuthPublicKey, BlobDownload, BlobDownloadAuth, BlobDownloadId, BlobUploadAuth, BlobUploadId,
    MessageId, Nonce, ReceiveId, SendId, SendSecret,
};

impl ClientFrame {
    /// A frame of this crate's [`crate::PROTOCOL_VERSION`] with the given correlation id.
    pub fn new(id: u64, body: Request) -> Self {
        Self {
            v: crate::PROTOCOL_VERSION,
            id,
            body,
        }
    }
}

/// CREATE for a fresh mailbox auth key, signed over this connection's nonce.
pub fn create(
    nonce: &Nonce,
    auth: &SigningKey,
    send_secret: SendSecret,
    password: Option<String>,
) -> Request {
    let auth_key = public_key(auth);
    Request::Create {
        auth_key,
        send_secret,
        password,
        signature: sign(auth, &create_signature_input(nonce, &auth_key)),
    }
}

/// SUBSCRIBE, signed by the mailbox auth key over this connection's nonce.
pub fn subscribe(nonce: &Nonce, auth: &SigningKey, receive_id: ReceiveId) -> Request {
    let input = owner_signature_input(nonce, OwnerCommand::Subscribe, &receive_id);
    Request::Subscribe {
        receive_id,
        signature: sign(auth, &input),
    }
}

/// ACK of delivered envelopes of one mailbox, all under one signature: valid on any
/// connection. The caller keeps the list between 1 and [`crate::MAX_ACK_IDS`] ids.
pub fn ack(
    nonce: &Nonce,
    auth: &SigningKey,
    receive_id: ReceiveId,
    message_ids: Vec<MessageId>,
) -> Request {
    let input = owner_signature_input(nonce, OwnerCommand::Ack(&message_ids), &receive_id);
    Request::Ack {
        receive_id,
        message_ids,
        signature: Some(sign(auth, &input)),
    }
}

/// ACK with no signature (protocol version 4): valid only on the connection that currently
/// subscribes `receive_id` (its SUBSCRIBE was answered `Ok` and no `End` came since); anywhere
/// else the relay answers `Auth`. The caller keeps the list between 1 and
/// [`crate::MAX_ACK_IDS`] ids.
pub fn ack_subscribed(receive_id: ReceiveId, message_ids: Vec<MessageId>) -> Request {
    Request::Ack {
        receive_id,
        message_ids,
        signature: None,
    }
}

/// DELETE of the mailbox.
pub fn delete(nonce: &Nonce, auth: &SigningKey, receive_id: ReceiveId) -> Request {
    let input = owner_signature_input(nonce, OwnerCommand::Delete, &receive_id);
    Request::Delete {
        receive_id,
        signature: sign(auth, &input),
    }
}

/// SECURE: bind the mailbox to `sender_key`.
pub fn secure(
    nonce: &Nonce,
    auth: &SigningKey,
    receive_id: ReceiveId,
    sender_key: AuthPublicKey,
) -> Request {
    let input = owner_signature_input(nonce, OwnerCommand::Secure(sender_key), &receive_id);
    Request::Secure {
        receive_id,
        sender_key,
        signature: sign(auth, &input),
    }
}

/// SENDER-SESSION: proves on this connection (its nonce) that the caller holds `sender`, the
/// key the mailbox `send_id` is secured to; later SENDs of this connection to it need no
/// signature.
pub fn sender_session(
    nonce: &Nonce,
    send_id: SendId,
    send_secret: SendSecret,
    sender: &SigningKey,
) -> Request {
    let sender_key = public_key(sender);
    let input = sender_session_signature_input(nonce, &send_id, &sender_key);
    Request::SenderSession {
        send_id,
        send_secret,
        sender_key,
        signature: sign(sender, &input),
    }
}

/// SEND of one envelope. To a secured mailbox, send a [`sender_session`] on the same connection
/// first.
pub fn send(send_id: SendId, send_secret: SendSecret, envelope: Vec<u8>) -> Request {
    Request::Send {
        send_id,
        send_secret,
        envelope,
    }
}

/// BLOB-CREATE: a blob of `chunk_count` chunks with one download id and secret per recipient.
pub fn blob_create(
    upload_id: BlobUploadId,
    upload_auth: BlobUploadAuth,
    chunk_count: u32,
    downloads: Vec<BlobDownload>,
    password: Option<String>,
) -> Request {
    Request::BlobCreate {
        upload_id,
        upload_auth,
        chunk_count,
        downloads,
        password,
    }
}

/// BLOB-PUT of chunk `index`.
pub fn blob_put(
    upload_id: BlobUploadId,
    upload_auth: BlobUploadAuth,
    index: u32,
    chunk: Vec<u8>,
) -> Request {
    Request::BlobPut {
        upload_id,
        upload_auth,
        index,
        chunk,
    }
}

/// BLOB-STATUS of an upload.
pub fn blob_status(upload_id: BlobUploadId, upload_auth: BlobUploadAuth) -> Request {
    Request::BlobStatus {
        upload_id,
        upload_auth,
    }
}

/// BLOB-GET of chunk `index` as one recipient.
pub fn blob_get(
    download_id: BlobDownloadId,
    download_auth: BlobDownloadAuth,
    index: u32,
) -> Request {
    Request::BlobGet {
        download_id,
        download_auth,
        index,
    }
}

/// BLOB-DELETE of a blob.
pub fn blob_delete(upload_id: BlobUploadId, upload_auth: BlobUploadAuth) -> Request {
    Request::BlobDelete {
        upload_id,
        upload_auth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::verify;

    #[test]
    fn built_requests_verify_under_their_layouts() {
        let nonce = Nonce([3; 32]);
        let auth = SigningKey::from_bytes(&[4; 32]);
        let receive_id = ReceiveId([5; 32]);
        let ids = vec![MessageId(9), MessageId(3)];
        let Request::Ack {
            signature: Some(signature),
            ..
        } = ack(&nonce, &auth, receive_id, ids.clone())
        else {
            unreachable!()
        };
        let input = owner_signature_input(&nonce, OwnerCommand::Ack(&ids), &receive_id);
        assert!(verify(&public_key(&auth), &input, &signature));
        let unsigned = ack_subscribed(receive_id, ids.clone());
        assert_eq!(
            unsigned,
            Request::Ack {
                receive_id,
                message_ids: ids,
                signature: None,
            }
        );
        let sender = SigningKey::from_bytes(&[6; 32]);
        let send_id = SendId([7; 32]);
        let request = sender_session(&nonce, send_id, SendSecret::new([8; 32]), &sender);
        let Request::SenderSession {
            sender_key,
            signature,
            ..
        } = request
        else {
            unreachable!()
        };
        assert_eq!(sender_key, public_key(&sender));
        let input = sender_session_signature_input(&nonce, &send_id, &sender_key);
        assert!(verify(&sender_key, &input, &signature));
    }
}
