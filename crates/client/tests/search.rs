//! Message search (`docs/engine.md` § Search) through the real encrypted store: Japanese and
//! Chinese, folded diacritics, words inside URLs and after apostrophes, deletion from the index
//! (down to the bytes of the database), paging, and queries that are only data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use proptest::prelude::*;
use sealpost_client::group::{GroupId, GroupReplica, MemberKey, RosterState};
use sealpost_client::scan::{Needle, export_decrypted_copy, scan_dir_for_needles};
use sealpost_client::store::{
    AttachmentId, AttachmentRow, AttachmentState, Contact, ConversationSeq, Direction,
    DisappearingTimer, EnvelopeId, IncomingAttachment, ReceiveOutcome, ReceivedContent,
    SearchFound, SearchPage, SearchQuery, UnixMillis,
};
use sealpost_client::{DatabaseKey, Store};

use common::{add_contact, received};

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    key: DatabaseKey,
    store: Store,
    contact: Contact,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search.db");
    let key = DatabaseKey::generate().unwrap();
    let mut store = Store::open(&path, &key).unwrap();
    let contact = add_contact(&mut store, "Alice");
    Fixture {
        _dir: dir,
        path,
        key,
        store,
        contact,
    }
}

/// A decrypted copy of the database at `path`, alone in a new temporary directory (for scanning
/// its bytes for words that must be gone).
fn decrypted_copy(path: &std::path::Path, key: &DatabaseKey) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    export_decrypted_copy(path, key, &dir.path().join("decrypted.db")).unwrap();
    dir
}

fn send(store: &mut Store, contact: &Contact, body: &str, at: i64) {
    store
        .insert_outgoing_message(contact.id, body, UnixMillis(at))
        .unwrap();
}

fn receive(store: &mut Store, contact: &Contact, seq: u64, body: &str, at: i64) {
    let outcome = store
        .commit_received(&received(
            contact,
            ReceivedContent::Message {
                seq: ConversationSeq::new(seq).unwrap(),
                body: body.to_owned(),
                sent_at: UnixMillis(at),
            },
            at,
        ))
        .unwrap();
    assert!(matches!(outcome, ReceiveOutcome::Stored(_)));
}

fn search(store: &Store, query: &str) -> SearchPage {
    store
        .search_messages(&SearchQuery::parse(query), None, 50)
        .unwrap()
}

/// The texts of the hits, newest first.
fn found(store: &Store, query: &str) -> Vec<String> {
    search(store, query)
        .hits
        .iter()
        .map(|hit| match hit.found {
            SearchFound::Message { message, .. } => store.message(message).unwrap().unwrap().body,
            ref other => panic!("not a 1:1 message: {other:?}"),
        })
        .collect()
}

/// The matched pieces of the hit's whole text, cut out by its UTF-16 ranges.
fn highlighted(body: &str, page: &SearchPage) -> Vec<String> {
    let units: Vec<u16> = body.encode_utf16().collect();
    page.hits[0]
        .matches
        .iter()
        .map(|range| String::from_utf16(&units[range.start as usize..range.end as usize]).unwrap())
        .collect()
}

#[test]
fn japanese_and_chinese_words_and_single_characters_are_found() {
    let mut f = fixture();
    send(&mut f.store, &f.contact, "明日は東京都に行きます", 10);
    send(&mut f.store, &f.contact, "我住在北京", 20);
    send(&mut f.store, &f.contact, "京都の寺", 30);

    assert_eq!(found(&f.store, "東京"), ["明日は東京都に行きます"]);
    assert_eq!(found(&f.store, "北京"), ["我住在北京"]);
    assert_eq!(
        found(&f.store, "京"),
        ["京都の寺", "我住在北京", "明日は東京都に行きます"]
    );
    assert!(
        found(&f.store, "東都").is_empty(),
        "characters must be consecutive"
    );
    let page = search(&f.store, "東京");
    assert_eq!(highlighted("明日は東京都に行きます", &page), ["東京"]);
}

