//! Frozen vectors for the engine's own byte layouts (`docs/engine.md` § Invites, § Inside a
//! ratchet message, § Groups): the invite text, the stored prekey secrets it is made from, and one
//! [`Content`] of every body kind. Committed in `tests/vectors/`.
//!
//! Each committed value must decode to the value built here and the value built here must encode
//! to exactly the committed bytes, so a layout change fails here and needs a version bump
//! (`INVITE_VERSION`, `CONTENT_VERSION`, the prekey storage version) or a store migration, never
//! a silent change that breaks every existing profile. To add entries after a deliberate change:
//! `SEALPOST_WRITE_VECTORS=1 cargo test -p sealpost-client --test vectors`, then review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sealpost_client::content::{
    AttachmentLocation, AttachmentPointer, Body, CONTENT_VERSION, Content, Receipt,
    ReceiptKindWire, ReplyAddress, SenderKey,
};
use sealpost_client::group::{GroupId, MemberKey, RosterMessage, RosterState};
use sealpost_client::invite::{Invite, InviteRelay};
use sealpost_crypto::{IdentityKeyPair, IdentitySeed, OneTimePrekeyPair, SignedPrekeyPair};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

fn writing() -> bool {
    std::env::var_os("SEALPOST_WRITE_VECTORS").is_some()
}

fn read_json<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let text = std::fs::read_to_string(vector_path(name)).expect("the committed vector file");
    serde_json::from_str(&text).expect("the vector file parses")
}

fn write_json<T: Serialize>(name: &str, value: &T) {
    let json = serde_json::to_string_pretty(value).expect("serialises");
    std::fs::write(vector_path(name), json + "\n").expect("writes the vector file");
}

// ---------------------------------------------------------------------------------------------
// Content

#[derive(Debug, Serialize, Deserialize)]
struct ContentVector {
    name: String,
    /// The CBOR bytes, lowercase hex.
    hex: String,
}

