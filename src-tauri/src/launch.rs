//! What the app is started with: the command line, the profile name and the profile's directories.
//!
//! This module is deliberately small and self-contained so that the engine can take over profiles
//! later (its own profile type, its own directory layout) by swapping this one file.
//!
//! Command line:
//! - `--profile NAME`: letters, digits and `_`, not starting with a digit, at most
//!   [`ProfileName::MAX_LEN`] characters (default `default`). The name goes into a D-Bus name
//!   (the per-profile single-instance lock), where anything else would make the app panic, so it
//!   is checked before anything else happens.
//! - `--local-relay`: local test relay mode (the engine starts or joins the relay on loopback).
//! - an optional positional `sealpost:` link (an invite; on Linux the desktop entry passes it as
//!   the only argument).
//! - `--version`, `--help`.
//!
//! Directories: `<data dir>/sealpost/profiles/NAME`, where `<data dir>` is the OS data directory
//! (`~/.local/share` on Linux, `~/Library/Application Support` on macOS, `%APPDATA%` on Windows).
//! The environment variable [`DATA_DIR_ENV`] (`SEALPOST_DATA_DIR`) replaces `<data dir>/sealpost`
//! as a whole, so tests point every profile of a run into one temporary directory.

use std::{
    ffi::OsString,
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
};

use clap::Parser;

/// Environment variable that replaces `<OS data dir>/sealpost` (used by tests and portable setups).
pub const DATA_DIR_ENV: &str = "SEALPOST_DATA_DIR";

/// The URL scheme of invite links.
pub const INVITE_SCHEME: &str = "sealpost";

/// The command line of the `sealpost` binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "sealpost",
    version,
    about = "Sealpost: end-to-end encrypted messenger"
)]
pub struct CommandLine {
    /// Profile to open: its own data directory, keychain entries and single-instance lock.
    /// Letters, digits and `_`, not starting with a digit.
    #[arg(long, value_name = "NAME", default_value = ProfileName::DEFAULT)]
    pub profile: ProfileName,

    /// Local test relay mode: use (or start) the relay on 127.0.0.1 shared by all local profiles.
    #[arg(long)]
    pub local_relay: bool,

    /// A `sealpost:` invite link to open in the add-contact form (it never adds a contact by itself).
    #[arg(value_name = "SEALPOST_URL")]
    pub invite_link: Option<InviteLink>,
}

impl CommandLine {
    /// Parses an argument list (the first item is the program name) without exiting the process.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::try_parse_from(args)
    }
}

/// Why a profile name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileNameError {
    /// The name is empty.
    #[error("the profile name is empty")]
    Empty,
    /// The name is longer than [`ProfileName::MAX_LEN`] characters.
    #[error("the profile name is longer than {max} characters", max = ProfileName::MAX_LEN)]
    TooLong,
    /// The name starts with a digit (a D-Bus name element may not).
    #[error("the profile name must not start with a digit")]
    StartsWithDigit,
    /// The name holds something other than ASCII letters, digits and `_`.
    #[error("the profile name may hold only letters a-z, A-Z, digits and '_'")]
    InvalidCharacter,
}

/// A checked profile name: 1 to [`ProfileName::MAX_LEN`] ASCII letters, digits and `_`, not
/// starting with a digit. Safe to use as a D-Bus name element and as a directory name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProfileName(String);

impl ProfileName {
    /// The profile used when none is given (and the one `sealpost:` links open).
    pub const DEFAULT: &'static str = "default";
    /// Longest accepted name (D-Bus names are limited to 255 bytes in all).
    pub const MAX_LEN: usize = 64;

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the default profile.
    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }
}

