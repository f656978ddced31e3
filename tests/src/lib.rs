//! End-to-end tests of Sealpost: real clients, relay processes and the OS keychain together.

pub mod hooked_blobs;
pub mod watched_blobs;