fn contents() -> Vec<(&'static str, Content)> {
    let content = |seq: u64, body: Body, receipts: Vec<Receipt>| Content {
        v: CONTENT_VERSION,
        seq,
        sent_at_ms: 1_764_892_800_123,
        body,
        receipts,
    };
    // A sender key at `url` whose send id and public key repeat one byte each.
    let sender_key = |url: &str, send_id: u8, public_key: u8| SenderKey {
        url: url.to_owned(),
        send_id: vec![send_id; 32],
        public_key: vec![public_key; 32],
    };
    // A blob at the example relay under the grant `grant` repeats, with the same key,
    // commitment and digest.
    let blob_location = |grant: u8| AttachmentLocation::Blob {
        relay_url: "wss://relay.example".to_owned(),
        grant: vec![grant; 64],
        key: vec![0x0B; 32],
        commitment: vec![0x0C; 32],
        digest: vec![0x0D; 32],
    };
    vec![
        (
            "hello",
            content(
                0,
                Body::Hello {
                    display_name: "Alice".to_owned(),
                    reply: vec![ReplyAddress {
                        url: "wss://relay.example".to_owned(),
                        send_id: vec![0x01; 32],
                        send_secret: vec![0x02; 32],
                        sealing_public_key: vec![0x03; 32],
                    }],
                    sender_keys: vec![sender_key("wss://relay.example", 0x04, 0x05)],
                    signed_prekey: vec![0x06; 100],
                },
                Vec::new(),
            ),
        ),
        (
            "welcome",
            content(
                0,
                Body::Welcome {
                    display_name: "ボブ".to_owned(),
                    sender_keys: vec![sender_key("ws://127.0.0.1:47474", 0x07, 0x08)],
                },
                Vec::new(),
            ),
        ),
        (
            "text-with-receipts",
            content(
                7,
                Body::Text {
                    text: "Hello, café 東京\nsecond line".to_owned(),
                },
                vec![
                    Receipt {
                        kind: ReceiptKindWire::Delivered,
                        seq: 5,
                    },
                    Receipt {
                        kind: ReceiptKindWire::Read,
                        seq: 6,
                    },
                ],
            ),
        ),
        (
            "text-max-seq",
            content(
                u64::MAX,
                Body::Text {
                    text: String::new(),
                },
                Vec::new(),
            ),
        ),
        (
            "prekey-update",
            content(
                0,
                Body::PrekeyUpdate {
                    signed_prekey: vec![0x09; 100],
                },
                Vec::new(),
            ),
        ),
        (
            "receipts-only",
            content(
                0,
                Body::ReceiptsOnly,
                vec![Receipt {
                    kind: ReceiptKindWire::Read,
                    seq: 1,
                }],
            ),
        ),
        (
            "restart",
            content(0, Body::Restart { generation: 3 }, Vec::new()),
        ),
        (
            "attachment-blob",
            content(
                8,
                Body::Attachment {
                    pointer: AttachmentPointer {
                        file_name: "報告書 2026.pdf".to_owned(),
                        media_type: "application/pdf".to_owned(),
                        size: 200_000,
                        location: blob_location(0x0A),
                        thumbnail: None,
                        timer_secs: None,
                    },
                },
                Vec::new(),
            ),
        ),
        (
            "attachment-inline-image",
            content(
                9,
                Body::Attachment {
                    pointer: AttachmentPointer {
                        file_name: "cat.png".to_owned(),
                        media_type: "image/png".to_owned(),
                        size: 4,
                        location: AttachmentLocation::Inline {
                            bytes: vec![0x89, b'P', b'N', b'G'],
                        },
                        thumbnail: Some(vec![0xFF, 0xD8, 0xFF, 0xD9]),
                        timer_secs: None,
                    },
                },
                Vec::new(),
            ),
        ),
        (
            "group-text",
            content(
                0,
                Body::GroupText {
                    group_id: GroupId::from_bytes([0x47; 16]),
                    seq: 12,
                    text: "みんな、こんにちは".to_owned(),
                },
                Vec::new(),
            ),
        ),
        (
            "group-roster-state",
            content(0, group_roster_state(), Vec::new()),
        ),
        (
            "group-roster-leave",
            content(
                0,
                Body::GroupRoster {
                    group_id: GroupId::from_bytes([0x47; 16]),
                    change: RosterMessage::Leave { stamp: 9 },
                },
                Vec::new(),
            ),
        ),
        (
            "group-receipts",
            content(
                0,
                Body::GroupReceipts {
                    group_id: GroupId::from_bytes([0x47; 16]),
                    receipts: vec![Receipt {
                        kind: ReceiptKindWire::Delivered,
                        seq: 12,
                    }],
                },
                Vec::new(),
            ),
        ),
        (
            "group-introduction",
            content(
                0,
                Body::GroupIntroduction {
                    group_id: GroupId::from_bytes([0x47; 16]),
                    member: MemberKey::from_bytes([0x4d; 64]),
                    invite: "sealpost:AAAA".to_owned(),
                },
                Vec::new(),
            ),
        ),
        (
            "group-attachment",
            content(
                0,
                Body::GroupAttachment {
                    group_id: GroupId::from_bytes([0x47; 16]),
                    seq: 13,
                    pointer: AttachmentPointer {
                        file_name: "旅行の写真.jpg".to_owned(),
                        media_type: "image/jpeg".to_owned(),
                        size: 300_000,
                        location: blob_location(0x0E),
                        thumbnail: Some(vec![0xFF, 0xD8, 0xFF, 0xD9]),
                        timer_secs: None,
                    },
                },
                Vec::new(),
            ),
        ),
        (
            "timed-text",
            content(
                9,
                Body::TimedText {
                    text: "gone in an hour 東京".to_owned(),
                    timer_secs: 3600,
                },
                vec![Receipt {
                    kind: ReceiptKindWire::Delivered,
                    seq: 8,
                }],
            ),
        ),
        (
            "timer-change",
            content(10, Body::TimerChange { timer_secs: 300 }, Vec::new()),
        ),
        (
            "timer-change-off",
            content(11, Body::TimerChange { timer_secs: 0 }, Vec::new()),
        ),
        (
            "group-timed-text",
            content(
                0,
                Body::GroupTimedText {
                    group_id: GroupId::from_bytes([0x47; 16]),
                    seq: 13,
                    text: "消えるメッセージ".to_owned(),
                    timer_secs: 300,
                },
                Vec::new(),
            ),
        ),
        (
            "group-roster-timer",
            content(0, group_roster_with_timer(), Vec::new()),
        ),
    ]
}

/// The roster of [`group_roster_state`] after the admin set the disappearing timer to a day
/// (the timer register appears only once set, so the roster above keeps its bytes).
fn group_roster_with_timer() -> Body {
    let Body::GroupRoster {
        group_id,
        change: RosterMessage::State(mut state),
    } = group_roster_state()
    else {
        unreachable!("group_roster_state is a roster state")
    };
    state
        .set_timer(
            &MemberKey::from_bytes([0x41; 64]),
            Some(sealpost_client::store::DisappearingTimer::OneDay),
        )
        .expect("admin sets the timer");
    Body::GroupRoster {
        group_id,
        change: RosterMessage::State(state),
    }
}

/// A roster with every presence and role: an admin, a promoted member who left, a removed
/// member, a renamed group.
fn group_roster_state() -> Body {
    let admin = MemberKey::from_bytes([0x41; 64]);
    let promoted = MemberKey::from_bytes([0x42; 64]);
    let removed = MemberKey::from_bytes([0x43; 64]);
    let mut state = RosterState::genesis(admin, "Team 東京", "", &[promoted, removed])
        .expect("a valid genesis");
    state.promote(&admin, &promoted).expect("admin promotes");
    state.remove(&admin, &removed).expect("admin removes");
    state
        .rename(&admin, "Team 東京", "weekly ☕")
        .expect("admin renames");
    state.leave(&promoted).expect("member leaves");
    Body::GroupRoster {
        group_id: GroupId::from_bytes([0x47; 16]),
        change: RosterMessage::State(state),
    }
}

