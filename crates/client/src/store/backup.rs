//! The store's side of encrypted backups (`docs/backup.md`): a consistent snapshot of the
//! whole database into a new SQLCipher file under another key, and the changes a restored
//! database gets before its engine ever opens it.

use std::path::Path;

use rusqlite::params;

use super::{AttachmentId, Store, StoreError, UnixMillis};
use crate::vault::DatabaseKey;

/// Setting written into a restored database: the engine restarts every session on its next
/// open and then removes it (`engine/backup.rs`).
pub const RESTORE_PENDING_KEY: &str = "engine.restore-pending";
/// How far a restored conversation's (and group's) sequence number jumps ahead: messages the
/// original device sent after the backup used numbers the restored one must not reuse (the
/// contact refuses a reused one). Half of `MAX_SEQ_ADVANCE` / `MAX_GROUP_SEQ_ADVANCE`, so the
/// contact still accepts the next message.
pub const RESTORED_SEQ_JUMP: i64 = 1 << 19;

/// What [`Store::prepare_restored`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestorePrepared {
    /// Ratchet sessions deleted (each is restarted with X3DH on the first open).
    pub sessions_dropped: usize,
    /// Sealed envelopes dropped from the outbox (sealed with the old sessions).
    pub outbox_dropped: usize,
    /// Expired messages left out (the disappearing-messages hook).
    pub expired_dropped: usize,
}

impl Store {
    /// Writes a consistent copy of the whole database to `path` (which must not exist),
    /// encrypted by SQLCipher under `key` (`sqlcipher_export`). The caller holds the store, so no
    /// write of the running engine lands halfway. The copy is compact (like `VACUUM`) and
    /// carries the schema version.
    pub fn export_snapshot(&self, path: &Path, key: &DatabaseKey) -> Result<(), StoreError> {
        let path_text = path.to_str().ok_or(StoreError::InvalidInput {
            what: "a snapshot path that is not UTF-8",
        })?;
        // SQLCipher's raw-key form, bound as a parameter: `x'<64 hex>'` (no PBKDF2).
        let raw_key = zeroize::Zeroizing::new(format!(
            "x'{}'",
            zeroize::Zeroizing::new(hex::encode(key.expose_secret())).as_str()
        ));
        let version = self.schema_version()?;
        let connection = &self.connection;
        connection.execute(
            "ATTACH DATABASE ?1 AS backup_snapshot KEY ?2",
            params![path_text, raw_key.as_str()],
        )?;
        // The engine holds the store's lock for the whole export: no write lands halfway.
        let result = (|| -> Result<(), StoreError> {
            connection.query_row("SELECT sqlcipher_export('backup_snapshot')", [], |_| Ok(()))?;
            connection.pragma_update(Some("backup_snapshot"), "user_version", version)?;
            Ok(())
        })();
        let detached = connection.execute_batch("DETACH DATABASE backup_snapshot");
        result?;
        detached?;
        Ok(())
    }

