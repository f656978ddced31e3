//! What the store's integration tests share: a contact, and a received envelope to commit.

use sealpost_client::Store;
use sealpost_client::store::{
    Contact, EnvelopeId, IdentityKeyBytes, NewContact, Received, ReceivedContent,
    SessionStateBytes, UnixMillis,
};

/// Adds the contact `name` (its identity key made from the name).
pub fn add_contact(store: &mut Store, name: &str) -> Contact {
    store
        .insert_contact(&NewContact {
            display_name: name.to_owned(),
            identity_key: IdentityKeyBytes::new(format!("ik-of-{name}").into_bytes()),
            created_at: UnixMillis(1),
        })
        .unwrap()
}

/// A fresh envelope from `contact` carrying `content`, stored at `at` ms.
pub fn received(contact: &Contact, content: ReceivedContent, at: i64) -> Received {
    Received {
        contact: contact.id,
        envelope_id: EnvelopeId::random().unwrap(),
        session_state: SessionStateBytes::new(b"state".to_vec()),
        content,
        received_at: UnixMillis(at),
    }
}
