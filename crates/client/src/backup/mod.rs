//! Encrypted backup and restore of a whole profile (`docs/backup.md`).
//!
//! A backup is **one file**: a header ([`format`], frozen by `docs/formats.md`) and a payload
//! sealed in STREAM chunks under a key derived with Argon2id from the user's passphrase
//! ([`passphrase`]). The payload is the identity seed, a fresh database key, the snapshot's
//! length, a consistent SQLCipher snapshot of the profile's database under that key (identity,
//! contacts, history, groups and settings), then the chunk files of every complete attachment
//! (format version 2; version 1, without length or files, is still read). The file and its
//! passphrase together are the identity.
//!
//! - [`export_backup`]: a snapshot taken while the caller holds the store (the engine's lock),
//!   then sealed off the lock into `<output>.partial`, synced and renamed over `output`.
//! - [`restore_profile`] ([`verify_backup`] then [`VerifiedRestore::commit`]): reads and
//!   authenticates every chunk into a work directory, opens the snapshot and readies it ([`Store::prepare_restored`]: no restored ratchet session can ever
//!   seal again), and only then writes the keychain entries and moves the database into the
//!   profile directory. Any failure before that leaves no profile and no keychain entry.
//!
//! Work files live in `<data root>/backup-work-<random>` (SQLCipher ciphertext only) and are
//! removed when the operation ends, failed or not.

pub mod format;
pub mod passphrase;

use std::fmt;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::profile::ProfileDirs;
use crate::store::backup::RestorePrepared;
use sealpost_crypto::attachment::CHUNK_CIPHERTEXT_BYTES;

use crate::store::{AttachmentId, Store, StoreConfig, StoreError, UnixMillis};
use crate::vault::{DatabaseKey, IdentitySeedBytes, Vault, VaultError};

pub use format::KdfParams;
pub use passphrase::{Passphrase, PassphraseStrength};

/// Bytes of the payload before the snapshot: the identity seed and the snapshot's key.
pub const PAYLOAD_PREFIX_LEN: usize = 64;

/// Bytes of the snapshot's length after the prefix (format version 2 on), u64 big-endian.
pub const SNAPSHOT_LEN_BYTES: usize = 8;
/// Bytes before each attachment chunk file in the payload: the attachment id (16), the chunk
/// index (u32 BE) and the file's length (u32 BE).
pub const ARCHIVE_HEAD_LEN: usize = 24;
/// The work directory's subdirectory the restored chunk files go to.
const ATTACHMENTS_DIR: &str = "attachments";

/// One attachment chunk file to carry in a backup.
struct ArchiveEntry {
    head: [u8; ARCHIVE_HEAD_LEN],
    path: PathBuf,
    len: u64,
}

/// Reads the payload's attachment part: each entry's head, then its file, opened one at a time.
struct ArchiveSource {
    entries: std::vec::IntoIter<ArchiveEntry>,
    current: Option<std::io::Chain<std::io::Cursor<[u8; ARCHIVE_HEAD_LEN]>, std::io::Take<File>>>,
}

impl Read for ArchiveSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(current) = self.current.as_mut() {
                let read = current.read(buf)?;
                if read > 0 || buf.is_empty() {
                    return Ok(read);
                }
                self.current = None;
            }
            let Some(entry) = self.entries.next() else {
                return Ok(0);
            };
            let file = File::open(&entry.path)?;
            if file.metadata()?.len() != entry.len {
                // Changed since it was measured: the payload length would be wrong.
                return Err(std::io::Error::other(
                    "an attachment file changed during the export",
                ));
            }
            self.current = Some(std::io::Cursor::new(entry.head).chain(file.take(entry.len)));
        }
    }
}

/// Writes the payload's attachment part into `root/<id>/<chunk>` as it is opened.
struct ArchiveSink {
    root: PathBuf,
    pending: Vec<u8>,
}

