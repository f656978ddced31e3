//! Reading conversations: the chat list and pages of a conversation's history.

use super::error::EngineError;
use super::state::{Engine, lock, parse_contact};
use super::views::*;
use crate::store::{ContactId, ConversationSeq, Direction, MessagePosition};

impl Engine {
    /// `list_chats`: newest activity first.
    pub async fn list_chats(&self) -> Result<Vec<ChatView>, EngineError> {
        let chats = lock(&self.inner.store).chat_list()?;
        Ok(chats.iter().map(ChatView::from).collect())
    }

    /// `get_messages`: at most `limit` messages with `seq < before_seq` (newest when `None`).
    pub async fn get_messages(
        &self,
        contact_id: &str,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<MessagePage, EngineError> {
        let contact = parse_contact(contact_id)?;
        let before = match before_seq {
            None => None,
            Some(seq) => Some(MessagePosition {
                seq: ConversationSeq::new(seq)
                    .ok_or_else(|| EngineError::InvalidInput("beforeSeq".into()))?,
                direction: Direction::Incoming,
            }),
        };
        let limit = limit.clamp(1, 500);
        let store = lock(&self.inner.store);
        store
            .contact(contact)?
            .ok_or(EngineError::ContactNotFound)?;
        let mut page = store.messages_page(contact, before, limit.saturating_add(1))?;
        let has_more = page.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        if has_more {
            page.remove(0);
        }
        Ok(MessagePage {
            messages: page.iter().map(MessageView::from).collect(),
            has_more,
        })
    }

    pub(super) fn chat(&self, contact: ContactId) -> Result<ChatView, EngineError> {
        let chats = lock(&self.inner.store).chat_list()?;
        chats
            .iter()
            .find(|chat| chat.contact.id == contact)
            .map(ChatView::from)
            .ok_or(EngineError::ContactNotFound)
    }
}