#[test]
fn diacritics_and_case_fold_both_ways() {
    let mut f = fixture();
    send(&mut f.store, &f.contact, "Un CAFÉ noir", 10);
    send(&mut f.store, &f.contact, "the cafe is closed", 20);
    assert_eq!(
        found(&f.store, "cafe"),
        ["the cafe is closed", "Un CAFÉ noir"]
    );
    assert_eq!(
        found(&f.store, "Café"),
        ["the cafe is closed", "Un CAFÉ noir"]
    );
    let page = search(&f.store, "cafe");
    assert_eq!(highlighted("the cafe is closed", &page), ["cafe"]);
}

#[test]
fn words_inside_urls_are_found() {
    let mut f = fixture();
    send(
        &mut f.store,
        &f.contact,
        "look: https://example.org/recettes/tarte_aux-pommes?lang=fr#etape2",
        10,
    );
    for word in ["example", "recettes", "pommes", "aux", "lang", "etape2"] {
        assert_eq!(found(&f.store, word).len(), 1, "{word}");
    }
}

#[test]
fn a_word_after_an_apostrophe_is_found() {
    let mut f = fixture();
    send(&mut f.store, &f.contact, "Regarde l'arbre et l’oiseau", 10);
    assert_eq!(found(&f.store, "arbre").len(), 1);
    assert_eq!(found(&f.store, "oiseau").len(), 1, "typographic apostrophe");
}

#[test]
fn incoming_and_outgoing_messages_are_found_newest_first_in_pages() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "Bob");
    for n in 1..=5 {
        receive(
            &mut f.store,
            &bob,
            n,
            &format!("apple number {n}"),
            100 * n as i64,
        );
        send(
            &mut f.store,
            &f.contact,
            &format!("apple reply {n}"),
            100 * n as i64 + 50,
        );
    }
    let query = SearchQuery::parse("apple");
    let first = f.store.search_messages(&query, None, 4).unwrap();
    assert_eq!(first.hits.len(), 4);
    let contact_of = |index: usize| match first.hits[index].found {
        SearchFound::Message { contact, .. } => contact,
        ref other => panic!("not a 1:1 message: {other:?}"),
    };
    assert_eq!(contact_of(0), f.contact.id);
    assert_eq!(contact_of(1), bob.id);
    let times: Vec<i64> = first.hits.iter().map(|hit| hit.at.0).collect();
    assert_eq!(times, [550, 500, 450, 400]);
    let second = f.store.search_messages(&query, first.next, 4).unwrap();
    let third = f.store.search_messages(&query, second.next, 4).unwrap();
    let times: Vec<i64> = second
        .hits
        .iter()
        .chain(&third.hits)
        .map(|hit| hit.at.0)
        .collect();
    assert_eq!(times, [350, 300, 250, 200, 150, 100]);
    assert_eq!(third.next, None, "the last page says so");
}

#[test]
fn many_messages_in_the_same_millisecond_are_all_found() {
    let mut f = fixture();
    for n in 0..30 {
        send(&mut f.store, &f.contact, &format!("same time {n}"), 7);
    }
    let query = SearchQuery::parse("same");
    let mut seen = 0;
    let mut before = None;
    loop {
        let page = f.store.search_messages(&query, before, 7).unwrap();
        seen += page.hits.len();
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, 30);
}

#[test]
fn snippets_are_the_text_around_the_match_and_never_markup() {
    let mut f = fixture();
    let long = format!(
        "{} <img src=x onerror=alert(1)> needle {}",
        "a ".repeat(100),
        "b ".repeat(100)
    );
    send(&mut f.store, &f.contact, &long, 10);
    let page = search(&f.store, "needle");
    let snippet = &page.hits[0].snippet;
    assert!(snippet.cut_before && snippet.cut_after);
    assert!(snippet.text.contains("<img src=x onerror=alert(1)> needle"));
    let units: Vec<u16> = snippet.text.encode_utf16().collect();
    let range = snippet.matches[0];
    assert_eq!(
        String::from_utf16(&units[range.start as usize..range.end as usize]).unwrap(),
        "needle"
    );
    assert!(snippet.text.chars().count() <= 160);
}

