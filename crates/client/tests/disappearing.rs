//! Disappearing messages in the real encrypted store (`docs/engine.md` § Disappearing
//! messages): an expired message leaves the messages, the search index, the main database file
//! and the WAL, down to the bytes someone holding the database key could decrypt; the chat
//! timer converges whatever order the changes arrive in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aes::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::NoPadding};
use sealpost_client::scan::{Needle, scan_bytes, scan_dir_for_needles};
use sealpost_client::store::{
    ConversationSeq, DisappearingTimer, EnvelopeId, OutgoingContent, ReceiveOutcome,
    ReceivedContent, SearchQuery, UnixMillis,
};
use sealpost_client::{DatabaseKey, Store};

use common::{add_contact, received};

const HOUR_MS: i64 = 3_600_000;

/// A word no other test data contains.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        hex::encode(EnvelopeId::random().unwrap().as_bytes())
    )
}

fn unread(store: &Store) -> u32 {
    store.chat_list().unwrap()[0].unread_count
}

fn found(store: &Store, word: &str) -> usize {
    store
        .search_messages(&SearchQuery::parse(word), None, 50)
        .unwrap()
        .hits
        .len()
}

// SQLCipher 4 page layout with a raw key (`docs/threat-model.md` § A thief of the user's data
// directory): the key is the AES-256 key itself; the first 16 bytes of the main file are the
// salt; each 4096-byte page ends in 80 reserved bytes (a 16-byte IV, then the HMAC); the bytes
// before them are AES-256-CBC without padding (page 1 from byte 16).
const PAGE: usize = 4096;
const RESERVE: usize = 80;
const WAL_HEADER: usize = 32;
const WAL_FRAME_HEADER: usize = 24;

fn decrypt_page(key: &[u8; 32], page_number: u32, page: &[u8]) -> Vec<u8> {
    let offset = if page_number == 1 { 16 } else { 0 };
    let mut data = page[offset..PAGE - RESERVE].to_vec();
    let iv: [u8; 16] = page[PAGE - RESERVE..PAGE - RESERVE + 16]
        .try_into()
        .unwrap();
    cbc::Decryptor::<aes::Aes256>::new(key.into(), &iv.into())
        .decrypt_padded::<NoPadding>(&mut data)
        .unwrap();
    data
}

/// Every page of the main database file and every frame of its WAL, decrypted with the key:
/// live rows, freed space inside pages, free pages and old page versions alike.
fn decrypted_pages(path: &std::path::Path, key: &DatabaseKey) -> (Vec<u8>, Vec<u8>) {
    let key: [u8; 32] = key.expose_secret().as_slice().try_into().unwrap();
    let main = std::fs::read(path).unwrap();
    assert_eq!(main.len() % PAGE, 0, "whole pages");
    let mut plain_main = Vec::new();
    for (index, page) in main.chunks(PAGE).enumerate() {
        plain_main.extend(decrypt_page(&key, u32::try_from(index + 1).unwrap(), page));
    }
    let mut plain_wal = Vec::new();
    let wal_path = path.with_file_name(format!(
        "{}-wal",
        path.file_name().unwrap().to_string_lossy()
    ));
    if let Ok(wal) = std::fs::read(wal_path) {
        let frames = wal.get(WAL_HEADER..).unwrap_or_default();
        for frame in frames.chunks(WAL_FRAME_HEADER + PAGE) {
            if frame.len() < WAL_FRAME_HEADER + PAGE {
                break;
            }
            let page_number = u32::from_be_bytes(frame[..4].try_into().unwrap());
            plain_wal.extend(decrypt_page(&key, page_number, &frame[WAL_FRAME_HEADER..]));
        }
    }
    (plain_main, plain_wal)
}

