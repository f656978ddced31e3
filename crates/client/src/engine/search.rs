//! Message search (`docs/engine.md` § Search): the `search_messages` command and the background
//! pass that indexes messages stored before the search index existed.
//!
//! The view types live here, next to the one command that returns them.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::EngineError;
use super::state::{Engine, Inner, lock};
use crate::store::{Direction, SearchCursor, SearchFound, SearchHit, SearchQuery, TextRange};

/// At most this many characters of a query are read (the rest is ignored, never an error).
pub const MAX_QUERY_CHARS: usize = 1024;

/// Messages indexed per transaction by the background pass: a few milliseconds of store time,
/// so the user's requests wait at most one batch.
const BACKLOG_BATCH: u32 = 200;

/// `TextRange`: UTF-16 offsets (JavaScript string indices), end exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextRangeView {
    /// First code unit.
    pub start: u32,
    /// One past the last code unit.
    pub end: u32,
}

impl From<TextRange> for TextRangeView {
    fn from(range: TextRange) -> Self {
        Self {
            start: range.start,
            end: range.end,
        }
    }
}

/// `SearchHit`: one message (or group name) that matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHitView {
    /// The message's opaque id; `None` for a group's name.
    pub message_id: Option<String>,
    /// Its 1:1 chat (the contact's opaque id); `None` for a group.
    pub contact_id: Option<String>,
    /// Its group (the group's opaque id); `None` for a 1:1 chat.
    pub group_id: Option<String>,
    /// Its order key in its chat (to open the chat there): the conversation's `seq`, or the
    /// group message's `seq`; 0 for a group's name.
    pub seq: u64,
    /// Written by us.
    pub outgoing: bool,
    /// The author of a group message (the member's identity key, hex); `None` otherwise.
    pub author_key: Option<String>,
    /// Unix ms, our clock (sent by us / stored by us; a group name: made or renamed here).
    pub at: i64,
    /// Plain text around the first match (data, never markup).
    pub snippet: String,
    /// Matches inside `snippet`.
    pub snippet_matches: Vec<TextRangeView>,
    /// Text was cut before the snippet.
    pub cut_before: bool,
    /// Text was cut after the snippet.
    pub cut_after: bool,
    /// Matches inside the whole message text.
    pub matches: Vec<TextRangeView>,
}

impl From<&SearchHit> for SearchHitView {
    fn from(hit: &SearchHit) -> Self {
        let (message_id, contact_id, group_id, seq, outgoing, author_key) = match &hit.found {
            SearchFound::Message {
                message,
                contact,
                direction,
                seq,
            } => (
                Some(message.to_string()),
                Some(contact.to_string()),
                None,
                seq.get(),
                *direction == Direction::Outgoing,
                None,
            ),
            SearchFound::GroupMessage {
                message,
                group,
                author,
                direction,
                seq,
            } => (
                Some(message.to_string()),
                None,
                Some(group.to_string()),
                *seq,
                *direction == Direction::Outgoing,
                Some(hex::encode(author.as_bytes())),
            ),
            SearchFound::GroupName { group } => {
                (None, None, Some(group.to_string()), 0, false, None)
            }
        };
        Self {
            message_id,
            contact_id,
            group_id,
            seq,
            outgoing,
            author_key,
            at: hit.at.0,
            snippet: hit.snippet.text.clone(),
            snippet_matches: hit
                .snippet
                .matches
                .iter()
                .copied()
                .map(Into::into)
                .collect(),
            cut_before: hit.snippet.cut_before,
            cut_after: hit.snippet.cut_after,
            matches: hit.matches.iter().copied().map(Into::into).collect(),
        }
    }
}

/// `SearchResults`: a page of hits, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResultsView {
    /// The hits.
    pub hits: Vec<SearchHitView>,
    /// Opaque cursor for the next (older) page; `None` at the end. A string: it does not fit a
    /// JavaScript number.
    pub next: Option<String>,
}

/// The first [`MAX_QUERY_CHARS`] characters of `text`.
fn bounded(text: &str) -> &str {
    match text.char_indices().nth(MAX_QUERY_CHARS) {
        Some((end, _)) => text.get(..end).unwrap_or(text),
        None => text,
    }
}

impl Engine {
    /// `search_messages`: up to `limit` (1–100) messages matching `query`, newest first, older
    /// than the cursor `before` (a previous page's `next`). Any query text is data: it never
    /// raises an error (`store/search.rs`). Messages stored before the index existed appear as
    /// the background pass reaches them.
    pub async fn search_messages(
        &self,
        query: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<SearchResultsView, EngineError> {
        let before = match before {
            None => None,
            Some(text) => Some(SearchCursor::new(
                text.parse()
                    .map_err(|_| EngineError::InvalidInput("before".into()))?,
            )),
        };
        let query = SearchQuery::parse(bounded(query));
        let page = {
            let mut store = lock(&self.inner.store);
            self.inner.sweep_expired(&mut store)?;
            store.search_messages(&query, before, limit.clamp(1, 100))?
        };
        Ok(SearchResultsView {
            hits: page.hits.iter().map(SearchHitView::from).collect(),
            next: page.next.map(|cursor| cursor.get().to_string()),
        })
    }
}

impl Inner {
    /// Starts the background pass over `search_backlog`: one short transaction of
    /// [`BACKLOG_BATCH`] messages at a time, releasing the store between batches so the user's
    /// requests go first. Resumable: a batch commits with its backlog rows removed.
    pub(super) fn spawn_search_backlog(self: Arc<Self>) {
        let weak = Arc::downgrade(&self);
        let task = tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let left = lock(&inner.store).index_search_backlog(BACKLOG_BATCH);
                drop(inner);
                match left {
                    Ok(0) => return,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    Err(error) => {
                        tracing::warn!(%error, "search backlog not indexed");
                        return;
                    }
                }
            }
        });
        self.track(task);
    }
}