impl FromStr for ProfileName {
    type Err = ProfileNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let first = name.chars().next().ok_or(ProfileNameError::Empty)?;
        if name.len() > Self::MAX_LEN {
            return Err(ProfileNameError::TooLong);
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ProfileNameError::InvalidCharacter);
        }
        if first.is_ascii_digit() {
            return Err(ProfileNameError::StartsWithDigit);
        }
        Ok(Self(name.to_owned()))
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an invite link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteLinkError {
    /// The text does not start with `sealpost:`.
    #[error("not a sealpost: link")]
    WrongScheme,
    /// The text is longer than [`InviteLink::MAX_LEN`] bytes.
    #[error("the link is longer than {max} bytes", max = InviteLink::MAX_LEN)]
    TooLong,
    /// The text holds whitespace or control characters.
    #[error("the link holds whitespace or control characters")]
    InvalidCharacter,
}

/// The text of a `sealpost:` link, as opened by the user. It is only shown in the add-contact
/// form; the engine parses and checks it when the user accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteLink(String);

impl InviteLink {
    /// Longest accepted link in bytes (an invite carries keys and IDs for a few relays).
    pub const MAX_LEN: usize = 16 * 1024;

    /// The link as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for InviteLink {
    type Err = InviteLinkError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > Self::MAX_LEN {
            return Err(InviteLinkError::TooLong);
        }
        let scheme_ok = text
            .split_once(':')
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case(INVITE_SCHEME));
        if !scheme_ok {
            return Err(InviteLinkError::WrongScheme);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InviteLinkError::InvalidCharacter);
        }
        Ok(Self(text.to_owned()))
    }
}

/// Why the profile directories could not be found or made.
#[derive(Debug, thiserror::Error)]
pub enum ProfileDirError {
    /// The OS reports no home directory, so there is no data directory, and `SEALPOST_DATA_DIR`
    /// is not set.
    #[error("no home directory found; set {DATA_DIR_ENV} to a directory for Sealpost's data")]
    NoDataDir,
    /// A directory could not be created.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Where one profile keeps its files. Everything the app writes for a profile lives below
/// [`ProfileDirs::root`], the webview's own storage included (BRIEF §3a.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileDirs {
    root: PathBuf,
}

impl ProfileDirs {
    /// The profile's directory under a Sealpost data root: `ROOT/profiles/NAME`.
    pub fn under(data_root: &Path, profile: &ProfileName) -> Self {
        Self {
            root: data_root.join("profiles").join(profile.as_str()),
        }
    }

    /// The profile's directory as configured: `$SEALPOST_DATA_DIR/profiles/NAME` when the variable
    /// is set and not empty, otherwise `<OS data dir>/sealpost/profiles/NAME`.
    pub fn resolve(profile: &ProfileName) -> Result<Self, ProfileDirError> {
        let data_root = match std::env::var_os(DATA_DIR_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => directories::BaseDirs::new()
                .ok_or(ProfileDirError::NoDataDir)?
                .data_dir()
                .join("sealpost"),
        };
        Ok(Self::under(&data_root, profile))
    }

    /// The profile's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The webview's data and cache directory (local storage, caches, cookies), inside the profile.
    pub fn webview(&self) -> PathBuf {
        self.root.join("webview")
    }

    /// Creates the profile directory and the webview directory, readable only by the user.
    pub fn create(&self) -> Result<(), ProfileDirError> {
        for path in [self.root.clone(), self.webview()] {
            create_private_dir(&path).map_err(|source| ProfileDirError::Create {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

#[cfg(unix)]
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)
}

/// Everything decided at start, kept as Tauri state for the commands the engine will bring.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// The open profile.
    pub profile: ProfileName,
    /// The profile's directories.
    pub dirs: ProfileDirs,
    /// Whether local test relay mode was asked for on the command line.
    pub local_relay: bool,
    /// The invite link the app was started with, if any.
    pub invite_link: Option<InviteLink>,
}

/// Whether a graphical display is reachable, judged cheaply from the environment. On Linux and
/// the BSDs GTK panics without one, so the app checks first and says so in words instead.
pub fn display_available() -> bool {
    if cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    )) {
        let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
        set("DISPLAY") || set("WAYLAND_DISPLAY")
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("default" ; "default name")]
    #[test_case("alice" ; "lower case")]
    #[test_case("Bob_2" ; "mixed with digit and underscore")]
    #[test_case("_x" ; "leading underscore")]
    #[test_case(&"a".repeat(ProfileName::MAX_LEN) ; "longest")]
    fn accepts_profile_names(name: &str) {
        assert_eq!(name.parse::<ProfileName>().unwrap().as_str(), name);
    }