#[test]
fn an_expired_message_is_gone_from_the_index_the_database_and_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disappearing.db");
    let key = DatabaseKey::generate().unwrap();
    let mut store = Store::open(&path, &key).unwrap();
    let alice = add_contact(&mut store, "Alice");
    let (sent_word, received_word, kept_word) =
        (unique("zqsent"), unique("zqrecv"), unique("zqkept"));

    let t0 = 1_800_000_000_000;
    let sent = store
        .insert_outgoing_content(
            alice.id,
            OutgoingContent::Text {
                body: &format!("a timed {sent_word} text"),
                timer: Some(DisappearingTimer::OneHour),
            },
            UnixMillis(t0),
        )
        .unwrap();
    assert_eq!(sent.expires_at, Some(UnixMillis(t0 + HOUR_MS)));
    let outcome = store
        .commit_received(&received(
            &alice,
            ReceivedContent::TimedMessage {
                seq: ConversationSeq::new(2).unwrap(),
                body: format!("the {received_word} answer"),
                sent_at: UnixMillis(t0),
                timer: DisappearingTimer::FiveMinutes,
                receipts: Vec::new(),
            },
            t0 + 1000,
        ))
        .unwrap();
    let ReceiveOutcome::Stored(incoming) = outcome else {
        panic!("stored: {outcome:?}")
    };
    assert_eq!(incoming.timer, Some(DisappearingTimer::FiveMinutes));
    assert_eq!(incoming.expires_at, Some(UnixMillis(t0 + 1000 + 300_000)));
    store
        .insert_outgoing_message(alice.id, &format!("an untimed {kept_word}"), UnixMillis(t0))
        .unwrap();
    assert_eq!(found(&store, &sent_word), 1);
    assert_eq!(found(&store, &received_word), 1);
    assert_eq!(unread(&store), 1);

    // Before its time nothing goes; at its time the received one goes; then the sent one.
    assert!(
        store
            .delete_expired(UnixMillis(t0 + 1000))
            .unwrap()
            .is_empty()
    );
    let gone = store.delete_expired(UnixMillis(t0 + 301_000)).unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].id, incoming.id);
    assert_eq!(unread(&store), 0);
    let gone = store.delete_expired(UnixMillis(t0 + 2 * HOUR_MS)).unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].id, sent.id);
    assert!(store.message(sent.id).unwrap().is_none());
    assert!(store.message(incoming.id).unwrap().is_none());
    assert_eq!(found(&store, &sent_word), 0, "search no longer finds it");
    assert_eq!(found(&store, &received_word), 0);
    assert_eq!(found(&store, &kept_word), 1);
    assert_eq!(store.next_expiry().unwrap(), None);

    // The WAL was checkpointed and truncated: the files on disk now, with the store still open.
    let needles = [
        Needle::new("expired sent text", sent_word.as_bytes().to_vec()),
        Needle::new("expired received text", received_word.as_bytes().to_vec()),
    ];
    let (main, wal) = decrypted_pages(&path, &key);
    let findings = [
        scan_bytes(&path, &main, &needles),
        scan_bytes(&path.with_extension("db-wal"), &wal, &needles),
    ]
    .concat();
    assert!(
        findings.is_empty(),
        "expired text readable with the key: {findings:#?}"
    );
    // The decryption is right: the message that did not expire is there.
    assert!(
        !scan_bytes(
            &path,
            &main,
            &[Needle::new("kept", kept_word.as_bytes().to_vec())]
        )
        .is_empty()
    );

    store.close().unwrap();
    let (main, wal) = decrypted_pages(&path, &key);
    assert!(scan_bytes(&path, &main, &needles).is_empty());
    assert!(scan_bytes(&path, &wal, &needles).is_empty());
    // And the data-at-rest scan of the encrypted files finds none of it either.
    assert!(scan_dir_for_needles(dir.path(), &needles).is_empty());
}

#[test]
fn concurrent_timer_changes_converge_on_both_sides() {
    // Alice sets one day and Bob one hour at the same time: both changes carry seq 3 (each
    // side's next number). Each side applies its own at once and the other's on arrival; the
    // tie goes to the shorter timer on both, so both end on one hour (applying whatever arrives
    // last would leave Alice on one hour and Bob on one day).
    let side = |own: DisappearingTimer, theirs: DisappearingTimer| {
        let dir = tempfile::tempdir().unwrap();
        let key = DatabaseKey::generate().unwrap();
        let mut store = Store::open(&dir.path().join("t.db"), &key).unwrap();
        let peer = add_contact(&mut store, "Peer");
        store
            .insert_outgoing_message(peer.id, "one", UnixMillis(1))
            .unwrap();
        store
            .insert_outgoing_message(peer.id, "two", UnixMillis(2))
            .unwrap();
        let line = store
            .insert_outgoing_content(
                peer.id,
                OutgoingContent::TimerChange(Some(own)),
                UnixMillis(3),
            )
            .unwrap();
        assert_eq!(line.seq.get(), 3);
        assert_eq!(store.chat_timer(peer.id).unwrap().timer, Some(own));
        store
            .commit_received(&received(
                &peer,
                ReceivedContent::TimerChange {
                    seq: ConversationSeq::new(3).unwrap(),
                    timer: Some(theirs),
                    sent_at: UnixMillis(3),
                },
                4,
            ))
            .unwrap();
        store.chat_timer(peer.id).unwrap()
    };
    let alice = side(DisappearingTimer::OneDay, DisappearingTimer::OneHour);
    let bob = side(DisappearingTimer::OneHour, DisappearingTimer::OneDay);
    assert_eq!(alice, bob, "both sides agree");
    assert_eq!(alice.timer, Some(DisappearingTimer::OneHour));
}

#[test]
fn our_own_change_applies_at_once_and_a_later_one_from_the_peer_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = DatabaseKey::generate().unwrap();
    let mut store = Store::open(&dir.path().join("t.db"), &key).unwrap();
    let peer = add_contact(&mut store, "Peer");
    let line = store
        .insert_outgoing_content(
            peer.id,
            OutgoingContent::TimerChange(Some(DisappearingTimer::OneWeek)),
            UnixMillis(5),
        )
        .unwrap();
    assert_eq!(line.timer_change, Some(Some(DisappearingTimer::OneWeek)));
    assert_eq!(line.body, "");
    let timer = store.chat_timer(peer.id).unwrap();
    assert_eq!(timer.timer, Some(DisappearingTimer::OneWeek));
    store
        .commit_received(&received(
            &peer,
            ReceivedContent::TimerChange {
                seq: ConversationSeq::new(line.seq.get() + 1).unwrap(),
                timer: None,
                sent_at: UnixMillis(6),
            },
            7,
        ))
        .unwrap();
    assert_eq!(store.chat_timer(peer.id).unwrap().timer, None, "turned off");
    assert_eq!(unread(&store), 0);
    let page = store.messages_page(peer.id, None, 10).unwrap();
    let lines: Vec<_> = page.iter().map(|m| m.timer_change).collect();
    assert_eq!(lines, [Some(Some(DisappearingTimer::OneWeek)), Some(None)]);
}
