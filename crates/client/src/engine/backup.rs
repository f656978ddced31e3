//! Backups of the open profile, and the first open after a restore (`docs/backup.md`).
//!
//! - `Engine::export_backup`: the snapshot is taken under the store's lock (a consistent copy;
//!   the engine's other store work waits for it), then sealed on the blocking pool without it.
//! - `Inner::restart_restored_sessions`, on the first open of a restored profile: its
//!   database holds no ratchet session any more (`Store::prepare_restored` deleted them), and
//!   every contact's session is restarted here through the authenticated restart path
//!   (`restart::restart_session`, `docs/engine.md` § Session restart) before anything else is
//!   sealed, so no message key of the backup is ever used again.

use std::path::PathBuf;
use std::sync::Arc;

use super::error::EngineError;
use super::restart::{RestartCause, restart_session};
use super::state::{Engine, Inner, lock};
use crate::backup::{BackupProgress, BackupSummary, KdfParams, Passphrase, Snapshot};
use crate::store::UnixMillis;
use crate::store::backup::RESTORE_PENDING_KEY;

impl Engine {
    /// `export_backup`: writes the whole profile to `output`, sealed under `passphrase` with
    /// `kdf` (`KdfParams::DEFAULT` in the app). `progress` is called from the blocking pool.
    pub async fn export_backup(
        &self,
        output: PathBuf,
        passphrase: Passphrase,
        kdf: KdfParams,
        mut progress: impl FnMut(BackupProgress) + Send + 'static,
    ) -> Result<BackupSummary, EngineError> {
        self.inner
            .blocking(move |inner| {
                let snapshot = {
                    let store = lock(&inner.store);
                    Snapshot::take(&store, inner.dirs.data_root())?
                        .with_attachments(&inner.dirs.profile_dir().join("attachments"))
                };
                snapshot.omit_expired(UnixMillis::now())?;
                Ok(snapshot.seal(
                    &inner.identity_seed,
                    &passphrase,
                    kdf,
                    &output,
                    &mut progress,
                )?)
            })
            .await
    }
}

impl Inner {
    /// On open: if this profile was just restored, restarts the session with every contact
    /// (blocked contacts and those pending a key change are left without a session until the
    /// user decides), then clears the mark. Runs before anything is sealed.
    pub(super) fn restart_restored_sessions(self: &Arc<Self>) -> Result<(), EngineError> {
        let contacts = {
            let store = lock(&self.store);
            if store.setting(RESTORE_PENDING_KEY)?.as_deref() != Some("1") {
                return Ok(());
            }
            store.contacts()?
        };
        let mut restarted = 0usize;
        for contact in &contacts {
            match restart_session(self, contact.id, RestartCause::Restored) {
                Ok(()) => restarted += 1,
                Err(error) => {
                    tracing::warn!(%error, "a restored session could not be restarted");
                }
            }
        }
        lock(&self.store).set_setting(RESTORE_PENDING_KEY, "0")?;
        tracing::info!(
            restarted,
            contacts = contacts.len(),
            "restored profile: sessions restarted"
        );
        Ok(())
    }
}