impl ArchiveSink {
    fn push(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.pending.extend_from_slice(bytes);
        let mut at = 0;
        while self.pending.len() - at >= ARCHIVE_HEAD_LEN {
            let head = &self.pending[at..at + ARCHIVE_HEAD_LEN];
            let mut id = [0u8; 16];
            id.copy_from_slice(&head[..16]);
            let mut word = [0u8; 4];
            word.copy_from_slice(&head[16..20]);
            let index = u32::from_be_bytes(word);
            word.copy_from_slice(&head[20..24]);
            let len = u32::from_be_bytes(word) as usize;
            if len > CHUNK_CIPHERTEXT_BYTES {
                return Err(BackupError::Damaged);
            }
            let end = at + ARCHIVE_HEAD_LEN + len;
            if self.pending.len() < end {
                break;
            }
            let dir = self.root.join(AttachmentId::from_bytes(id).to_string());
            std::fs::create_dir_all(&dir)?;
            std::fs::write(
                dir.join(crate::store::chunk_file_name(index)),
                &self.pending[at + ARCHIVE_HEAD_LEN..end],
            )?;
            at = end;
        }
        self.pending.drain(..at);
        Ok(())
    }
}

/// Why a backup could not be written or restored. On every error of a restore, no profile was
/// created or changed and no keychain entry written.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file does not start with the backup magic.
    #[error("this file is not a Sealpost backup")]
    NotABackup,
    /// A format version this build does not read.
    #[error("backup format version {version} is not supported by this version of Sealpost")]
    UnsupportedVersion {
        /// The version in the file.
        version: u16,
    },
    /// A key-derivation function this build does not know.
    #[error("backup key derivation {kdf} is not supported")]
    UnsupportedKdf {
        /// The KDF id in the file.
        kdf: u8,
    },
    /// KDF parameters outside the accepted bounds; refused before deriving anything.
    #[error(
        "the backup's key-derivation parameters are refused (memory {memory_kib} KiB, \
         {iterations} passes, {parallelism} lanes)"
    )]
    KdfParamsRefused {
        /// Memory in KiB.
        memory_kib: u32,
        /// Passes.
        iterations: u32,
        /// Lanes.
        parallelism: u32,
    },
    /// Argon2id or HMAC failed (not expected with checked parameters).
    #[error("the backup key could not be derived")]
    KdfFailed,
    /// The passphrase does not open the backup (or the header was changed).
    #[error("the passphrase does not open this backup")]
    WrongPassphrase,
    /// The file is shorter than its header says: cut off.
    #[error("the backup file is truncated")]
    Truncated,
    /// A chunk failed authentication, bytes follow the end, or the authentic payload is not a
    /// profile.
    #[error("the backup file is damaged or was changed")]
    Damaged,
    /// A typed passphrase too weak for a new backup.
    #[error("the passphrase is too weak: about {estimated_bits} bits, {required_bits} needed")]
    PassphraseTooWeak {
        /// The estimate.
        estimated_bits: u32,
        /// The floor.
        required_bits: u32,
    },
    /// The target profile already holds an identity (it is onboarded): restore only into a new
    /// profile.
    #[error("profile {profile} already exists; restore into a new profile")]
    ProfileExists {
        /// The profile.
        profile: String,
    },
    /// The OS random generator failed.
    #[error("no randomness for the backup")]
    Randomness,
    /// Reading or writing a file failed.
    #[error("backup file error: {0}")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The keychain failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl BackupError {
    /// The UI's error kind (`ui/CONTRACT.md` § Errors).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::WrongPassphrase => "backup_wrong_passphrase",
            Self::NotABackup | Self::Truncated | Self::Damaged => "backup_damaged",
            Self::UnsupportedVersion { .. }
            | Self::UnsupportedKdf { .. }
            | Self::KdfParamsRefused { .. } => "backup_unsupported",
            Self::PassphraseTooWeak { .. } => "backup_passphrase_weak",
            Self::ProfileExists { .. } => "already_onboarded",
            Self::Vault(error) if error.is_keychain_unavailable() => "keychain_unavailable",
            Self::KdfFailed | Self::Randomness => "internal",
            Self::Io(_) | Self::Store(_) | Self::Vault(_) => "storage",
        }
    }
}

/// Progress of an export or a restore, in payload bytes (`backup_progress` event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct BackupProgress {
    /// What is happening.
    pub phase: BackupPhase,
    /// Bytes done.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

