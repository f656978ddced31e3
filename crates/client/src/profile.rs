//! Profiles: a name and the data directory that name owns.
//!
//! A profile is one identity with its own keychain entries and its own data directory, so two
//! instances of the app can chat with each other on one desktop (`docs/engine.md` § Profiles).
//!
//! The name is also used inside a D-Bus well-known name for the per-profile single-instance lock
//! (`<app id>.p_<profile>`), so it is restricted to what a D-Bus name segment accepts: ASCII
//! letters, digits and `_`, not starting with a digit, 1 to 32 characters.
//!
//! The data directory is `<per-user local data dir>/sealpost/profiles/<NAME>`:
//!
//! | OS      | per-user local data dir (from the `directories` crate) |
//! |---------|---------------------------------------------------------|
//! | Linux   | `$XDG_DATA_HOME` or `~/.local/share`                     |
//! | macOS   | `~/Library/Application Support`                          |
//! | Windows | `{FOLDERID_LocalAppData}` (local, never roaming)         |
//!
//! [`ProfilesConfig::data_root`] replaces `<per-user local data dir>/sealpost` for tests and
//! portable installs. Directories are created with mode 0700 on Unix.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// File name of the SQLCipher database inside a profile directory.
pub const DATABASE_FILE_NAME: &str = "sealpost.db";
/// Folder inside a profile directory that holds the webview's data (`docs/engine.md` § Profiles:
/// the data-at-rest scan covers it because it lives inside the profile).
pub const WEBVIEW_DIR_NAME: &str = "webview";
/// File name of the per-profile single-instance lock file.
pub const LOCK_FILE_NAME: &str = "instance.lock";

