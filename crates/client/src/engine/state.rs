//! The engine's shared state ([`Inner`], held by [`Engine`] in an `Arc`) and the small helpers
//! every part of the engine uses: the store lock, random bytes, id and name parsing, task tracking.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sealpost_crypto::{IdentityKey, IdentityKeyPair};
use sealpost_relay_client::{BackoffConfig, Connector, RelayUrl as WireUrl, Sender, Subscriber};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::error::EngineError;
use super::views::*;
use crate::clock::Clock;
use crate::profile::{ProfileDirs, ProfileName};
use crate::store::{
    AttachmentId, ContactId, ExpiredChat, GroupMessageProgress, RelayUrl, Store, UnixMillis,
};
use crate::vault::IdentitySeedBytes;

/// What the engine's commands and tasks share: one per open profile, behind the [`Engine`]'s
/// `Arc` (tasks hold it weakly).
pub(crate) struct Inner {
    pub(super) store: Mutex<Store>,
    pub(super) identity: IdentityKeyPair,
    /// The identity seed the keys come from, for `export_backup` (zeroized on drop).
    pub(super) identity_seed: IdentitySeedBytes,
    pub(super) profile: ProfileName,
    pub(super) dirs: ProfileDirs,
    pub(super) events: mpsc::UnboundedSender<EngineEvent>,
    pub(super) sender: Sender,
    pub(super) connector: Connector,
    pub(super) subscribers: Mutex<HashMap<String, Subscriber>>,
    pub(super) connections: Mutex<BTreeMap<String, RelayConnection>>,
    pub(super) outbox_wake: Notify,
    /// Wakes [`secure_loop`](super::secure::secure_loop): a SECURE was queued, or a relay came back online.
    pub(super) secure_wake: Arc<Notify>,
    pub(super) receipts: Mutex<HashMap<ContactId, Vec<u64>>>,
    /// Contacts whose session we just accepted as a restart and that have sent nothing on it
    /// since: a gap refused now is a straggler of the old session, not a reason to restart.
    pub(super) fresh_restarts: Mutex<HashSet<ContactId>>,
    pub(super) tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Set by [`Engine::shutdown`]: no new task starts (each is aborted as it is spawned).
    pub(super) closing: AtomicBool,
    pub(super) local_relay_url: Option<String>,
    pub(super) receipt_delay: (Duration, Duration),
    pub(super) delivery_receipts: bool,
    pub(super) backoff: BackoffConfig,
    /// The relays' blob stores, for attachments (`crate::blobs`).
    pub(super) blobs: Arc<dyn crate::blobs::BlobTransport>,
    /// Wakes the attachment transfer task: a transfer was queued.
    pub(super) attachment_wake: Notify,
    /// Store and crypto work running on the blocking pool ([`Inner::blocking`]), which
    /// [`Engine::shutdown`] waits for.
    pub(super) blocking_work: BlockingWork,
    /// Our clock: message expiry is judged by it (`docs/engine.md` § Disappearing messages).
    pub(super) clock: Clock,
    /// The keys of kept group work whose last run could not finish for now (relay unreachable or
    /// refusing for its rate, storage busy): the group-work sweep runs them again
    /// (`docs/engine.md` § Groups, "Nothing is lost").
    pub(super) parked_group_work: Mutex<HashSet<String>>,
}

/// Counts the closures [`Inner::blocking`] runs on tokio's blocking pool. Such a closure cannot
/// be aborted, so [`Engine::shutdown`] waits until none is left before it returns.
#[derive(Default)]
pub(super) struct BlockingWork {
    running: AtomicUsize,
    finished: Notify,
}

impl BlockingWork {
    /// Waits until no closure is running.
    pub(super) async fn idle(&self) {
        loop {
            let finished = self.finished.notified();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            finished.await;
        }
    }
}

/// Marks one closure of [`BlockingWork`] running until dropped: after it ran, after it panicked,
/// or when the runtime dropped it unrun.
struct Running(Arc<Inner>);