/// The steps of a backup or restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum BackupPhase {
    /// Copying the database (export) or deriving the key (both).
    Preparing,
    /// Sealing (export) or opening (restore) the chunks.
    Sealing,
    /// Checking and moving the restored profile into place.
    Finishing,
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct BackupSummary {
    /// The file written.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A profile's directories and keychain, the destination of a restore.
pub struct RestoreTarget<'a> {
    /// The profile's directories (the database goes to `database_path()`).
    pub dirs: &'a ProfileDirs,
    /// The profile's keychain vault (the seed and database key go here).
    pub vault: &'a Vault,
}

/// A directory removed with everything in it when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create(root: &Path) -> Result<Self, BackupError> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|_| BackupError::Randomness)?;
        let path = root.join(format!("backup-work-{}", hex::encode(random)));
        std::fs::create_dir_all(root)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        }
        #[cfg(not(unix))]
        std::fs::create_dir(&path)?;
        Ok(Self(path))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A consistent copy of a profile's database, encrypted under its own fresh key, waiting in a
/// work directory to be sealed ([`Snapshot::seal`]).
pub struct Snapshot {
    work: WorkDir,
    key: DatabaseKey,
    /// The profile's `attachments/` directory, when the backup carries attachment files.
    attachments_dir: Option<PathBuf>,
}

impl Snapshot {
    const FILE: &'static str = "snapshot.db";

    /// Copies `store` (the caller holds it, so no write lands halfway) into a work directory
    /// under `work_root`, under a fresh random key.
    pub fn take(store: &Store, work_root: &Path) -> Result<Self, BackupError> {
        let work = WorkDir::create(work_root)?;
        let key = DatabaseKey::generate()?;
        store.export_snapshot(&work.file(Self::FILE), &key)?;
        Ok(Self {
            work,
            key,
            attachments_dir: None,
        })
    }

    /// Carries the chunk files of the snapshot's complete attachments, read from
    /// `attachments_dir` (the profile's `attachments/`) when sealing.
    pub fn with_attachments(mut self, attachments_dir: &Path) -> Self {
        self.attachments_dir = Some(attachments_dir.to_path_buf());
        self
    }

