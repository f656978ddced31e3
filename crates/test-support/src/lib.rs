//! Shared harness of Sealpost's integration tests, so that each piece exists once: unique
//! profile names and the keychain clean-up guard ([`profile`]), relays on 127.0.0.1:0 in this
//! process or as child processes ([`relay`], [`process`]), engines on the real OS keychain and the
//! two-client fixture ([`client`]), the three-member group fixture ([`groups`]), files between
//! clients and the waits for their states ([`attachments`]), what a hostile relay does to a
//! mailbox ([`hostile`]), bounded waits ([`wait`]), and what the bench binaries share
//! ([`bench`]).
//!
//! Tests that use the keychain run under `scripts/with-keyring.sh` and fail, never skip, without
//! one. This crate is only ever a dev-dependency (and a dependency of the test package's helper
//! binaries); nothing shipped links it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod attachments;
pub mod bench;
pub mod client;
pub mod groups;
pub mod hostile;
pub mod process;
pub mod profile;
pub mod relay;
pub mod wait;

pub use attachments::{
    bytes_of, chunk_dir, download_if_offered, find_attachment, outgoing, receive_attachment,
    send_file, wait_attachment, wait_attachment_state, wait_group_attachment,
};
pub use client::{
    Client, TwoClients, connect, engine_config, two_clients, two_clients_exchanged,
    two_clients_first_message, two_clients_on_new_relay, two_clients_with,
};
pub use groups::{
    Trio, create_group, group_of, group_of_three, has_text, key_of, knows, member_key,
    remove_member, send_text_as, system_lines, texts, trio, trio_on, wait_for_group, wait_for_text,
    wait_introduced,
};
pub use hostile::{
    PeerMailbox, Route, initial_message, inject, inject_envelope, refused, route, send_as, send_raw,
};
pub use process::{ChildProcess, RelayProcess};
pub use profile::{KeychainCleanup, open_real_vault, open_stopped_store, unique_profile};
pub use relay::TestRelay;
pub use wait::{WAIT, wait_until};
