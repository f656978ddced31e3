//! What the client benches share: a deterministic generator and a store filled with messages.

use sealpost_client::store::{IdentityKeyBytes, NewContact, Store, StoreError, UnixMillis};

/// A small deterministic generator (xorshift64*): the same text on every run.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Fills `store` with `count` outgoing messages whose texts `text` makes, spread over 20 new
/// contacts, one second apart from 2023-11-14, 10,000 a transaction; returns the bytes of text.
pub fn fill_messages(store: &mut Store, count: usize, mut text: impl FnMut() -> String) -> u64 {
    let contacts: Vec<_> = (0..20)
        .map(|n| {
            store
                .insert_contact(&NewContact {
                    display_name: format!("contact {n}"),
                    identity_key: IdentityKeyBytes::new(format!("ik-{n}").into_bytes()),
                    created_at: UnixMillis(1),
                })
                .unwrap()
        })
        .collect();
    let mut text_bytes = 0u64;
    let mut done = 0;
    while done < count {
        let batch = (count - done).min(10_000);
        store
            .transaction(|store| {
                for n in done..done + batch {
                    let body = text();
                    text_bytes += body.len() as u64;
                    let contact = &contacts[n % contacts.len()];
                    let at = UnixMillis(1_700_000_000_000 + (n as i64) * 1000);
                    store.insert_outgoing_message(contact.id, &body, at)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        done += batch;
    }
    text_bytes
}