#[test]
fn deleting_a_contact_removes_its_messages_from_the_index_and_the_file() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "Bob");
    let gone_word = format!(
        "zqgone{}",
        hex::encode(EnvelopeId::random().unwrap().as_bytes())
    );
    let kept_word = format!(
        "zqkept{}",
        hex::encode(EnvelopeId::random().unwrap().as_bytes())
    );
    send(&mut f.store, &bob, &format!("the {gone_word} text"), 10);
    receive(&mut f.store, &bob, 5, &format!("again {gone_word}"), 20);
    send(
        &mut f.store,
        &f.contact,
        &format!("the {kept_word} text"),
        30,
    );
    assert_eq!(found(&f.store, &gone_word).len(), 2);

    f.store.delete_contact(bob.id, UnixMillis(40)).unwrap();
    assert!(found(&f.store, &gone_word).is_empty());
    assert_eq!(found(&f.store, &kept_word).len(), 1);
    f.store.close().unwrap();

    let plain_dir = decrypted_copy(&f.path, &f.key);
    let findings = scan_dir_for_needles(
        plain_dir.path(),
        &[Needle::new("deleted word", gone_word.as_bytes().to_vec())],
    );
    assert!(
        findings.is_empty(),
        "deleted text still stored: {findings:#?}"
    );
    // The scan does see the index: the kept word is in the FTS tables as well as the message.
    let kept = scan_dir_for_needles(
        plain_dir.path(),
        &[Needle::new("kept word", kept_word.as_bytes().to_vec())],
    );
    assert!(!kept.is_empty());
}

/// Inputs that would be FTS5 syntax errors (or worse) if passed through.
const NASTY: &[&str] = &[
    "",
    " ",
    "\"",
    "\"\"",
    "'",
    "*",
    "a*",
    "*a",
    "NEAR(",
    "NEAR(a b, 2)",
    "NEAR(\"x\"",
    "a NEAR/2 b",
    "AND",
    "OR",
    "NOT",
    "a AND",
    "NOT a",
    "body:x",
    "{body}: x",
    "-body:x",
    "^start",
    "a + b",
    "(((",
    ")))",
    "\\",
    "\0",
    "x\0y",
    "\u{301}",
    "é\u{301}",
    "💥",
    "東",
    "'; DROP TABLE messages; --",
    "%_",
    "\u{FEFF}\u{200B}\u{202E}",
    "rank:1",
    "rowid",
    "message_search",
];

#[test]
fn nasty_queries_never_raise_an_error() {
    let mut f = fixture();
    send(
        &mut f.store,
        &f.contact,
        "a b body x NEAR AND rank 東 é",
        10,
    );
    for query in NASTY {
        let page = f
            .store
            .search_messages(&SearchQuery::parse(query), None, 10);
        assert!(page.is_ok(), "{query:?}: {page:?}");
    }
    let junk: String = (0..10 * 1024)
        .map(|n| ['"', '*', '(', ')', 'N', 'E', 'A', 'R', ':', ' ', '東', '^'][n % 12])
        .collect();
    f.store
        .search_messages(&SearchQuery::parse(&junk), None, 10)
        .unwrap();
    assert_eq!(found(&f.store, "near(").len(), 1, "NEAR is only a word");
    assert_eq!(
        found(&f.store, "body:x").len(),
        1,
        "a column filter is only words"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn any_query_text_is_data(query in any::<String>(), extra in "[\"*():^ NEARANDOT\\-+{}]{0,40}") {
        let mut f = fixture();
        send(&mut f.store, &f.contact, "some text to find NEAR here", 10);
        let text = format!("{query}{extra}");
        let result = f.store.search_messages(&SearchQuery::parse(&text), None, 10);
        prop_assert!(result.is_ok(), "{:?}: {:?}", text, result);
    }
}

fn me() -> MemberKey {
    MemberKey::from_bytes([1; 64])
}

fn member() -> MemberKey {
    MemberKey::from_bytes([2; 64])
}

fn make_group(store: &mut Store, name: &str, at: i64) -> (GroupId, GroupReplica) {
    let state = RosterState::genesis(me(), name, "", &[member()]).unwrap();
    let replica = GroupReplica::new(state);
    let id = GroupId::generate().unwrap();
    store.insert_group(id, &replica, UnixMillis(at)).unwrap();
    (id, replica)
}

/// A random word no other text holds (for the byte scans).
fn unique_word(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        hex::encode(EnvelopeId::random().unwrap().as_bytes())
    )
}

