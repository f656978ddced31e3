//! Full-text search of message text, group texts and group names, inside the same SQLCipher
//! database (`docs/engine.md` § Search). No plaintext index exists anywhere else: the FTS5
//! table's pages are encrypted like every other page of the file.
//!
//! ## The index
//!
//! - `message_search` is a **contentless** FTS5 table (`content=''`): it holds the tokens, not a
//!   second copy of the text. Its FTS5 `secure-delete` option is on, and a message leaves it
//!   through the FTS5 `delete` command given the message's own text ([`unindex_contact_in`]), so
//!   its tokens leave the index pages at once; with `PRAGMA secure_delete` the freed pages are
//!   zeroed. (A `contentless_delete` table was tried first: it deletes by rowid with a tombstone
//!   and keeps the words in the file until a merge — the data-at-rest test caught it.)
//! - FTS5 prefix indexes of 2 and 3 characters (`prefix = '2 3'`, schema V8): the as-you-type
//!   prefix of a query's last word, when 2 or 3 characters long, is one doclist read newest first
//!   and stopped after a page; without them FTS5 merged the whole doclist of every word with that
//!   prefix first (the slowest queries of the benchmark, `docs/benchmarks.md` § Search).
//! - Tokenizer `unicode61 remove_diacritics 2`: case and diacritics fold (café ↔ cafe), and every
//!   character that is not a letter or a digit separates words, so the words of a URL and the
//!   `arbre` of `l'arbre` are words of their own.
//! - Chinese and Japanese have no spaces between words, so before indexing every CJK character is
//!   surrounded by spaces ([`index_text`]): each becomes a token of its own, and a query's CJK run
//!   becomes a phrase of consecutive characters (東京 = "東 京"). Single-character queries work,
//!   and no custom tokenizer is needed.
//! - `search_documents` maps the FTS rowid to what it indexes (schema V10): a 1:1 message, a
//!   group text, or a group's name ([`SearchDocument`]). Triggers refuse to delete a message, a
//!   group message or a group still listed there, so every path that deletes them (a contact or
//!   a group with its history, expiry) must unindex them first, in the same transaction, or
//!   fail: none can leave words behind silently.
//! - The rowid encodes the message's local time (`time << 20 | n`), so "newest first" is FTS5's
//!   own descending rowid order and a page stops after `limit` hits without sorting every match.
//!   The time is ours (sent: our clock when queued; received: our clock when stored), never the
//!   peer's claimed clock, so a peer cannot pin its messages to the top of every search.
//!
//! ## Writing
//!
//! [`index_message_in`] runs inside the transaction that stores a message (incoming and
//! outgoing), [`index_document_in`] inside the one that stores a group text or a group (whose
//! name is indexed again on a rename, [`reindex_group_name_in`]). Messages stored before the
//! index existed are listed in `search_backlog` (group texts and names in
//! `search_backlog_group_messages` and `search_backlog_groups`, schema V10) by the migration and indexed by [`Store::index_search_backlog`] in small batches, each its own short
//! transaction, so the engine can interleave them with the user's requests (resumable: the
//! backlog row goes in the same transaction as the indexing).
//!
//! ## Queries are data
//!
//! [`SearchQuery::parse`] turns the user's text into an FTS5 expression made only of quoted
//! terms that this module built from letters and digits; nothing the user typed is ever passed to
//! FTS5 as syntax (`NEAR(`, `*`, `"`, `:`, `AND`, `^` are all just separators or words). At most
//! [`MAX_QUERY_TERMS`] terms are used; the rest are ignored.
//!
//! ## Results
//!
//! Each hit carries a snippet of the message text and the matched ranges as UTF-16 offsets (what
//! JavaScript strings index), computed here from the stored text: the UI highlights them as text
//! nodes and never builds HTML from message content.

use rusqlite::types::FromSql;
use rusqlite::{Connection, OptionalExtension, ToSql, params};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::types::{ContactId, ConversationSeq, Direction, MessageId, UnixMillis};
use super::{Store, StoreError};
use crate::group::{GroupId, MemberKey};

/// At most this many terms of a query are used (a query of 10 KB of words stays cheap).
pub const MAX_QUERY_TERMS: usize = 16;

/// At most this many characters of one term are used.
const MAX_TERM_CHARS: usize = 64;

/// Bits of the rowid below the time: up to 2^20 messages can share one millisecond.
const SLOT_BITS: u32 = 20;