impl Running {
    fn start(inner: Arc<Inner>) -> Self {
        inner.blocking_work.running.fetch_add(1, Ordering::SeqCst);
        Self(inner)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.blocking_work.running.fetch_sub(1, Ordering::SeqCst);
        self.0.blocking_work.finished.notify_waiters();
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn random32() -> Result<[u8; 32], EngineError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

pub(crate) fn array32(bytes: &[u8]) -> Result<[u8; 32], EngineError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| EngineError::KeyLength {
        expected: 32,
        found: bytes.len(),
    })
}

pub(super) fn now_secs() -> u64 {
    u64::try_from(UnixMillis::now().0 / 1000).unwrap_or(0)
}

pub(super) fn check_display_name(name: &str) -> Result<String, EngineError> {
    // No bidirectional control in any name (`crate::names`, docs/threat-model.md).
    let cleaned = crate::names::neutralise_bidi(name);
    let trimmed = cleaned.as_str();
    if trimmed.is_empty() || trimmed.chars().count() > 64 || trimmed.len() > 64 * 4 {
        return Err(EngineError::DisplayNameInvalid);
    }
    // The invite carries at most 64 bytes of name: cut on a char boundary.
    Ok(trimmed.to_owned())
}

pub(super) fn invite_name(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars() {
        if out.len() + ch.len_utf8() > crate::invite::MAX_INVITE_NAME {
            break;
        }
        out.push(ch);
    }
    out
}

pub(super) fn parse_contact(id: &str) -> Result<ContactId, EngineError> {
    id.parse().map_err(|_| EngineError::ContactNotFound)
}

/// The engine: one per open profile. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Engine {
    pub(super) inner: Arc<Inner>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

pub(crate) fn store_url(url: &str) -> Result<RelayUrl, EngineError> {
    RelayUrl::parse(url).map_err(|e| EngineError::RelayUrlInvalid(e.to_string()))
}

pub(crate) fn identity_from_bytes(bytes: &[u8]) -> Result<IdentityKey, EngineError> {
    let array = <[u8; 64]>::try_from(bytes).map_err(|_| EngineError::KeyLength {
        expected: 64,
        found: bytes.len(),
    })?;
    Ok(IdentityKey::from_bytes(&array)?)
}