#[test]
fn every_content_kind_round_trips_through_its_frozen_bytes() {
    const FILE: &str = "content.json";
    let built: Vec<ContentVector> = contents()
        .into_iter()
        .map(|(name, content)| ContentVector {
            name: name.to_owned(),
            hex: hex::encode(content.to_bytes().expect("encodes")),
        })
        .collect();
    if writing() {
        write_json(FILE, &built);
    }
    let committed: Vec<ContentVector> = read_json(FILE);
    assert_eq!(
        committed.len(),
        built.len(),
        "a content kind was added or removed"
    );
    for (name, content) in contents() {
        let frozen = committed
            .iter()
            .find(|vector| vector.name == name)
            .unwrap_or_else(|| panic!("content {name} has no committed vector"));
        let bytes = hex::decode(&frozen.hex).expect("hex");
        assert_eq!(
            Content::from_bytes(&bytes).expect("decodes"),
            content,
            "content {name} decodes differently"
        );
        assert_eq!(
            content.to_bytes().expect("encodes"),
            bytes,
            "content {name} no longer encodes to its frozen bytes"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Invite

#[derive(Debug, Serialize, Deserialize)]
struct InviteVector {
    /// The inviter's 32-byte identity seed (test data only).
    identity_seed: String,
    /// `SignedPrekeyPair::to_secret_bytes` (the store's layout for our signed prekeys).
    signed_prekey_secret: String,
    /// `OneTimePrekeyPair::to_secret_bytes` (the store's layout for an invite's one-time prekey).
    one_time_prekey_secret: String,
    /// The invite text (`sealpost:` + base64url of body ‖ signature ‖ checksum).
    text: String,
}

fn invite_from(
    identity: &IdentityKeyPair,
    signed: &SignedPrekeyPair,
    one_time: &OneTimePrekeyPair,
) -> Invite {
    Invite {
        invite_id: [0x5A; 16],
        identity: *identity.public(),
        signed_prekey: *signed.public(),
        one_time_prekey: *one_time.public(),
        expires_at_secs: 1_765_497_600,
        display_name: "Alice ✉".to_owned(),
        relays: vec![
            InviteRelay {
                url: "wss://relay.example:443".to_owned(),
                send_id: [0x21; 32],
                send_secret: [0x22; 32],
                sealing_public_key: [0x23; 32],
            },
            InviteRelay {
                url: "ws://127.0.0.1:47474".to_owned(),
                send_id: [0x31; 32],
                send_secret: [0x32; 32],
                sealing_public_key: [0x33; 32],
            },
        ],
    }
}

fn identity_from(seed_hex: &str) -> IdentityKeyPair {
    let seed: [u8; 32] = hex::decode(seed_hex)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    IdentityKeyPair::from_seed(&IdentitySeed::from_bytes(Zeroizing::new(seed))).expect("identity")
}

#[test]
fn invite_text_and_prekey_storage_layouts_are_frozen() {
    const FILE: &str = "invite.json";
    if writing() {
        let seed = [0x42u8; 32];
        let identity = identity_from(&hex::encode(seed));
        let signed = SignedPrekeyPair::generate(&identity).expect("signed prekey");
        let one_time = OneTimePrekeyPair::generate().expect("one-time prekey");
        let text = invite_from(&identity, &signed, &one_time)
            .sign_to_text(&identity)
            .expect("signs");
        write_json(
            FILE,
            &InviteVector {
                identity_seed: hex::encode(seed),
                signed_prekey_secret: hex::encode(signed.to_secret_bytes().as_slice()),
                one_time_prekey_secret: hex::encode(one_time.to_secret_bytes().as_slice()),
                text,
            },
        );
    }
    let vector: InviteVector = read_json(FILE);
    let identity = identity_from(&vector.identity_seed);

    // The stored prekey secrets decode and re-encode byte for byte.
    let signed_bytes = hex::decode(&vector.signed_prekey_secret).expect("hex");
    let signed = SignedPrekeyPair::from_secret_bytes(&signed_bytes).expect("signed prekey decodes");
    assert_eq!(signed.to_secret_bytes().as_slice(), signed_bytes.as_slice());
    let one_time_bytes = hex::decode(&vector.one_time_prekey_secret).expect("hex");
    let one_time =
        OneTimePrekeyPair::from_secret_bytes(&one_time_bytes).expect("one-time prekey decodes");
    assert_eq!(
        one_time.to_secret_bytes().as_slice(),
        one_time_bytes.as_slice()
    );

    // Ed25519 signatures are deterministic (RFC 8032), so the same fields give the same text.
    let expected = invite_from(&identity, &signed, &one_time);
    assert_eq!(
        expected.sign_to_text(&identity).expect("signs"),
        vector.text,
        "the invite no longer encodes to its frozen text"
    );
    let parsed = Invite::parse(&vector.text).expect("the frozen invite parses and verifies");
    assert_eq!(parsed.invite_id, expected.invite_id);
    assert_eq!(parsed.identity, expected.identity);
    assert_eq!(parsed.signed_prekey, expected.signed_prekey);
    assert_eq!(parsed.one_time_prekey, expected.one_time_prekey);
    assert_eq!(parsed.expires_at_secs, expected.expires_at_secs);
    assert_eq!(parsed.display_name, expected.display_name);
    assert!(
        parsed.relays == expected.relays,
        "relays decode differently"
    );
}