/// Times are clamped to `0..2^42` ms (until the year 2109) so the rowid fits in an `i64`.
const MAX_TIME: i64 = (1 << 42) - 1;

/// Characters of context kept before the first match in a snippet.
const SNIPPET_BEFORE: usize = 40;

/// Characters in a snippet at most.
const SNIPPET_CHARS: usize = 160;

/// Whether `c` is written without spaces between words (Han, kana, Hangul, and their
/// punctuation-free neighbours): such characters are indexed one by one.
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x31F0..=0x31FF    // Katakana phonetic extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF66..=0xFF9D    // half-width Katakana
        | 0x20000..=0x3FFFF) // CJK extensions B and later
}

/// Whether `c` belongs to a word (the rest separates words, like FTS5's `unicode61`).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// The text given to FTS5 for a message body: every CJK character is surrounded by spaces, so
/// `unicode61` makes each one a token.
pub(crate) fn index_text(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + body.len() / 2);
    for c in body.chars() {
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Case and diacritics folded, as `unicode61 remove_diacritics 2` does (for highlighting).
fn fold(word: &str) -> String {
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// One word of a text: its byte range and its folded form.
#[derive(Debug)]
struct Token {
    start: usize,
    end: usize,
    folded: String,
    cjk: bool,
}

/// The words of `text`, CJK characters one per token.
fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word_start: Option<usize> = None;
    let close = |out: &mut Vec<Token>, start: usize, end: usize| {
        out.push(Token {
            start,
            end,
            folded: fold(&text[start..end]),
            cjk: false,
        });
    };
    for (index, c) in text.char_indices() {
        if is_cjk(c) {
            if let Some(start) = word_start.take() {
                close(&mut out, start, index);
            }
            let end = index + c.len_utf8();
            out.push(Token {
                start: index,
                end,
                folded: fold(&text[index..end]),
                cjk: true,
            });
        } else if is_word_char(c) {
            word_start.get_or_insert(index);
        } else if let Some(start) = word_start.take() {
            close(&mut out, start, index);
        }
    }
    if let Some(start) = word_start {
        close(&mut out, start, text.len());
    }
    out
}

/// Whether a term is a CJK phrase (never a prefix: each character is already a token).
fn is_cjk_word(words: &[String]) -> bool {
    words
        .iter()
        .any(|word| word.chars().next().is_some_and(is_cjk))
}

/// One term of a query: a phrase of folded words (one word, or a run of CJK characters).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    words: Vec<String>,
    /// The last word also matches longer words starting with it (as-you-type search).
    prefix: bool,
}

/// A user's search text, parsed into terms this module quotes itself (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<Term>,
}

impl SearchQuery {
    /// Parses any text; never fails. Letters and digits make words, everything else separates
    /// them; a run of CJK characters is one phrase. The last word, when it has two or more
    /// characters, also matches as a prefix (as-you-type: "caf" finds "café"); the others match
    /// whole words (a prefix of a short common word expands to thousands of terms, which made
    /// queries several times slower in the benchmark).
    pub fn parse(text: &str) -> Self {
        let mut terms: Vec<Term> = Vec::new();
        let mut previous_cjk_end: Option<usize> = None;
        for token in tokens(text) {
            if terms.len() >= MAX_QUERY_TERMS && previous_cjk_end != Some(token.start) {
                break;
            }
            let word: String = token.folded.chars().take(MAX_TERM_CHARS).collect();
            if word.is_empty() {
                continue;
            }
            if token.cjk {
                match (previous_cjk_end, terms.last_mut()) {
                    (Some(end), Some(term)) if end == token.start => {
                        if term.words.len() < MAX_TERM_CHARS {
                            term.words.push(word);
                        }
                    }
                    _ => terms.push(Term {
                        words: vec![word],
                        prefix: false,
                    }),
                }
                previous_cjk_end = Some(token.end);
            } else {
                terms.push(Term {
                    words: vec![word],
                    prefix: false,
                });
                previous_cjk_end = None;
            }
        }
        if let Some(last) = terms.last_mut() {
            last.prefix = last.words.len() == 1
                && !is_cjk_word(&last.words)
                && last.words.iter().all(|word| word.chars().count() >= 2);
        }
        Self { terms }
    }