impl Inner {
    /// Runs `work` on tokio's blocking pool and waits for it without holding up the runtime
    /// (`docs/engine.md` § Threads). Everything that takes the store lock or seals or opens
    /// (SQLCipher commits with their fsync, HPKE and the ratchet) runs in here, never on a
    /// runtime worker: a worker blocked on the store's `std::sync::Mutex` stalls every task
    /// queued on it.
    pub(super) async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Arc<Inner>) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        // Counted before the spawn, so a shutdown that starts now waits for it.
        let running = Running::start(Arc::clone(self));
        tokio::task::spawn_blocking(move || {
            let running = running;
            work(&running.0)
        })
        .await
        .map_err(EngineError::BlockingTask)?
    }

    /// [`Inner::blocking`] with the store locked for the whole of `work`. Messages that
    /// expired by our clock are deleted first ([`Inner::sweep_expired`]), so nothing read
    /// through here is ever past its disappearing timer, whatever the clock did meanwhile.
    pub(super) async fn on_store<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut Store) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        self.blocking(move |inner| {
            let mut store = lock(&inner.store);
            inner.sweep_expired(&mut store)?;
            work(&mut store)
        })
        .await
    }

    /// Deletes every message past its disappearing timer by our clock (`store/expiry.rs`) and
    /// emits `messages-expired` per conversation (`group-messages-expired` per group). Cheap
    /// when nothing expired (one index lookup); every read path runs it first.
    pub(super) fn sweep_expired(&self, store: &mut Store) -> Result<(), EngineError> {
        let expired = store.delete_expired(self.clock.now())?;
        // The rows are gone (committed): their chunk files go now. A crash in between leaves
        // directories without a row, removed on the next open (`remove_orphan_attachment_files`).
        self.remove_attachment_files(expired.iter().filter_map(|message| message.attachment));
        let mut by_chat: BTreeMap<ExpiredChat, Vec<String>> = BTreeMap::new();
        for message in expired {
            by_chat
                .entry(message.chat)
                .or_default()
                .push(message.id.to_string());
        }
        for (chat, message_ids) in by_chat {
            self.emit(match chat {
                ExpiredChat::Contact(contact) => EngineEvent::MessagesExpired {
                    contact_id: contact.to_string(),
                    message_ids,
                },
                ExpiredChat::Group(group) => EngineEvent::GroupMessagesExpired {
                    group_id: group.to_string(),
                    message_ids,
                },
            });
        }
        Ok(())
    }

    /// The directory holding an attachment's chunk files (`<profile>/attachments/<id>/`).
    pub(super) fn attachment_dir(&self, id: AttachmentId) -> PathBuf {
        self.dirs
            .profile_dir()
            .join("attachments")
            .join(id.to_string())
    }

    /// Removes the chunk files of attachments whose rows are already deleted (expired, or their
    /// contact deleted). Best effort: what stays is removed on the next open.
    pub(super) fn remove_attachment_files(&self, ids: impl IntoIterator<Item = AttachmentId>) {
        for id in ids {
            match std::fs::remove_dir_all(self.attachment_dir(id)) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(%error, "attachment files not removed"),
            }
        }
    }

    /// On open: removes every directory under `<profile>/attachments/` that no attachment row
    /// names (its row was deleted and the app stopped before the files went, or a send stopped
    /// between writing the chunks and storing the row).
    pub(super) fn remove_orphan_attachment_files(&self, store: &Store) -> Result<(), EngineError> {
        let root = self.dirs.profile_dir().join("attachments");
        let entries = match std::fs::read_dir(&root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(EngineError::AttachmentIo(error)),
        };
        for entry in entries {
            let path = entry.map_err(EngineError::AttachmentIo)?.path();
            let known = match path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.parse::<AttachmentId>().ok())
            {
                Some(id) => store.attachment(id)?.is_some(),
                None => false,
            };
            if !known {
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                if let Err(error) = removed {
                    tracing::warn!(%error, "orphan attachment files not removed");
                }
            }
        }
        Ok(())
    }

    pub(crate) fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event);
    }

    /// Emits `group-message-state` for each of our group messages whose copies moved.
    pub(super) fn emit_group_progress(&self, progress: &[GroupMessageProgress]) {
        for one in progress {
            self.emit(group_progress_event(one));
        }
    }

    pub(super) fn check_relay_url(&self, url: &str) -> Result<WireUrl, EngineError> {
        let parsed =
            WireUrl::parse(url).map_err(|e| EngineError::RelayUrlInvalid(e.to_string()))?;
        self.connector
            .check(&parsed)
            .map_err(|e| EngineError::RelayUrlInvalid(e.to_string()))?;
        store_url(url)?;
        Ok(parsed)
    }

    /// Keeps `task` for [`Engine::shutdown`] to abort and await; aborts it at once if the engine
    /// is already closing. Finished tasks are forgotten here.
    pub(crate) fn track(&self, task: JoinHandle<()>) {
        if self.closing.load(Ordering::SeqCst) {
            task.abort();
            return;
        }
        let mut tasks = lock(&self.tasks);
        tasks.retain(|task| !task.is_finished());
        tasks.push(task);
    }
}

/// The `group-message-state` event for one of our group messages whose copies moved.
pub(super) fn group_progress_event(progress: &GroupMessageProgress) -> EngineEvent {
    EngineEvent::GroupMessageState {
        group_id: progress.group.to_string(),
        message_id: progress.message.to_string(),
        state: progress.state.into(),
        recipients: progress.summary.total,
        delivered_to: progress.summary.delivered,
        read_by: progress.summary.read,
    }
}

/// A jittered backoff before attempt `attempts + 1` (a `slow` failure starts at the maximum).
pub(super) fn backoff_delay(inner: &Inner, attempts: u32, slow: bool) -> Duration {
    let base = if slow {
        inner.backoff.max
    } else {
        inner.backoff.base
    };
    let factor = 1u32.checked_shl(attempts.min(16)).unwrap_or(u32::MAX);
    let ceiling = base.saturating_mul(factor).min(inner.backoff.max);
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    // Full jitter between half and the whole ceiling.
    let fraction = f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX);
    ceiling.mul_f64(0.5 + 0.5 * fraction)
}
