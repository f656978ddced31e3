//! What the app is started with: the command line and the profile it opens.
//!
//! Profiles themselves (names, directories) belong to the engine (`sealpost_client::profile`);
//! this module only parses what the user typed and where the data root is.
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
//! Directories: `<data dir>/sealpost/profiles/NAME` (see `sealpost_client::profile` for the data
//! dir per OS). The environment variable [`DATA_DIR_ENV`] (`SEALPOST_DATA_DIR`) replaces
//! `<data dir>/sealpost` as a whole, so tests point every profile of a run (and the local relay)
//! into one temporary directory. [`DOWNLOAD_DIR_ENV`] (`SEALPOST_DOWNLOAD_DIR`) likewise
//! replaces the folder saved attachments go to.

use std::{ffi::OsString, path::PathBuf, str::FromStr};

use anyhow::Context as _;
use clap::Parser;
use sealpost_client::{LocalRelayMode, ProfileDirs, ProfileName, ProfilesConfig};

/// Environment variable that replaces `<OS data dir>/sealpost` (used by tests and portable setups).
pub const DATA_DIR_ENV: &str = "SEALPOST_DATA_DIR";

/// Environment variable naming the folder `save_attachment` writes to instead of the user's
/// Downloads folder. The WebDriver tests set it (a run's own directory, so saving needs no
/// dialog and never touches the developer's Downloads); it only chooses where the user's own
/// saved files go, so it is as safe in production as the user's environment.
pub const DOWNLOAD_DIR_ENV: &str = "SEALPOST_DOWNLOAD_DIR";

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

    /// The local test relay's loopback port for this launch (default: the one in Settings, 47474).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub local_relay_port: Option<u16>,

    /// An extra CA certificate (PEM) to trust for `wss://` relays besides the system's roots,
    /// for a self-hosted relay with its own CA.
    #[arg(long, value_name = "PEM_FILE")]
    pub extra_ca: Option<PathBuf>,

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

/// Everything decided at start, kept as Tauri state.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// The open profile.
    pub profile: ProfileName,
    /// Where profiles (and the local relay) live.
    pub profiles: ProfilesConfig,
    /// The profile's directories.
    pub dirs: ProfileDirs,
    /// Local test relay mode for this launch (`--local-relay` forces it).
    pub local_relay: LocalRelayMode,
    /// `--local-relay-port`.
    pub local_relay_port: Option<u16>,
    /// The contents of `--extra-ca` (public certificates, not secrets).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// The invite link the app was started with, if any.
    pub invite_link: Option<InviteLink>,
}

impl LaunchOptions {
    /// Resolves the profile's directories (from [`DATA_DIR_ENV`] or the OS data dir) and creates
    /// them, private to the user.
    pub fn from_command_line(command_line: CommandLine) -> anyhow::Result<Self> {
        let profiles = profiles_config_from_env();
        let dirs = ProfileDirs::create(&profiles, &command_line.profile)?;
        let extra_ca_pem = match &command_line.extra_ca {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("cannot read the extra CA file {}", path.display()))?,
            ),
            None => None,
        };
        Ok(Self {
            profile: command_line.profile,
            profiles,
            dirs,
            local_relay: if command_line.local_relay {
                LocalRelayMode::Forced
            } else {
                LocalRelayMode::FromSettings
            },
            local_relay_port: command_line.local_relay_port,
            extra_ca_pem,
            invite_link: command_line.invite_link,
        })
    }

    /// True for the default profile (titles and tooltips leave its name out).
    pub fn is_default_profile(&self) -> bool {
        self.profile.as_str() == ProfileName::DEFAULT
    }
}

/// The data root: [`DATA_DIR_ENV`] when set and not empty, else the OS's (decided by the engine).
pub fn profiles_config_from_env() -> ProfilesConfig {
    ProfilesConfig {
        data_root: std::env::var_os(DATA_DIR_ENV)
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from),
    }
}

/// The folder saved attachments go to when [`DOWNLOAD_DIR_ENV`] is set and not empty.
pub fn download_dir_from_env() -> Option<PathBuf> {
    std::env::var_os(DOWNLOAD_DIR_ENV)
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
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
        assert_eq!(line.profile.as_str(), ProfileName::DEFAULT);
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
            "--local-relay-port",
            "50000",
            "--extra-ca",
            "/etc/relay-ca.pem",
            "sealpost:abc",
        ])
        .unwrap();
        assert_eq!(line.profile.as_str(), "alice");
        assert!(line.local_relay);
        assert_eq!(line.local_relay_port, Some(50000));
        assert_eq!(line.extra_ca, Some(PathBuf::from("/etc/relay-ca.pem")));
        assert_eq!(line.invite_link.unwrap().as_str(), "sealpost:abc");
    }

    #[test]
    fn command_line_link_alone_as_the_desktop_entry_passes_it() {
        let line = CommandLine::try_parse_args(["sealpost", "sealpost:abc"]).unwrap();
        assert_eq!(line.profile.as_str(), ProfileName::DEFAULT);
        assert_eq!(line.invite_link.unwrap().as_str(), "sealpost:abc");
    }

    #[test_case(&["sealpost", "--profile", "a.b"] ; "dot would split the dbus name")]
    #[test_case(&["sealpost", "--profile", "1alice"] ; "leading digit")]
    #[test_case(&["sealpost", "--profile", "../x"] ; "path traversal")]
    #[test_case(&["sealpost", "--profile", ""] ; "empty profile")]
    #[test_case(&["sealpost", "https://example.com"] ; "foreign url")]
    #[test_case(&["sealpost", "--frobnicate"] ; "unknown flag")]
    #[test_case(&["sealpost", "--local-relay-port", "0"] ; "port zero")]
    #[test_case(&["sealpost", "--local-relay-port", "70000"] ; "port out of range")]
    fn command_line_refuses(args: &[&str]) {
        assert!(CommandLine::try_parse_args(args.iter().copied()).is_err());
    }

    #[test]
    fn an_unreadable_extra_ca_file_is_a_clear_error() {
        let line =
            CommandLine::try_parse_args(["sealpost", "--extra-ca", "/nonexistent/ca.pem"]).unwrap();
        let error = LaunchOptions::from_command_line(line).unwrap_err();
        assert!(format!("{error:#}").contains("cannot read the extra CA file /nonexistent/ca.pem"));
    }

    #[test]
    fn local_relay_flag_forces_local_mode_and_dirs_are_made_private() {
        let root = tempfile::tempdir().unwrap();
        let line = CommandLine::try_parse_args(["sealpost", "--profile", "alice", "--local-relay"])
            .unwrap();
        let profiles = ProfilesConfig {
            data_root: Some(root.path().to_path_buf()),
        };
        let dirs = ProfileDirs::create(&profiles, &line.profile).unwrap();
        assert_eq!(
            dirs.profile_dir(),
            root.path().join("profiles").join("alice")
        );
        assert!(dirs.webview_dir().starts_with(dirs.profile_dir()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dirs.profile_dir())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }
}