    #[test_case("", ProfileNameError::Empty ; "empty")]
    #[test_case("1alice", ProfileNameError::StartsWithDigit ; "leading digit")]
    #[test_case("al-ice", ProfileNameError::InvalidCharacter ; "dash")]
    #[test_case("al.ice", ProfileNameError::InvalidCharacter ; "dot would split the dbus name")]
    #[test_case("../x", ProfileNameError::InvalidCharacter ; "path traversal")]
    #[test_case("ålice", ProfileNameError::InvalidCharacter ; "non ascii")]
    #[test_case("a b", ProfileNameError::InvalidCharacter ; "space")]
    #[test_case(&"a".repeat(ProfileName::MAX_LEN + 1), ProfileNameError::TooLong ; "too long")]
    fn refuses_profile_names(name: &str, expected: ProfileNameError) {
        assert_eq!(name.parse::<ProfileName>(), Err(expected));
    }

    #[test_case("sealpost:invite?v=1&d=abc" ; "plain")]
    #[test_case("SEALPOST:abc" ; "scheme case insensitive")]
    fn accepts_invite_links(text: &str) {
        assert_eq!(text.parse::<InviteLink>().unwrap().as_str(), text);
    }

    #[test_case("https://example.com", InviteLinkError::WrongScheme ; "other scheme")]
    #[test_case("sealpostx:abc", InviteLinkError::WrongScheme ; "longer scheme")]
    #[test_case("abc", InviteLinkError::WrongScheme ; "no scheme")]
    #[test_case("sealpost:a b", InviteLinkError::InvalidCharacter ; "space")]
    #[test_case("sealpost:a\nb", InviteLinkError::InvalidCharacter ; "newline")]
    #[test_case(&format!("sealpost:{}", "a".repeat(InviteLink::MAX_LEN)), InviteLinkError::TooLong ; "too long")]
    fn refuses_invite_links(text: &str, expected: InviteLinkError) {
        assert_eq!(text.parse::<InviteLink>(), Err(expected));
    }

    #[test]
    fn command_line_defaults() {
        let line = CommandLine::try_parse_args(["sealpost"]).unwrap();
        assert!(line.profile.is_default());
        assert!(!line.local_relay);
        assert_eq!(line.invite_link, None);
    }

    #[test]
    fn command_line_with_everything() {
        let line = CommandLine::try_parse_args([
            "sealpost",
            "--profile",
            "alice",
            "--local-relay",
            "sealpost:abc",
        ])
        .unwrap();
        assert_eq!(line.profile.as_str(), "alice");
        assert!(line.local_relay);
        assert_eq!(line.invite_link.unwrap().as_str(), "sealpost:abc");
    }

    #[test]
    fn command_line_link_alone_as_the_desktop_entry_passes_it() {
        let line = CommandLine::try_parse_args(["sealpost", "sealpost:abc"]).unwrap();
        assert!(line.profile.is_default());
        assert_eq!(line.invite_link.unwrap().as_str(), "sealpost:abc");
    }

    #[test_case(&["sealpost", "--profile", "a.b"] ; "bad profile")]
    #[test_case(&["sealpost", "https://example.com"] ; "foreign url")]
    #[test_case(&["sealpost", "--frobnicate"] ; "unknown flag")]
    fn command_line_refuses(args: &[&str]) {
        assert!(CommandLine::try_parse_args(args.iter().copied()).is_err());
    }

    #[test]
    fn profile_dirs_are_inside_the_data_root() {
        let root = tempfile::tempdir().unwrap();
        let dirs = ProfileDirs::under(root.path(), &"alice".parse().unwrap());
        assert_eq!(dirs.root(), root.path().join("profiles").join("alice"));
        assert!(dirs.webview().starts_with(dirs.root()));
        dirs.create().unwrap();
        assert!(dirs.webview().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dirs.root()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }
}