    /// The chunk files to carry: every chunk of each complete blob attachment of the snapshot,
    /// in order; an attachment with a chunk file missing (removed since the snapshot) is left
    /// out whole (the restore marks it failed).
    fn attachment_entries(&self) -> Result<Vec<ArchiveEntry>, BackupError> {
        let Some(root) = &self.attachments_dir else {
            return Ok(Vec::new());
        };
        let attachments = Store::with_snapshot(&self.work.file(Self::FILE), &self.key, |store| {
            store.attachments_for_backup()
        })?;
        let mut entries = Vec::new();
        'attachment: for (id, chunks) in attachments {
            let dir = root.join(id.to_string());
            let mut files = Vec::new();
            for index in 0..chunks {
                let path = dir.join(crate::store::chunk_file_name(index));
                let Ok(metadata) = std::fs::metadata(&path) else {
                    continue 'attachment;
                };
                let len = metadata.len();
                if len > CHUNK_CIPHERTEXT_BYTES as u64 {
                    continue 'attachment;
                }
                let mut head = [0u8; ARCHIVE_HEAD_LEN];
                head[..16].copy_from_slice(id.as_bytes());
                head[16..20].copy_from_slice(&index.to_be_bytes());
                head[20..].copy_from_slice(&(len as u32).to_be_bytes());
                files.push(ArchiveEntry { head, path, len });
            }
            entries.extend(files);
        }
        Ok(entries)
    }

    /// Leaves expired messages out of the copy ([`Store::delete_expired_for_backup`]).
    pub fn omit_expired(&self, now: UnixMillis) -> Result<usize, BackupError> {
        Ok(Store::with_snapshot(
            &self.work.file(Self::FILE),
            &self.key,
            |store| store.delete_expired_for_backup(now),
        )?)
    }

    /// Seals `seed`, the snapshot's key and the snapshot into `output` under `passphrase`:
    /// written to `<output>.partial`, synced, then renamed over `output`.
    pub fn seal(
        &self,
        seed: &IdentitySeedBytes,
        passphrase: &Passphrase,
        kdf: KdfParams,
        output: &Path,
        progress: &mut dyn FnMut(BackupProgress),
    ) -> Result<BackupSummary, BackupError> {
        let snapshot_path = self.work.file(Self::FILE);
        let snapshot_len = std::fs::metadata(&snapshot_path)?.len();
        let entries = self.attachment_entries()?;
        let archive_len: u64 = entries
            .iter()
            .map(|entry| ARCHIVE_HEAD_LEN as u64 + entry.len)
            .sum();
        let payload_len =
            PAYLOAD_PREFIX_LEN as u64 + SNAPSHOT_LEN_BYTES as u64 + snapshot_len + archive_len;
        progress(BackupProgress {
            phase: BackupPhase::Preparing,
            done: 0,
            total: payload_len,
        });
        let (header, keys) = format::new_header(passphrase, kdf, payload_len)?;
        let mut prefix = Zeroizing::new([0u8; PAYLOAD_PREFIX_LEN + SNAPSHOT_LEN_BYTES]);
        prefix[..32].copy_from_slice(seed.expose_secret());
        prefix[32..PAYLOAD_PREFIX_LEN].copy_from_slice(self.key.expose_secret());
        prefix[PAYLOAD_PREFIX_LEN..].copy_from_slice(&snapshot_len.to_be_bytes());
        let snapshot = BufReader::with_capacity(1 << 20, File::open(&snapshot_path)?);
        let mut payload = (&prefix[..]).chain(snapshot).chain(ArchiveSource {
            entries: entries.into_iter(),
            current: None,
        });
        let partial = partial_path(output);
        let result = (|| -> Result<u64, BackupError> {
            let file = create_private_file(&partial)?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            format::write_sealed(
                &header,
                &keys,
                &mut payload,
                &mut out,
                &mut sealing_progress(&mut *progress),
            )?;
            let file = finish_file(out)?;
            let bytes = file.metadata()?.len();
            drop(file);
            std::fs::rename(&partial, output)?;
            sync_parent(output);
            Ok(bytes)
        })();
        match result {
            Ok(bytes) => Ok(BackupSummary {
                path: output.display().to_string(),
                bytes,
            }),
            Err(error) => {
                let _ = std::fs::remove_file(&partial);
                Err(error)
            }
        }
    }
}

/// Writes a backup of `store` (held by the caller for the snapshot only) to `output`: see
/// [`Snapshot`]. For callers that hold the store for the whole export (tests, benches).
pub fn export_backup(
    store: &Store,
    seed: &IdentitySeedBytes,
    passphrase: &Passphrase,
    kdf: KdfParams,
    work_root: &Path,
    output: &Path,
    progress: &mut dyn FnMut(BackupProgress),
) -> Result<BackupSummary, BackupError> {
    let snapshot = Snapshot::take(store, work_root)?;
    snapshot.omit_expired(UnixMillis::now())?;
    snapshot.seal(seed, passphrase, kdf, output, progress)
}

/// What a restore did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoreSummary {
    /// What readying the database changed.
    pub prepared: RestorePrepared,
}

/// Restores the backup at `backup` into `target`, a profile with no identity yet (no database,
/// or one not onboarded, which is replaced): [`verify_backup`], then [`VerifiedRestore::commit`].
pub fn restore_profile(
    target: &RestoreTarget<'_>,
    backup: &Path,
    passphrase: &Passphrase,
    progress: &mut dyn FnMut(BackupProgress),
) -> Result<RestoreSummary, BackupError> {
    refuse_existing_identity(target)?;
    verify_backup(target.dirs.data_root(), backup, passphrase, progress)?.commit(target)
}

/// A backup read, authenticated and readied in a work directory, not yet in any profile.
pub struct VerifiedRestore {
    work: WorkDir,
    seed: IdentitySeedBytes,
    key: DatabaseKey,
    prepared: RestorePrepared,
}

impl fmt::Debug for VerifiedRestore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedRestore")
            .field("prepared", &self.prepared)
            .finish_non_exhaustive()
    }
}

