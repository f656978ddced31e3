//! The settings as stored in SQLCipher: the settings object, relay passwords, the SOCKS5 proxy.

use super::error::EngineError;
use super::views::*;
use crate::store::Store;

const SETTINGS_KEY: &str = "engine.settings";

/// Settings key prefix of a relay's password (value: the password; empty = none), per relay URL
/// as written in the settings. In the SQLCipher store like every other secret.
const RELAY_PASSWORD_KEY: &str = "engine.relay-password.";

/// The settings as stored, with [`Settings::relays_with_password`] filled in from the store.
pub(super) fn read_settings(store: &Store) -> Result<Settings, EngineError> {
    let mut settings: Settings = match store.setting(SETTINGS_KEY)? {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| EngineError::Internal(format!("settings: {e}")))?,
        None => Settings::default(),
    };
    let mut with_password = Vec::new();
    for url in &settings.relays {
        if relay_password(store, url)?.is_some() {
            with_password.push(url.clone());
        }
    }
    settings.relays_with_password = with_password;
    Ok(settings)
}

pub(super) fn write_settings(store: &mut Store, settings: &Settings) -> Result<(), EngineError> {
    let settings = Settings {
        relays_with_password: Vec::new(),
        ..settings.clone()
    };
    let json = serde_json::to_string(&settings)
        .map_err(|e| EngineError::Internal(format!("settings: {e}")))?;
    store.set_setting(SETTINGS_KEY, &json)?;
    Ok(())
}

/// Parses the SOCKS5 proxy setting: an IP literal and port (the proxy's own address is never
/// looked up in DNS).
pub(super) fn parse_socks_proxy(
    address: Option<&str>,
) -> Result<Option<sealpost_relay_client::SocksProxy>, EngineError> {
    address
        .map(|text| {
            text.parse::<std::net::SocketAddr>()
                .map(|address| sealpost_relay_client::SocksProxy { address })
                .map_err(|_| {
                    EngineError::InvalidInput(
                        "the SOCKS5 proxy must be an IP address and port, e.g. 127.0.0.1:9050"
                            .into(),
                    )
                })
        })
        .transpose()
}

/// The stored password of the relay at `url`, if any.
pub(super) fn relay_password(
    store: &Store,
    url: &str,
) -> Result<Option<RelayPassword>, EngineError> {
    Ok(store
        .setting(&format!("{RELAY_PASSWORD_KEY}{url}"))?
        .filter(|password| !password.is_empty())
        .map(RelayPassword::new))
}

/// Stores (or with `None` clears) the password of the relay at `url`.
pub(super) fn store_relay_password(
    store: &mut Store,
    url: &str,
    password: Option<&RelayPassword>,
) -> Result<(), EngineError> {
    let value = password
        .map(RelayPassword::expose_secret)
        .unwrap_or_default();
    store.set_setting(&format!("{RELAY_PASSWORD_KEY}{url}"), value)?;
    Ok(())
}
