//! The async engine: commands in, events out (`docs/engine.md`, `ui/CONTRACT.md`).
//!
//! [`Engine::open`] opens a profile (keychain vault + SQLCipher store), starts one
//! [`Subscriber`](sealpost_relay_client::Subscriber) per relay that holds our mailboxes and the
//! outbox task, and returns the engine with the receiver of [`EngineEvent`]s. Each UI command is
//! one async method returning a serde view type; every error is one [`EngineError`] whose
//! [`EngineError::kind`] is the contract's error kind.
//!
//! The store is one SQLCipher connection behind a mutex; store calls are short, synchronous,
//! never held across an `.await`, and run on tokio's blocking pool, never on a runtime worker
//! (`docs/engine.md` § Threads).
//!
//! # Modules, in layers
//!
//! One file per concern. A module uses only modules of a lower layer or earlier in its own layer
//! (imports and the `Inner`/`Engine` methods it calls alike), so there is no cycle
//! (`docs/engine.md` § Module map):
//!
//! 1. [`error`], [`sequence`], [`views`], `receive_step`: no engine module but `sequence`.
//! 2. `state`: the shared state ([`Engine`], `Inner`), the blocking pool, small helpers.
//! 3. `settings`, `seal`, `envelope`: stored settings; sealing for a contact; refusing and
//!    answering initial messages.
//! 4. `receipts`, `prekeys`, `secure`: receipts we send; our signed prekey; SECURE.
//! 5. `restart`, `first_contact`: session restart; Hello, invite misuse, key change.
//! 6. `receive_run`, then `inbound`: the receive batch.
//! 7. `mailboxes`: CREATE, subscribe (starts `inbound`), DELETE.
//! 8. `conversations`, `invites`, `contacts`, `outbox`, `profile`: the commands; `groups`:
//!    group commands and the group bodies' receive path (called from `receive_run`, whose
//!    follow-ups run after the run's commit).
//!    `attachments`: files and images (send, transfer task, download, save, preview).
//! 9. `backup`: exporting a backup; restarting every session of a restored profile.
//! 10. `lifecycle`: open, resume, shutdown.
//!
//! `search` (the `search_messages` command and the search backlog pass) uses only layer 2.
//! `disappearing` (the `set_chat_timer` command, the body a stored message is sent as, the
//! expiry task) sits in layer 8 before `outbox`, which sends with it.

mod attachments;
mod backup;
mod contacts;
mod conversations;
mod disappearing;
mod envelope;
pub mod error;
mod first_contact;
mod groups;
mod inbound;
mod invites;
mod lifecycle;
mod mailboxes;
mod outbox;
mod prekeys;
mod profile;
mod receipts;
mod receive_run;
mod receive_step;
mod restart;
mod seal;
pub mod search;
mod secure;
pub mod sequence;
mod settings;
mod state;
pub mod views;

#[cfg(test)]
mod tests;

pub use attachments::MAX_SEND_BYTES;
pub use disappearing::MAX_EXPIRY_WAIT;
pub use error::EngineError;
pub use invites::INVITE_LIFETIME;
pub use lifecycle::{EngineConfig, SEEN_ENVELOPE_RETENTION};
pub use prekeys::{RETIRED_SIGNED_PREKEY_GRACE, SIGNED_PREKEY_LIFETIME};
pub use state::Engine;
pub use views::*;