impl VerifiedRestore {
    /// Moves the restored profile into `target`: refuses a target that holds an identity, then
    /// stores the seed and the database key in the keychain and renames the database into the
    /// profile directory (replacing a database that was not onboarded, and its WAL).
    pub fn commit(self, target: &RestoreTarget<'_>) -> Result<RestoreSummary, BackupError> {
        refuse_existing_identity(target)?;
        target
            .dirs
            .ensure_created()
            .map_err(|error| BackupError::Io(std::io::Error::other(error.to_string())))?;
        let database = target.dirs.database_path();
        target.vault.store_restored_secrets(&self.seed, &self.key)?;
        let restored_attachments = self.work.file(ATTACHMENTS_DIR);
        if restored_attachments.is_dir() {
            let into = target.dirs.profile_dir().join("attachments");
            std::fs::create_dir_all(&into)?;
            for entry in std::fs::read_dir(&restored_attachments)? {
                let entry = entry?;
                let destination = into.join(entry.file_name());
                let _ = std::fs::remove_dir_all(&destination);
                std::fs::rename(entry.path(), destination)?;
            }
        }
        for suffix in ["-wal", "-shm"] {
            let mut side = database.clone().into_os_string();
            side.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(side));
        }
        std::fs::rename(self.work.file(Snapshot::FILE), &database)?;
        sync_parent(&database);
        Ok(RestoreSummary {
            prepared: self.prepared,
        })
    }
}

/// The byte progress callback of [`format::write_sealed`] and [`format::read_sealed`] as
/// [`BackupPhase::Sealing`] reports to `progress`.
fn sealing_progress(progress: &mut dyn FnMut(BackupProgress)) -> impl FnMut(u64, u64) {
    move |done, total| {
        progress(BackupProgress {
            phase: BackupPhase::Sealing,
            done,
            total,
        });
    }
}

/// Flushes `out` and syncs its file to disk (before a rename or a read makes it count); the file.
fn finish_file(out: BufWriter<File>) -> Result<File, BackupError> {
    let file = out.into_inner().map_err(|error| error.into_error())?;
    file.sync_all()?;
    Ok(file)
}

