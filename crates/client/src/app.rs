//! The app facade: one open profile's [`Engine`] together with the local test relay.
//!
//! The desktop shell holds one [`App`] and maps each UI command to one call on it (or on
//! [`App::engine`]). What the engine alone cannot know lives here:
//!
//! - **Local test relay mode** (`ARCHITECTURE.md` § Local test relay mode): started when the app
//!   was launched with `--local-relay` ([`LocalRelayMode::Forced`]) or when the profile's settings
//!   have it on; switched on and off by `update_settings`; chosen at onboarding with
//!   [`RelayChoice::Local`], which also turns the setting on so the next start brings it back.
//! - **`app_status`**: profile, onboarding phase, local relay and connections in one view.
//! - **Backups** (`docs/backup.md`): `export_backup` from the running profile, and
//!   `restore_backup`, the onboarding path "Restore from a backup": the backup is verified
//!   completely while the (not yet onboarded) profile stays open, then the engine and the local
//!   relay stop and the restored profile replaces it. The shell then relaunches the app, which
//!   opens the restored profile (whose first open restarts every session).

use std::path::PathBuf;

use crate::backup::{
    BackupError, BackupProgress, BackupSummary, KdfParams, Passphrase, RestoreTarget,
    default_backup_path, verify_backup,
};
use crate::vault::Vault;

use serde::Serialize;
use tokio::sync::{Mutex, mpsc};

use crate::engine::{
    Engine, EngineConfig, EngineError, EngineEvent, ProfileView, RelayChoice, RelayConnection,
    Settings,
};
use crate::local_relay::{LocalRelay, LocalRelayConfig, LocalRelayError};

/// Whether the local test relay runs regardless of the settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LocalRelayMode {
    /// It runs when the profile's settings say so (the default).
    #[default]
    FromSettings,
    /// It runs for this launch whatever the settings say (`--local-relay`).
    Forced,
}

/// Everything [`App::open`] needs.
pub struct AppConfig {
    /// The engine's configuration (profile, data root, keychain, transport).
    pub engine: EngineConfig,
    /// The local test relay mode for this launch.
    pub local_relay: LocalRelayMode,
    /// A local relay port for this launch that overrides the settings' (`--local-relay-port`).
    pub local_relay_port: Option<u16>,
}

/// Errors of the app facade: the engine's, plus the local relay's.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The local test relay could not start (port taken, files unusable).
    #[error(transparent)]
    LocalRelay(#[from] LocalRelayError),
    /// A backup could not be restored.
    #[error(transparent)]
    Backup(#[from] BackupError),
}

impl AppError {
    /// The contract's error kind (`ui/CONTRACT.md` § Errors).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Engine(error) => error.kind(),
            Self::LocalRelay(_) => "local_relay_failed",
            Self::Backup(error) => error.kind(),
        }
    }
}

/// `LocalRelayStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct LocalRelayStatus {
    /// Local test relay mode is on (by setting or by `--local-relay`).
    pub enabled: bool,
    /// A local relay is in use (hosted here or by another profile).
    pub running: bool,
    /// Its URL when running.
    pub url: Option<String>,
}

/// `AppStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// The profile name.
    pub profile: String,
    /// False until `onboard`.
    pub onboarded: bool,
    /// The local test relay.
    pub local_relay: LocalRelayStatus,
    /// Every relay connection.
    pub connections: Vec<RelayConnection>,
}

/// One open profile: the engine and, when on, the local relay.
pub struct App {
    engine: Engine,
    data_root: PathBuf,
    mode: LocalRelayMode,
    port_override: Option<u16>,
    local_relay: Mutex<Option<LocalRelay>>,
}

impl App {
    /// Opens the profile and starts the local relay if this launch or the settings ask for it.
    /// A local relay that cannot start does not stop the app: the status says it is not running
    /// and the connection indicator shows the relay as offline.
    pub async fn open(
        config: AppConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<EngineEvent>), AppError> {
        let (engine, events) = Engine::open(config.engine).await?;
        let data_root = engine.profile_dirs().data_root().to_owned();
        let app = Self {
            engine,
            data_root,
            mode: config.local_relay,
            port_override: config.local_relay_port,
            local_relay: Mutex::new(None),
        };
        let settings = app.engine.get_settings().await?;
        if app.local_relay_wanted(&settings)
            && let Err(error) = app.ensure_local_relay(app.local_port(&settings)).await
        {
            tracing::warn!(%error, "local relay mode is on but the relay did not start");
        }
        Ok((app, events))
    }

    /// The engine, for every command that needs nothing else.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// `app_status`.
    pub async fn status(&self) -> Result<AppStatus, AppError> {
        let onboarded = self.engine.is_onboarded()?;
        let settings = self.engine.get_settings().await?;
        let url = self.local_relay.lock().await.as_ref().map(LocalRelay::url);
        Ok(AppStatus {
            profile: self.engine.profile_dirs().name().to_string(),
            onboarded,
            local_relay: LocalRelayStatus {
                enabled: self.local_relay_wanted(&settings),
                running: url.is_some(),
                url,
            },
            connections: self.engine.connections(),
        })
    }