    /// True when the text had no word at all (nothing to search for).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The FTS5 MATCH expression: every term a quoted string (quotes inside doubled, though the
    /// words hold only letters and digits), joined by FTS5's implicit AND.
    fn fts_expression(&self) -> String {
        let mut expression = String::new();
        for term in &self.terms {
            if !expression.is_empty() {
                expression.push(' ');
            }
            expression.push('"');
            expression.push_str(&term.words.join(" ").replace('"', "\"\""));
            expression.push('"');
            if term.prefix {
                expression.push_str(" *");
            }
        }
        expression
    }

    /// The byte ranges of `body` that match a term, merged and in order.
    fn match_ranges(&self, body: &str) -> Vec<(usize, usize)> {
        let words = tokens(body);
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for term in &self.terms {
            let count = term.words.len();
            if count == 0 || words.len() < count {
                continue;
            }
            for start in 0..=(words.len() - count) {
                let matched = term.words.iter().enumerate().all(|(offset, wanted)| {
                    let Some(word) = words.get(start + offset) else {
                        return false;
                    };
                    if term.prefix && offset + 1 == count {
                        word.folded.starts_with(wanted.as_str())
                    } else {
                        word.folded == *wanted
                    }
                });
                if let (true, Some(first), Some(last)) =
                    (matched, words.get(start), words.get(start + count - 1))
                {
                    ranges.push((first.start, last.end));
                }
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }
}

/// A range of a text in UTF-16 code units (what JavaScript strings index), end exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextRange {
    /// First code unit.
    pub start: u32,
    /// One past the last code unit.
    pub end: u32,
}

/// A part of a message's text around its first match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    /// The text (plain text: show it as a text node).
    pub text: String,
    /// The matches inside `text`.
    pub matches: Vec<TextRange>,
    /// Text was cut before `text`.
    pub cut_before: bool,
    /// Text was cut after `text`.
    pub cut_after: bool,
}

/// Where the next page of a search starts (a position in the index, newest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SearchCursor(i64);

impl SearchCursor {
    /// The cursor's value (opaque; give it back to continue).
    pub fn get(self) -> i64 {
        self.0
    }

    /// A cursor from a value given out by [`SearchCursor::get`] (any value is safe).
    pub fn new(value: i64) -> Self {
        Self(value)
    }
}

/// What a hit is, and where it opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchFound {
    /// A message of a 1:1 chat (its text, or the file name of its attachment).
    Message {
        /// The message.
        message: MessageId,
        /// Its conversation.
        contact: ContactId,
        /// Who wrote it.
        direction: Direction,
        /// Its place in the conversation.
        seq: ConversationSeq,
    },
    /// A text of a group.
    GroupMessage {
        /// The message.
        message: MessageId,
        /// Its group.
        group: GroupId,
        /// Its author (our own key for ours).
        author: MemberKey,
        /// Ours or someone else's.
        direction: Direction,
        /// Its sequence number in the group.
        seq: u64,
    },
    /// A group's name.
    GroupName {
        /// The group.
        group: GroupId,
    },
}

/// One message (or group name) that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchHit {
    /// What matched, in which chat.
    pub found: SearchFound,
    /// When it was sent (outgoing) or stored (incoming), by our clock; for a group name, when
    /// the group was made or last renamed here.
    pub at: UnixMillis,
    /// The text around the first match.
    pub snippet: Snippet,
    /// The matches in the whole text.
    pub matches: Vec<TextRange>,
}

/// A page of results, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPage {
    /// The hits.
    pub hits: Vec<SearchHit>,
    /// Give this back as `before` for the next (older) page; `None` when this page is the last.
    pub next: Option<SearchCursor>,
}

/// UTF-16 length of `text`.
fn utf16_len(text: &str) -> u32 {
    u32::try_from(text.encode_utf16().count()).unwrap_or(u32::MAX)
}

/// The snippet of `body` around the first of `ranges` (byte ranges).
fn snippet(body: &str, ranges: &[(usize, usize)]) -> Snippet {
    let first = ranges.first().map_or(0, |range| range.0);
    let boundaries: Vec<usize> = body
        .char_indices()
        .map(|(index, _)| index)
        .chain(std::iter::once(body.len()))
        .collect();
    let first_char = boundaries.partition_point(|&index| index < first);
    let start_char = first_char.saturating_sub(SNIPPET_BEFORE);
    let char_count = boundaries.len().saturating_sub(1);
    let end_char = (start_char + SNIPPET_CHARS).min(char_count);
    let start = boundaries.get(start_char).copied().unwrap_or(0);
    let end = boundaries.get(end_char).copied().unwrap_or(body.len());
    let text = body.get(start..end).unwrap_or_default().to_owned();
    let matches = ranges
        .iter()
        .filter(|(s, e)| *e > start && *s < end)
        .map(|&(s, e)| TextRange {
            start: utf16_len(body.get(start..s.max(start)).unwrap_or_default()),
            end: utf16_len(body.get(start..e.min(end)).unwrap_or_default()),
        })
        .collect();
    Snippet {
        text,
        matches,
        cut_before: start > 0,
        cut_after: end < body.len(),
    }
}