/// Reads the backup at `backup`: checks the header and the passphrase, opens every chunk into a
/// work directory under `work_root`, then opens the snapshot with its key, checks it holds a
/// profile and readies it ([`Store::prepare_restored`]). Nothing outside the work directory
/// (removed on error) is touched.
pub fn verify_backup(
    work_root: &Path,
    backup: &Path,
    passphrase: &Passphrase,
    progress: &mut dyn FnMut(BackupProgress),
) -> Result<VerifiedRestore, BackupError> {
    let file = File::open(backup)?;
    let file_len = file.metadata()?.len();
    let mut input = BufReader::with_capacity(1 << 20, file);
    progress(BackupProgress {
        phase: BackupPhase::Preparing,
        done: 0,
        total: file_len,
    });
    let (header, keys) = format::open_header(&mut input, file_len, passphrase)?;
    let work = WorkDir::create(work_root)?;
    let snapshot_path = work.file(Snapshot::FILE);
    // Version 1: seed, key, snapshot to the end. Version 2: seed, key, the snapshot's length,
    // the snapshot, then the attachment chunk files (`docs/backup.md` § Payload).
    let prefix_len = if header.version >= 2 {
        PAYLOAD_PREFIX_LEN + SNAPSHOT_LEN_BYTES
    } else {
        PAYLOAD_PREFIX_LEN
    };
    let mut prefix = Zeroizing::new(Vec::with_capacity(prefix_len));
    let mut snapshot_left: Option<u64> = None;
    let mut archive = ArchiveSink {
        root: work.file(ATTACHMENTS_DIR),
        pending: Vec::new(),
    };
    {
        let mut out = BufWriter::with_capacity(1 << 20, create_private_file(&snapshot_path)?);
        format::read_sealed(
            &header,
            &keys,
            &mut input,
            &mut |mut plain| {
                let missing = prefix_len - prefix.len();
                if missing > 0 {
                    let take = missing.min(plain.len());
                    prefix.extend_from_slice(&plain[..take]);
                    plain = &plain[take..];
                    if prefix.len() == prefix_len && header.version >= 2 {
                        let mut length = [0u8; SNAPSHOT_LEN_BYTES];
                        length.copy_from_slice(&prefix[PAYLOAD_PREFIX_LEN..]);
                        snapshot_left = Some(u64::from_be_bytes(length));
                    }
                }
                let to_snapshot = match snapshot_left {
                    None => plain.len(),
                    Some(left) => usize::try_from(left).unwrap_or(usize::MAX).min(plain.len()),
                };
                out.write_all(&plain[..to_snapshot])?;
                if let Some(left) = snapshot_left.as_mut() {
                    *left -= to_snapshot as u64;
                    archive.push(&plain[to_snapshot..])?;
                }
                Ok(())
            },
            &mut sealing_progress(&mut *progress),
        )?;
        finish_file(out)?;
    }
    if prefix.len() != prefix_len
        || snapshot_left.is_some_and(|left| left != 0)
        || !archive.pending.is_empty()
    {
        return Err(BackupError::Damaged);
    }
    let mut seed_bytes = [0u8; 32];
    let mut key_bytes = [0u8; 32];
    seed_bytes.copy_from_slice(&prefix[..32]);
    key_bytes.copy_from_slice(&prefix[32..PAYLOAD_PREFIX_LEN]);
    let seed = IdentitySeedBytes::from_bytes(seed_bytes);
    let key = DatabaseKey::from_bytes(key_bytes);
    progress(BackupProgress {
        phase: BackupPhase::Finishing,
        done: header.payload_len,
        total: header.payload_len,
    });
    let prepared = Store::with_snapshot(&snapshot_path, &key, |store| {
        if store.profile()?.is_none() {
            return Err(StoreError::NotFound {
                what: crate::store::Missing::Profile,
            });
        }
        let prepared = store.prepare_restored(UnixMillis::now())?;
        // Only whole chunk sets of complete attachments stay; the rest is marked failed.
        let mut restored = Vec::new();
        for (id, chunks) in store.attachments_for_backup()? {
            let dir = archive.root.join(id.to_string());
            if (0..chunks).all(|index| dir.join(crate::store::chunk_file_name(index)).is_file()) {
                restored.push(id);
            }
        }
        store.fail_attachments_not_restored(&restored)?;
        if let Ok(entries) = std::fs::read_dir(&archive.root) {
            for entry in entries.flatten() {
                let keep = entry
                    .file_name()
                    .to_str()
                    .and_then(|name| name.parse::<AttachmentId>().ok())
                    .is_some_and(|id| restored.contains(&id));
                if !keep {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(prepared)
    })
    .map_err(|error| match error {
        StoreError::NotFound { .. } | StoreError::WrongKeyOrCorrupt => BackupError::Damaged,
        other => BackupError::Store(other),
    })?;
    Ok(VerifiedRestore {
        work,
        seed,
        key,
        prepared,
    })
}

/// Refuses a target profile that already holds an identity: an onboarded database, or a
/// database whose key the keychain does not have (it cannot be checked, so it is kept).
fn refuse_existing_identity(target: &RestoreTarget<'_>) -> Result<(), BackupError> {
    let database = target.dirs.database_path();
    if !database.exists() {
        return Ok(());
    }
    let exists = || BackupError::ProfileExists {
        profile: target.dirs.name().to_string(),
    };
    let Some(key) = target.vault.load_database_key()? else {
        return Err(exists());
    };
    let config = StoreConfig {
        create_if_missing: false,
        ..StoreConfig::default()
    };
    let store = Store::open_with(&database, &key, &config)?;
    let onboarded = store.profile()?.is_some();
    store.close()?;
    if onboarded { Err(exists()) } else { Ok(()) }
}

/// Where the app writes a backup when the user names no file:
/// `<Documents or home>/sealpost-backup-<unix seconds>.sealpost`.
pub fn default_backup_path() -> Option<PathBuf> {
    let dirs = directories::UserDirs::new()?;
    let folder = dirs
        .document_dir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dirs.home_dir().to_path_buf());
    Some(folder.join(format!(
        "sealpost-backup-{}.sealpost",
        UnixMillis::now().0 / 1000
    )))
}

fn partial_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn create_private_file(path: &Path) -> Result<File, BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    Ok(options.open(path)?)
}

/// Makes a rename durable (best effort: not every OS can sync a directory).
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent()
        && let Ok(dir) = File::open(parent)
    {
        let _ = dir.sync_all();
    }
}