    /// `onboard`. With [`RelayChoice::Local`] the local relay is started (or joined) first, its
    /// URL becomes the profile's relay, and local mode is switched on in the settings. Settings
    /// chosen before onboarding (e.g. the local relay port) are kept.
    pub async fn onboard(
        &self,
        display_name: &str,
        relay: RelayChoice,
    ) -> Result<ProfileView, AppError> {
        let mut settings = self.engine.get_settings().await?;
        let (relay, local) = match relay {
            RelayChoice::Local => {
                let url = self.ensure_local_relay(self.local_port(&settings)).await?;
                (
                    RelayChoice::Remote {
                        url,
                        password: None,
                    },
                    true,
                )
            }
            remote @ RelayChoice::Remote { .. } => (remote, false),
        };
        let profile = self.engine.onboard(display_name, relay).await?;
        settings.relays = profile.relays.clone();
        settings.local_relay.enabled |= local;
        self.engine.update_settings(settings).await?;
        Ok(profile)
    }

    /// `update_settings`: stores them, then starts or stops the local relay to match. Turning
    /// local mode off keeps a relay that `--local-relay` forced for this launch.
    pub async fn update_settings(&self, settings: Settings) -> Result<Settings, AppError> {
        let stored = self.engine.update_settings(settings).await?;
        if self.local_relay_wanted(&stored) {
            let running_port = self.local_relay.lock().await.as_ref().map(LocalRelay::port);
            let port = self.local_port(&stored);
            if running_port.is_some_and(|running| running != port) {
                self.stop_local_relay().await;
            }
            self.ensure_local_relay(port).await?;
        } else {
            self.stop_local_relay().await;
        }
        Ok(stored)
    }

    /// The local relay's URL, starting or joining it on `port` if it is not running.
    pub async fn ensure_local_relay(&self, port: u16) -> Result<String, AppError> {
        let mut slot = self.local_relay.lock().await;
        if let Some(relay) = slot.as_ref() {
            return Ok(relay.url());
        }
        let relay = LocalRelay::start(LocalRelayConfig {
            data_root: self.data_root.clone(),
            port,
        })
        .await?;
        let url = relay.url();
        *slot = Some(relay);
        Ok(url)
    }

    /// Stops the local relay (another profile that joined it takes over).
    pub async fn stop_local_relay(&self) {
        let relay = self.local_relay.lock().await.take();
        if let Some(relay) = relay {
            relay.stop().await;
        }
    }

    /// `export_backup`: the whole profile to `output` (default: [`default_backup_path`]) under
    /// `passphrase`, a typed one having passed the strength check (`Passphrase::checked`).
    /// `progress` runs on a blocking thread.
    pub async fn export_backup(
        &self,
        output: Option<PathBuf>,
        passphrase: Passphrase,
        progress: impl FnMut(BackupProgress) + Send + 'static,
    ) -> Result<BackupSummary, AppError> {
        let output = match output {
            Some(path) => path,
            None => default_backup_path().ok_or_else(|| {
                BackupError::Io(std::io::Error::other("no Documents or home folder"))
            })?,
        };
        Ok(self
            .engine
            .export_backup(output, passphrase, KdfParams::DEFAULT, progress)
            .await?)
    }

    /// `restore_backup`, onboarding's "Restore from a backup": refused once onboarded. Verifies
    /// the whole backup first (a wrong passphrase, a flipped bit or a cut-off file changes
    /// nothing and the app goes on), then stops the engine and the local relay and moves the
    /// restored profile into place. The caller must relaunch: this `App` is stopped after `Ok`.
    pub async fn restore_backup(
        &self,
        backup: PathBuf,
        passphrase: Passphrase,
        mut progress: impl FnMut(BackupProgress) + Send + 'static,
    ) -> Result<(), AppError> {
        if self.engine.is_onboarded()? {
            return Err(EngineError::AlreadyOnboarded.into());
        }
        let work_root = self.data_root.clone();
        let verified = tokio::task::spawn_blocking(move || {
            verify_backup(&work_root, &backup, &passphrase, &mut progress)
        })
        .await
        .map_err(EngineError::BlockingTask)??;
        self.shutdown().await;
        let dirs = self.engine.profile_dirs().clone();
        tokio::task::spawn_blocking(move || -> Result<(), AppError> {
            let vault = Vault::open(dirs.name()).map_err(BackupError::Vault)?;
            verified.commit(&RestoreTarget {
                dirs: &dirs,
                vault: &vault,
            })?;
            Ok(())
        })
        .await
        .map_err(EngineError::BlockingTask)?
    }

    /// Stops the engine, then the local relay, so every queued write is committed first.
    /// Takes `&self` so a shell that holds the App in shared state can call it on exit.
    pub async fn shutdown(&self) {
        self.engine.clone().shutdown().await;
        self.stop_local_relay().await;
    }

    fn local_port(&self, settings: &Settings) -> u16 {
        self.port_override.unwrap_or(settings.local_relay.port)
    }

    fn local_relay_wanted(&self, settings: &Settings) -> bool {
        self.mode == LocalRelayMode::Forced || settings.local_relay.enabled
    }
}