/// The rowid for a message at `at`: the time's slot, after any rowid already there.
fn allocate_rowid(connection: &Connection, at: UnixMillis) -> Result<i64, StoreError> {
    let mut time = at.0.clamp(0, MAX_TIME);
    loop {
        let base = time << SLOT_BITS;
        let top = base | ((1 << SLOT_BITS) - 1);
        let last: Option<i64> = connection
            .prepare_cached(
                "SELECT max(rowid) FROM search_documents WHERE rowid BETWEEN ?1 AND ?2",
            )?
            .query_row(params![base, top], |row| row.get(0))?;
        match last {
            None => return Ok(base),
            Some(last) if last < top => return Ok(last + 1),
            // This millisecond is full (2^20 messages): the next one.
            Some(_) if time < MAX_TIME => time += 1,
            Some(_) => {
                return Err(StoreError::Conflict {
                    what: "the search index has no room left at this time",
                });
            }
        }
    }
}

/// A document of the index: what one FTS5 row stands for (`search_documents`, schema V10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SearchDocument {
    /// A 1:1 message.
    Message(MessageId),
    /// A group text.
    GroupMessage(MessageId),
    /// A group's name.
    Group(GroupId),
}

/// Indexes one document with `text`, inside the transaction that stores it. `at` is our clock's
/// time for it (see the module docs).
pub(crate) fn index_document_in(
    connection: &Connection,
    document: SearchDocument,
    at: UnixMillis,
    text: &str,
) -> Result<(), StoreError> {
    let rowid = allocate_rowid(connection, at)?;
    match document {
        SearchDocument::Message(id) => connection
            .prepare_cached("INSERT INTO search_documents (rowid, message_id) VALUES (?1, ?2)")?
            .execute(params![rowid, id])?,
        SearchDocument::GroupMessage(id) => connection
            .prepare_cached(
                "INSERT INTO search_documents (rowid, group_message_id) VALUES (?1, ?2)",
            )?
            .execute(params![rowid, id])?,
        SearchDocument::Group(id) => connection
            .prepare_cached("INSERT INTO search_documents (rowid, group_id) VALUES (?1, ?2)")?
            .execute(params![rowid, id])?,
    };
    connection
        .prepare_cached("INSERT INTO message_search (rowid, body) VALUES (?1, ?2)")?
        .execute(params![rowid, index_text(text)])?;
    Ok(())
}

/// Indexes one 1:1 message, inside the transaction that stores it.
pub(crate) fn index_message_in(
    connection: &Connection,
    message: MessageId,
    at: UnixMillis,
    body: &str,
) -> Result<(), StoreError> {
    index_document_in(connection, SearchDocument::Message(message), at, body)
}

/// Removes every message of `contact` from the index (inside the transaction that deletes them):
/// the FTS5 `delete` command with each message's indexed text takes its tokens out of the index
/// pages (`secure-delete`), then the mapping rows go.
pub(crate) fn unindex_contact_in(
    connection: &Connection,
    contact: ContactId,
) -> Result<(), StoreError> {
    unindex_selected_in(
        connection,
        "SELECT d.rowid, m.body FROM messages m JOIN search_documents d ON d.message_id = m.id
             WHERE m.contact_id = ?1",
        contact,
    )
}

/// Removes a group from the index, its name and every text of it (inside the transaction that
/// deletes it), as [`unindex_contact_in`] does for a contact.
pub(crate) fn unindex_group_in(connection: &Connection, group: GroupId) -> Result<(), StoreError> {
    unindex_selected_in(
        connection,
        "SELECT d.rowid, m.body FROM group_messages m
             JOIN search_documents d ON d.group_message_id = m.id WHERE m.group_id = ?1
             UNION ALL
             SELECT d.rowid, g.name FROM groups g JOIN search_documents d ON d.group_id = g.id
             WHERE g.id = ?1",
        group,
    )
}