    /// Readies a just-restored database (not yet opened by an engine): every ratchet session is
    /// deleted, so none can ever seal again (the engine restarts each with X3DH on open); the
    /// outbox (sealed with those sessions) is emptied and unsealed messages marked failed; each
    /// conversation's and group's sequence number jumps [`RESTORED_SEQ_JUMP`] ahead; each
    /// contact's restart generation moves to at least `now` in milliseconds, past any restart
    /// the original device sent after the backup; expired messages are deleted
    /// ([`Store::delete_expired_for_backup`]); and [`RESTORE_PENDING_KEY`] is set. One
    /// transaction.
    pub fn prepare_restored(&mut self, now: UnixMillis) -> Result<RestorePrepared, StoreError> {
        let expired_dropped = self.delete_expired_for_backup(now)?;
        let transaction = self.write()?;
        let sessions_dropped = transaction.execute("DELETE FROM sessions", [])?;
        let outbox_dropped = transaction.execute("DELETE FROM outbox", [])?;
        transaction.execute(
            "UPDATE messages SET state = 4 WHERE direction = 1 AND sealed_at IS NULL",
            [],
        )?;
        transaction.execute(
            "UPDATE contacts SET last_seq = last_seq + ?1",
            params![RESTORED_SEQ_JUMP],
        )?;
        transaction.execute(
            "UPDATE groups SET last_seq = last_seq + ?1",
            params![RESTORED_SEQ_JUMP],
        )?;
        let generation = now.0.max(0);
        let contacts: Vec<String> = {
            let mut statement = transaction.prepare("SELECT id FROM contacts")?;
            let rows = statement.query_map([], |row| {
                row.get::<_, super::ContactId>(0).map(|id| id.to_string())
            })?;
            rows.collect::<Result<_, _>>()?
        };
        for contact in contacts {
            transaction.execute(
                "INSERT INTO settings (key, value) VALUES (?1, CAST(?2 AS TEXT))
                 ON CONFLICT (key) DO UPDATE
                 SET value = CAST(max(CAST(value AS INTEGER), ?2) AS TEXT)",
                params![format!("engine.restart-sent.{contact}"), generation],
            )?;
        }
        transaction.execute(
            "INSERT INTO settings (key, value) VALUES (?1, '1')
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![RESTORE_PENDING_KEY],
        )?;
        transaction.commit()?;
        Ok(RestorePrepared {
            sessions_dropped,
            outbox_dropped,
            expired_dropped,
        })
    }

    /// The blob attachments whose chunk files a backup carries: complete and not inline, with
    /// their chunk counts.
    pub fn attachments_for_backup(&self) -> Result<Vec<(AttachmentId, u32)>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT id, chunks FROM attachments
             WHERE state = 2 AND inline_bytes IS NULL AND chunks > 0 ORDER BY id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get(0)?,
                u32::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// After a restore: every blob attachment that was complete or transferring but whose
    /// chunk files are not in `restored` is marked failed (`attachment_not_found`, an `ErrorKind` code; progress 0), so a
    /// received one can be downloaded again while the relay still holds it. Returns how many.
    pub fn fail_attachments_not_restored(
        &mut self,
        restored: &[AttachmentId],
    ) -> Result<usize, StoreError> {
        let candidates: Vec<AttachmentId> = {
            let mut statement = self.connection.prepare(
                "SELECT id FROM attachments
                 WHERE state IN (1, 2) AND inline_bytes IS NULL AND chunks > 0",
            )?;
            let rows = statement.query_map([], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let transaction = self.write()?;
        let mut failed = 0;
        for id in candidates.iter().filter(|id| !restored.contains(id)) {
            failed += transaction.execute(
                "UPDATE attachments SET state = 3, error = 'attachment_not_found', done_chunks = 0
                 WHERE id = ?1",
                params![id],
            )?;
        }
        transaction.commit()?;
        Ok(failed)
    }

    /// Deletes the messages whose disappearing timer has run out at `now` (with their search
    /// index entries, [`Store::delete_expired`]), so a backup never carries them. It runs on the
    /// snapshot before it is sealed and again on a restored database (`docs/backup.md`).
    pub fn delete_expired_for_backup(&mut self, now: UnixMillis) -> Result<usize, StoreError> {
        Ok(self.delete_expired(now)?.len())
    }

    /// Opens a snapshot written by [`Store::export_snapshot`] just long enough to run
    /// `work` on it (the same checks and migrations as a profile's store).
    pub fn with_snapshot<R>(
        path: &Path,
        key: &DatabaseKey,
        work: impl FnOnce(&mut Store) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let config = super::StoreConfig {
            create_if_missing: false,
            ..super::StoreConfig::default()
        };
        let mut store = Store::open_with(path, key, &config)?;
        let result = work(&mut store);
        // WAL folded back into the file before it is read or moved.
        store
            .connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        store
            .connection
            .pragma_update_and_check(None, "journal_mode", "DELETE", |row| {
                row.get::<_, String>(0)
            })?;
        store.close()?;
        result
    }
}