#[test]
fn group_texts_and_group_names_are_found_with_their_group() {
    let mut f = fixture();
    let (group, _) = make_group(&mut f.store, "Voyage à 東京", 5);
    f.store
        .store_incoming_group_text(
            group,
            member(),
            1,
            "Rendez-vous au CAFÉ: https://example.com/arbre",
            UnixMillis(9),
            UnixMillis(10),
        )
        .unwrap()
        .unwrap();
    f.store
        .insert_outgoing_group_text(group, me(), "j'aime l'arbre", &[member()], UnixMillis(20))
        .unwrap();
    send(&mut f.store, &f.contact, "un arbre aussi", 30);

    let cafe = search(&f.store, "cafe");
    assert_eq!(cafe.hits.len(), 1);
    assert_eq!(
        cafe.hits[0].found,
        SearchFound::GroupMessage {
            message: match cafe.hits[0].found {
                SearchFound::GroupMessage { message, .. } => message,
                ref other => panic!("not a group message: {other:?}"),
            },
            group,
            author: member(),
            direction: Direction::Incoming,
            seq: 1,
        }
    );
    assert_eq!(
        cafe.hits[0].at,
        UnixMillis(10),
        "our clock, not the sender's"
    );
    assert_eq!(
        highlighted("Rendez-vous au CAFÉ: https://example.com/arbre", &cafe),
        ["CAFÉ"]
    );

    let trees = search(&f.store, "arbre");
    let kinds: Vec<(bool, i64)> = trees
        .hits
        .iter()
        .map(|hit| {
            (
                matches!(hit.found, SearchFound::GroupMessage { .. }),
                hit.at.0,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [(false, 30), (true, 20), (true, 10)],
        "1:1 and group texts in one newest-first list; the URL's word and l'arbre count"
    );

    for query in ["東京", "京", "voyage", "VOYAGE A"] {
        let page = search(&f.store, query);
        assert_eq!(page.hits.len(), 1, "{query}");
        assert_eq!(
            page.hits[0].found,
            SearchFound::GroupName { group },
            "{query}"
        );
        assert_eq!(page.hits[0].at, UnixMillis(5));
        assert_eq!(page.hits[0].snippet.text, "Voyage à 東京");
    }
}

#[test]
fn a_renamed_group_is_found_by_its_new_name_only() {
    let mut f = fixture();
    let (group, mut replica) = make_group(&mut f.store, "Old orchard", 5);
    replica.state.rename(&me(), "New garden", "").unwrap();
    f.store
        .save_group_replica(group, &replica, UnixMillis(50))
        .unwrap();
    assert!(search(&f.store, "orchard").hits.is_empty());
    let page = search(&f.store, "garden");
    assert_eq!(page.hits.len(), 1);
    assert_eq!(page.hits[0].found, SearchFound::GroupName { group });
    assert_eq!(page.hits[0].at, UnixMillis(50), "renamed here at 50");
}

#[test]
fn deleting_a_group_removes_its_name_and_texts_from_the_index_and_the_file() {
    let mut f = fixture();
    let name_word = unique_word("zqname");
    let text_word = unique_word("zqtext");
    let (group, _) = make_group(&mut f.store, &format!("the {name_word} group"), 5);
    f.store
        .store_incoming_group_text(
            group,
            member(),
            1,
            &format!("a {text_word} here"),
            UnixMillis(9),
            UnixMillis(10),
        )
        .unwrap();
    f.store
        .insert_outgoing_group_text(
            group,
            me(),
            &format!("{text_word}!"),
            &[member()],
            UnixMillis(20),
        )
        .unwrap();
    assert_eq!(search(&f.store, &name_word).hits.len(), 1);
    assert_eq!(search(&f.store, &text_word).hits.len(), 2);

    f.store.delete_group(group).unwrap();
    assert!(search(&f.store, &name_word).hits.is_empty());
    assert!(search(&f.store, &text_word).hits.is_empty());
    f.store.checkpoint_truncate().unwrap();
    f.store.close().unwrap();

    let plain_dir = decrypted_copy(&f.path, &f.key);
    let findings = scan_dir_for_needles(
        plain_dir.path(),
        &[
            Needle::new("group name", name_word.as_bytes().to_vec()),
            Needle::new("group text", text_word.as_bytes().to_vec()),
        ],
    );
    assert!(
        findings.is_empty(),
        "deleted group words still in the file: {findings:?}"
    );
}

fn offered_file(name: &str) -> AttachmentRow {
    AttachmentRow {
        file_name: name.to_owned(),
        media_type: "application/pdf".to_owned(),
        size: 1234,
        chunks: 1,
        created_at: UnixMillis(10),
        ..AttachmentRow::blank(
            AttachmentId::generate().unwrap(),
            Direction::Incoming,
            sealpost_client::store::AttachmentChat::Contact(
                sealpost_client::store::ContactId::from_bytes([0; 16]),
            ),
            AttachmentState::Offered,
        )
    }
}

#[test]
fn a_file_name_is_found_and_leaves_the_index_when_its_message_expires() {
    let mut f = fixture();
    let name = "Rapport-été_2026 東京.pdf";
    for (seq, timer) in [(1, Some(DisappearingTimer::FiveMinutes)), (2, None)] {
        f.store
            .commit_received(&received(
                &f.contact,
                ReceivedContent::Attachment {
                    seq: ConversationSeq::new(seq).unwrap(),
                    body: format!("{seq}-{name}"),
                    sent_at: UnixMillis(10),
                    attachment: IncomingAttachment(Box::new(offered_file(name))),
                    timer,
                },
                10 * seq as i64,
            ))
            .unwrap();
    }
    for query in ["rapport ete", "東京", "2026", "pdf"] {
        assert_eq!(search(&f.store, query).hits.len(), 2, "{query}");
    }
    let expired = f.store.delete_expired(UnixMillis(10 + 300_000)).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(found(&f.store, "rapport"), [format!("2-{name}")]);
}

#[test]
fn an_expired_group_text_leaves_the_index_and_the_file() {
    let mut f = fixture();
    let gone = unique_word("zqgroupgone");
    let (group, _) = make_group(&mut f.store, "Timed", 5);
    f.store
        .store_incoming_timed_group_text(
            group,
            member(),
            1,
            &format!("incoming {gone}"),
            Some(DisappearingTimer::FiveMinutes),
            UnixMillis(9),
            UnixMillis(10),
        )
        .unwrap()
        .unwrap();
    let ours = f
        .store
        .insert_outgoing_timed_group_text(
            group,
            me(),
            &format!("ours {gone}"),
            &[member()],
            Some(DisappearingTimer::OneHour),
            UnixMillis(20),
        )
        .unwrap();
    assert_eq!(ours.expires_at, Some(UnixMillis(20 + 3_600_000)));
    f.store
        .insert_outgoing_group_text(group, me(), "kept", &[member()], UnixMillis(30))
        .unwrap();
    assert_eq!(search(&f.store, &gone).hits.len(), 2);
    assert_eq!(f.store.group(group).unwrap().unwrap().unread_count, 1);
    assert_eq!(f.store.next_expiry().unwrap(), Some(UnixMillis(300_010)));

    let first = f.store.delete_expired(UnixMillis(300_010)).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(search(&f.store, &gone).hits.len(), 1);
    assert_eq!(
        f.store.group(group).unwrap().unwrap().unread_count,
        0,
        "the expired unread text no longer counts"
    );
    f.store.delete_expired(UnixMillis(3_600_020)).unwrap();
    assert!(search(&f.store, &gone).hits.is_empty());
    let left: Vec<String> = f
        .store
        .group_messages_page(group, None, 50)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(left, ["kept"]);
    f.store.close().unwrap();

    let plain_dir = decrypted_copy(&f.path, &f.key);
    let findings = scan_dir_for_needles(
        plain_dir.path(),
        &[Needle::new("expired group text", gone.as_bytes().to_vec())],
    );
    assert!(
        findings.is_empty(),
        "expired group words still in the file: {findings:?}"
    );
}