/// Removes every document that `select` lists for `key` (`?1`) as (FTS rowid, indexed text) from
/// the index, one by one with [`unindex_row_in`]: what [`unindex_contact_in`] and
/// [`unindex_group_in`] share.
fn unindex_selected_in(
    connection: &Connection,
    select: &str,
    key: impl ToSql,
) -> Result<(), StoreError> {
    let indexed: Vec<(i64, String)> = {
        let mut statement = connection.prepare_cached(select)?;
        let rows = statement.query_map(params![key], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (rowid, text) in &indexed {
        unindex_row_in(connection, *rowid, text)?;
    }
    Ok(())
}

/// Indexes the group's name again after a rename (`old` is the name indexed so far): out with
/// the old words, in with the new ones, at `at`. Nothing happens when the name did not change
/// or the group is not indexed yet (its backlog row indexes the current name).
pub(crate) fn reindex_group_name_in(
    connection: &Connection,
    group: GroupId,
    old: &str,
    new: &str,
    at: UnixMillis,
) -> Result<(), StoreError> {
    if old == new {
        return Ok(());
    }
    let rowid: Option<i64> = connection
        .prepare_cached("SELECT rowid FROM search_documents WHERE group_id = ?1")?
        .query_row(params![group], |row| row.get(0))
        .optional()?;
    let Some(rowid) = rowid else {
        return Ok(());
    };
    unindex_row_in(connection, rowid, old)?;
    index_document_in(connection, SearchDocument::Group(group), at, new)
}

/// Removes one indexed document (its FTS rowid and its text) from the index: the FTS5 `delete`
/// command with its indexed text, then its mapping row (an expired message, `store/expiry.rs`).
pub(crate) fn unindex_row_in(
    connection: &Connection,
    rowid: i64,
    text: &str,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO message_search (message_search, rowid, body) VALUES ('delete', ?1, ?2)",
        )?
        .execute(params![rowid, index_text(text)])?;
    connection
        .prepare_cached("DELETE FROM search_documents WHERE rowid = ?1")?
        .execute(params![rowid])?;
    Ok(())
}

/// One backlog table of documents stored before the index existed (`search_backlog*`, see the
/// module docs), as [`Store::index_search_backlog`] drains it.
struct Backlog<K> {
    /// Up to `?1` backlog rows joined to their documents: (id, time, text). CROSS JOIN keeps the
    /// backlog the outer loop: scanning the documents' table instead would revisit every document
    /// already indexed on each batch (quadratic; the benchmark caught it).
    pending: &'static str,
    /// A row when the document `?1` is indexed already.
    indexed: &'static str,
    /// Deletes the backlog row of `?1`.
    done: &'static str,
    /// The index document of an id.
    document: fn(K) -> SearchDocument,
}

/// 1:1 messages (`search_backlog`).
const MESSAGE_BACKLOG: Backlog<MessageId> = Backlog {
    pending: "SELECT m.id, coalesce(m.received_at, m.sent_at), m.body
                 FROM search_backlog b CROSS JOIN messages m ON m.id = b.message_id LIMIT ?1",
    indexed: "SELECT 1 FROM search_documents WHERE message_id = ?1",
    done: "DELETE FROM search_backlog WHERE message_id = ?1",
    document: SearchDocument::Message,
};

/// Group texts (`search_backlog_group_messages`, schema V10).
const GROUP_MESSAGE_BACKLOG: Backlog<MessageId> = Backlog {
    pending: "SELECT m.id, coalesce(m.received_at, m.sent_at), m.body
                 FROM search_backlog_group_messages b CROSS JOIN group_messages m
                 ON m.id = b.group_message_id LIMIT ?1",
    indexed: "SELECT 1 FROM search_documents WHERE group_message_id = ?1",
    done: "DELETE FROM search_backlog_group_messages WHERE group_message_id = ?1",
    document: SearchDocument::GroupMessage,
};

/// Group names (`search_backlog_groups`, schema V10).
const GROUP_BACKLOG: Backlog<GroupId> = Backlog {
    pending: "SELECT g.id, g.last_activity_at, g.name
                 FROM search_backlog_groups b CROSS JOIN groups g ON g.id = b.group_id LIMIT ?1",
    indexed: "SELECT 1 FROM search_documents WHERE group_id = ?1",
    done: "DELETE FROM search_backlog_groups WHERE group_id = ?1",
    document: SearchDocument::Group,
};

/// Indexes up to `limit` documents of `backlog` (each unless it is indexed already) and deletes
/// their backlog rows, inside the caller's transaction; returns how many it took.
fn index_backlog_in<K: FromSql + ToSql + Copy>(
    connection: &Connection,
    backlog: &Backlog<K>,
    limit: u32,
) -> Result<u32, StoreError> {
    let pending: Vec<(K, UnixMillis, String)> = {
        let mut statement = connection.prepare_cached(backlog.pending)?;
        let rows = statement.query_map(params![i64::from(limit)], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, at, text) in &pending {
        let indexed = connection
            .prepare_cached(backlog.indexed)?
            .query_row(params![id], |_| Ok(()))
            .optional()?
            .is_some();
        if !indexed {
            index_document_in(connection, (backlog.document)(*id), *at, text)?;
        }
        connection
            .prepare_cached(backlog.done)?
            .execute(params![id])?;
    }
    Ok(u32::try_from(pending.len()).unwrap_or(u32::MAX))
}

impl Store {
    /// A page of messages matching `query`, newest first, older than `before` (the previous
    /// page's [`SearchPage::next`]) when given. An empty query gives an empty page.
    pub fn search_messages(
        &self,
        query: &SearchQuery,
        before: Option<SearchCursor>,
        limit: u32,
    ) -> Result<SearchPage, StoreError> {
        if query.is_empty() || limit == 0 {
            return Ok(SearchPage {
                hits: Vec::new(),
                next: None,
            });
        }
        let before = before.map_or(i64::MAX, SearchCursor::get);
        let mut statement = self.connection.prepare_cached(
            "WITH found AS (
                 SELECT rowid FROM message_search WHERE message_search MATCH ?1 AND rowid < ?2
                 ORDER BY rowid DESC LIMIT ?3)
             SELECT found.rowid,
                    m.id, m.contact_id, m.direction, m.seq, m.body,
                    coalesce(m.received_at, m.sent_at),
                    gm.id, gm.group_id, gm.author_key, gm.direction, gm.seq, gm.body,
                    coalesce(gm.received_at, gm.sent_at),
                    g.id, g.name
             FROM found JOIN search_documents d ON d.rowid = found.rowid
             LEFT JOIN messages m ON m.id = d.message_id
             LEFT JOIN group_messages gm ON gm.id = d.group_message_id
             LEFT JOIN groups g ON g.id = d.group_id
             ORDER BY found.rowid DESC",
        )?;
        let fetch = i64::from(limit).saturating_add(1);
        let mut rows = statement.query(params![query.fts_expression(), before, fetch])?;
        let mut hits = Vec::new();
        let mut next = None;
        let mut last_rowid = None;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            if hits.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
                next = last_rowid.map(SearchCursor);
                break;
            }
            last_rowid = Some(rowid);
            let (found, at, text): (SearchFound, UnixMillis, String) =
                if let Some(message) = row.get::<_, Option<MessageId>>(1)? {
                    let found = SearchFound::Message {
                        message,
                        contact: row.get(2)?,
                        direction: row.get(3)?,
                        seq: row.get(4)?,
                    };
                    (found, row.get(6)?, row.get(5)?)
                } else if let Some(message) = row.get::<_, Option<MessageId>>(7)? {
                    let seq: i64 = row.get(11)?;
                    let found = SearchFound::GroupMessage {
                        message,
                        group: row.get(8)?,
                        author: row.get(9)?,
                        direction: row.get(10)?,
                        seq: u64::try_from(seq).unwrap_or(0),
                    };
                    (found, row.get(13)?, row.get(12)?)
                } else if let Some(group) = row.get::<_, Option<GroupId>>(14)? {
                    // The time the name was indexed: the rowid's time part.
                    let at = UnixMillis(rowid >> SLOT_BITS);
                    (SearchFound::GroupName { group }, at, row.get(15)?)
                } else {
                    continue;
                };
            let ranges = query.match_ranges(&text);
            let matches = ranges
                .iter()
                .map(|&(s, e)| TextRange {
                    start: utf16_len(text.get(..s).unwrap_or_default()),
                    end: utf16_len(text.get(..e).unwrap_or_default()),
                })
                .collect();
            hits.push(SearchHit {
                found,
                at,
                snippet: snippet(&text, &ranges),
                matches,
            });
        }
        Ok(SearchPage { hits, next })
    }

    /// Empties the index and lists every message for [`Store::index_search_backlog`] again (for
    /// a future change of tokenizer, and for the background-indexing benchmark). The old index's
    /// pages are freed and zeroed (`secure_delete`).
    pub fn requeue_search_index(&mut self) -> Result<(), StoreError> {
        let transaction = self.write()?;
        transaction.execute_batch(
            "INSERT INTO message_search (message_search) VALUES ('delete-all');
             DELETE FROM search_documents;
             INSERT INTO search_backlog (message_id) SELECT id FROM messages
                 WHERE true ON CONFLICT DO NOTHING;
             INSERT INTO search_backlog_group_messages (group_message_id)
                 SELECT id FROM group_messages WHERE kind = 0 ON CONFLICT DO NOTHING;
             INSERT INTO search_backlog_groups (group_id) SELECT id FROM groups
                 WHERE true ON CONFLICT DO NOTHING;",
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Bytes of the search index's own data: the FTS5 segments and the rowid map (for the
    /// benchmark's "index size relative to the text"; SQLite's page overhead is not counted).
    pub fn search_index_bytes(&self) -> Result<u64, StoreError> {
        let bytes: i64 = self.connection.query_row(
            "SELECT (SELECT coalesce(sum(length(block)), 0) FROM message_search_data)
                  + (SELECT coalesce(sum(length(term) + 16), 0) FROM message_search_idx)
                  + (SELECT count(*) * 24 FROM search_documents)",
            [],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// Indexes up to `batch` documents stored before the search index existed (1:1 messages,
    /// then group texts, then group names), in one short transaction; returns how many are left. The engine calls it until it returns 0, between
    /// the user's requests.
    pub fn index_search_backlog(&mut self, batch: u32) -> Result<u64, StoreError> {
        let transaction = self.write()?;
        let done = index_backlog_in(&transaction, &MESSAGE_BACKLOG, batch)?;
        let room = batch.saturating_sub(done);
        let done = index_backlog_in(&transaction, &GROUP_MESSAGE_BACKLOG, room)?;
        let room = room.saturating_sub(done);
        index_backlog_in(&transaction, &GROUP_BACKLOG, room)?;
        let left: i64 = transaction.query_row(
            "SELECT (SELECT count(*) FROM search_backlog)
                  + (SELECT count(*) FROM search_backlog_group_messages)
                  + (SELECT count(*) FROM search_backlog_groups)",
            [],
            |row| row.get(0),
        )?;
        transaction.commit()?;
        Ok(u64::try_from(left).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::types::IdentityKeyBytes;
    use crate::store::{NewContact, schema};
    use crate::vault::DatabaseKey;

    /// A store whose database was made at schema `version` and given old rows by `fill`, then
    /// opened (migrated to the current schema); with its directory.
    fn old_store(version: i64, fill: impl FnOnce(&Connection)) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("v{version}.db"));
        let key = DatabaseKey::generate().unwrap();
        {
            let mut connection = Connection::open(&path).unwrap();
            super::super::apply_key(&connection, &key).unwrap();
            schema::migrate_to(&mut connection, version).unwrap();
            fill(&connection);
        }
        let store = Store::open(&path, &key).unwrap();
        (dir, store)
    }

    /// Whether `query` finds nothing in `store`.
    fn nothing_found(store: &Store, query: &SearchQuery) -> bool {
        store
            .search_messages(query, None, 10)
            .unwrap()
            .hits
            .is_empty()
    }

    #[test]
    fn messages_stored_before_the_index_are_indexed_by_the_backlog_pass() {
        let (_dir, mut store) = old_store(5, |connection| {
            connection
                .execute(
                    "INSERT INTO contacts (id, display_name, identity_key, created_at,
                     last_activity_at) VALUES (?1, 'old friend', x'0102', 5, 5)",
                    params![ContactId::from_bytes([9; 16])],
                )
                .unwrap();
            for n in 1..=5_i64 {
                connection
                    .execute(
                        "INSERT INTO messages (id, contact_id, direction, seq, body, sent_at, state)
                         VALUES (?1, ?2, 1, ?3, ?4, ?3, 0)",
                        params![
                            MessageId::generate().unwrap(),
                            ContactId::from_bytes([9; 16]),
                            n,
                            format!("old 東京 message {n}")
                        ],
                    )
                    .unwrap();
            }
        });
        let query = SearchQuery::parse("東京");
        assert!(nothing_found(&store, &query));
        assert_eq!(store.index_search_backlog(2).unwrap(), 3);
        assert_eq!(
            store.search_messages(&query, None, 10).unwrap().hits.len(),
            2
        );
        assert_eq!(store.index_search_backlog(100).unwrap(), 0);
        let hits = store.search_messages(&query, None, 10).unwrap().hits;
        let times: Vec<i64> = hits.iter().map(|hit| hit.at.0).collect();
        assert_eq!(times, [5, 4, 3, 2, 1]);
        assert_eq!(store.index_search_backlog(100).unwrap(), 0);
    }

    #[test]
    fn group_texts_and_names_stored_before_v10_are_indexed_by_the_backlog_pass() {
        let group = GroupId::from_bytes([7; 16]);
        let (_dir, mut store) = old_store(9, |connection| {
            connection
                .execute(
                    "INSERT INTO groups (id, name, description, replica, created_at,
                     last_activity_at) VALUES (?1, 'Café 東京', '', x'00', 5, 8)",
                    params![group],
                )
                .unwrap();
            for (n, kind, body) in [(1_i64, 0, "old 東京 text"), (2, 1, "added:東京")] {
                connection
                    .execute(
                        "INSERT INTO group_messages (id, group_id, author_key, direction, kind,
                         seq, body, sent_at, received_at, state) VALUES (?1, ?2, ?3, 0, ?4, ?5,
                         ?6, ?5, ?5, 5)",
                        params![
                            MessageId::generate().unwrap(),
                            group,
                            MemberKey::from_bytes([3; 64]),
                            kind,
                            n,
                            body
                        ],
                    )
                    .unwrap();
            }
        });
        let query = SearchQuery::parse("東京");
        assert!(nothing_found(&store, &query));
        assert_eq!(store.index_search_backlog(1).unwrap(), 1);
        assert_eq!(store.index_search_backlog(100).unwrap(), 0);
        let found: Vec<SearchFound> = store
            .search_messages(&query, None, 10)
            .unwrap()
            .hits
            .into_iter()
            .map(|hit| hit.found)
            .collect();
        assert_eq!(found.len(), 2, "the text and the name, not the roster line");
        assert_eq!(found[0], SearchFound::GroupName { group });
        assert!(
            matches!(found[1], SearchFound::GroupMessage { group: g, seq: 1, .. } if g == group)
        );
        // Deleting the group takes both out of the index first (else the triggers refuse).
        store.delete_group(group).unwrap();
        assert!(nothing_found(&store, &query));
    }

    #[test]
    fn a_message_cannot_be_deleted_while_it_is_in_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let key = DatabaseKey::generate().unwrap();
        let mut store = Store::open(&dir.path().join("t.db"), &key).unwrap();
        let contact = store
            .insert_contact(&NewContact {
                display_name: "A".to_owned(),
                identity_key: IdentityKeyBytes::new(b"ik".to_vec()),
                created_at: UnixMillis(1),
            })
            .unwrap();
        let message = store
            .insert_outgoing_message(contact.id, "hello", UnixMillis(2))
            .unwrap();
        let deleted = store
            .connection
            .execute("DELETE FROM messages WHERE id = ?1", params![message.id]);
        assert!(
            deleted.is_err(),
            "a deletion path that skips unindexing must fail"
        );
        store.delete_contact(contact.id, UnixMillis(3)).unwrap();
        assert!(store.message(message.id).unwrap().is_none());
    }

    #[test]
    fn cjk_characters_are_indexed_one_by_one() {
        assert_eq!(index_text("東京都で"), " 東  京  都  で ");
        assert_eq!(index_text("café"), "café");
    }

    #[test]
    fn user_syntax_never_reaches_fts5() {
        let query = SearchQuery::parse(r#"NEAR("a" b*, 2) col:x ^y "z"#);
        assert_eq!(
            query.fts_expression(),
            r#""near" "a" "b" "2" "col" "x" "y" "z""#
        );
    }

    #[test]
    fn a_cjk_run_is_one_phrase_and_words_fold() {
        let query = SearchQuery::parse("Café 東京 x");
        assert_eq!(query.fts_expression(), r#""cafe" "東 京" "x""#);
        assert_eq!(
            SearchQuery::parse("le caf").fts_expression(),
            r#""le" "caf" *"#,
            "the last word is a prefix"
        );
    }

    #[test]
    fn ranges_are_utf16_offsets_of_the_matched_words() {
        let query = SearchQuery::parse("cafe");
        let body = "😀 un Café noir";
        let ranges = query.match_ranges(body);
        assert_eq!(ranges.len(), 1);
        let piece = snippet(body, &ranges);
        assert_eq!(
            piece.matches,
            vec![TextRange { start: 6, end: 10 }],
            "the emoji is two UTF-16 units"
        );
    }
}