/// Errors from naming or locating a profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The profile name is not 1–32 ASCII letters, digits or `_` starting with a letter or `_`.
    #[error(
        "invalid profile name {name:?}: use 1 to 32 ASCII letters, digits or '_', not starting with a digit"
    )]
    InvalidName {
        /// The rejected name (already known to the user, so safe to show).
        name: String,
    },
    /// The OS reported no home directory, so there is no per-user data directory.
    #[error(
        "no per-user data directory could be found (no home directory); set a data root explicitly"
    )]
    NoDataDirectory,
    /// Creating or securing the profile directory failed.
    #[error("cannot prepare the profile directory {path}: {source}")]
    Io {
        /// The directory being prepared.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A validated profile name: `[A-Za-z_][A-Za-z0-9_]{0,31}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProfileName(String);

impl ProfileName {
    /// Longest accepted name, in characters (all ASCII, so also bytes).
    pub const MAX_LEN: usize = 32;
    /// The profile used when none is given (and the one `sealpost:` links open, `docs/engine.md` §
    /// Profiles).
    pub const DEFAULT: &'static str = "default";

    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, ProfileError> {
        let bytes = name.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if first_ok && rest_ok && bytes.len() <= Self::MAX_LEN {
            Ok(Self(name.to_owned()))
        } else {
            Err(ProfileError::InvalidName {
                name: name.to_owned(),
            })
        }
    }

    /// The default profile, `"default"`.
    pub fn default_profile() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ProfileName {
    fn default() -> Self {
        Self::default_profile()
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ProfileName {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Where profiles live. The default finds the OS's per-user data directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfilesConfig {
    /// Replaces `<per-user local data dir>/sealpost`; profiles go to `<data_root>/profiles/NAME`.
    /// Used by tests and portable installs.
    pub data_root: Option<PathBuf>,
}

/// The resolved directories of one profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileDirs {
    name: ProfileName,
    data_root: PathBuf,
    profile_dir: PathBuf,
}

impl ProfileDirs {
    /// Resolves the directories of `name` without touching the file system.
    pub fn resolve(config: &ProfilesConfig, name: &ProfileName) -> Result<Self, ProfileError> {
        let data_root = match &config.data_root {
            Some(root) => root.clone(),
            None => directories::BaseDirs::new()
                .ok_or(ProfileError::NoDataDirectory)?
                .data_local_dir()
                .join("sealpost"),
        };
        let profile_dir = data_root.join("profiles").join(name.as_str());
        Ok(Self {
            name: name.clone(),
            data_root,
            profile_dir,
        })
    }

    /// Resolves and creates the profile directory (0700 on Unix, also tightened if it existed).
    pub fn create(config: &ProfilesConfig, name: &ProfileName) -> Result<Self, ProfileError> {
        let dirs = Self::resolve(config, name)?;
        dirs.ensure_created()?;
        Ok(dirs)
    }

    /// Creates the Sealpost root, `profiles/` and the profile directory, each private to the user.
    pub fn ensure_created(&self) -> Result<(), ProfileError> {
        let profiles = self.data_root.join("profiles");
        for dir in [&self.data_root, &profiles, &self.profile_dir] {
            create_private_dir(dir).map_err(|source| ProfileError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The profile's name.
    pub fn name(&self) -> &ProfileName {
        &self.name
    }

    /// `<data root>`: the Sealpost folder that holds all profiles (and, later, the local relay).
    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    /// The profile's own directory: everything the profile writes lives below it.
    pub fn profile_dir(&self) -> &Path {
        &self.profile_dir
    }

    /// The SQLCipher database file.
    pub fn database_path(&self) -> PathBuf {
        self.profile_dir.join(DATABASE_FILE_NAME)
    }

    /// The webview's data directory (inside the profile, so the data-at-rest scan covers it).
    pub fn webview_dir(&self) -> PathBuf {
        self.profile_dir.join(WEBVIEW_DIR_NAME)
    }

    /// The per-profile single-instance lock file.
    pub fn lock_path(&self) -> PathBuf {
        self.profile_dir.join(LOCK_FILE_NAME)
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    // Parents outside Sealpost's tree (e.g. `~/.local/share` on a fresh account) get default modes.
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {
            // Tighten a directory that an older version or the user created more loosely.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        }
        other => other,
    }
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    // On Windows the per-user LocalAppData folder already carries a user-only ACL, inherited here.
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use test_case::test_case;

    #[test_case("default" ; "default name")]
    #[test_case("a" ; "one letter")]
    #[test_case("_" ; "underscore only")]
    #[test_case("Alice_2" ; "mixed")]
    #[test_case("abcdefghijklmnopqrstuvwxyz012345" ; "exactly 32")]
    fn accepts_valid_names(name: &str) {
        assert_eq!(ProfileName::new(name).unwrap().as_str(), name);
    }

    #[test_case("" ; "empty")]
    #[test_case("1abc" ; "leading digit")]
    #[test_case("a-b" ; "dash")]
    #[test_case("a.b" ; "dot")]
    #[test_case("a b" ; "space")]
    #[test_case("../x" ; "path traversal")]
    #[test_case("é" ; "non ascii")]
    #[test_case("abcdefghijklmnopqrstuvwxyz0123456" ; "33 chars")]
    fn rejects_invalid_names(name: &str) {
        assert!(matches!(
            ProfileName::new(name),
            Err(ProfileError::InvalidName { .. })
        ));
    }

    proptest! {
        #[test]
        fn name_parsing_never_panics_and_round_trips(s in "\\PC{0,40}") {
            if let Ok(name) = s.parse::<ProfileName>() {
                prop_assert_eq!(name.to_string(), s.clone());
                prop_assert!(name.as_str().len() <= 32);
                prop_assert!(!name.as_str().starts_with(|c: char| c.is_ascii_digit()));
            }
        }

        #[test]
        fn valid_shape_is_accepted(s in "[A-Za-z_][A-Za-z0-9_]{0,31}") {
            prop_assert!(ProfileName::new(&s).is_ok());
        }
    }

    #[test]
    fn default_profile_is_default() {
        assert_eq!(ProfileName::default().as_str(), "default");
    }

    #[test]
    fn override_root_resolves_under_profiles() {
        let root = tempfile::tempdir().unwrap();
        let config = ProfilesConfig {
            data_root: Some(root.path().to_path_buf()),
        };
        let name = ProfileName::new("alice").unwrap();
        let dirs = ProfileDirs::resolve(&config, &name).unwrap();
        assert_eq!(
            dirs.profile_dir(),
            root.path().join("profiles").join("alice")
        );
        assert_eq!(
            dirs.database_path(),
            dirs.profile_dir().join(DATABASE_FILE_NAME)
        );
        assert!(dirs.webview_dir().starts_with(dirs.profile_dir()));
        assert!(
            !dirs.profile_dir().exists(),
            "resolve must not create anything"
        );
    }

    #[test]
    fn default_root_ends_in_sealpost_profiles_name() {
        let name = ProfileName::new("bob").unwrap();
        let dirs = ProfileDirs::resolve(&ProfilesConfig::default(), &name).unwrap();
        assert!(dirs.profile_dir().ends_with("sealpost/profiles/bob"));
    }

    #[cfg(unix)]
    #[test]
    fn created_directories_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let config = ProfilesConfig {
            data_root: Some(root.path().join("nested").join("sealpost")),
        };
        let name = ProfileName::new("carol").unwrap();
        // Pre-create the profile dir with loose permissions: create() must tighten it.
        std::fs::create_dir_all(root.path().join("nested/sealpost/profiles/carol")).unwrap();
        std::fs::set_permissions(
            root.path().join("nested/sealpost/profiles/carol"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let dirs = ProfileDirs::create(&config, &name).unwrap();
        for dir in [
            dirs.data_root().to_path_buf(),
            dirs.data_root().join("profiles"),
            dirs.profile_dir().to_path_buf(),
        ] {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{} has mode {mode:o}", dir.display());
        }
    }
}
