//! Profile and settings commands: onboarding, the display name, relays, relay passwords and
//! the SOCKS5 proxy.

use sealpost_crypto::SignedPrekeyPair;

use super::error::EngineError;
use super::settings::{parse_socks_proxy, read_settings, store_relay_password, write_settings};
use super::state::{Engine, check_display_name, lock};
use super::views::*;
use crate::store::{SignedPrekeySecretBytes, UnixMillis};

impl Engine {
    /// Whether `onboard` has run.
    pub fn is_onboarded(&self) -> Result<bool, EngineError> {
        Ok(lock(&self.inner.store).profile()?.is_some())
    }

    /// `onboard`: sets the display name and the first relay, and makes the signed prekey.
    pub async fn onboard(
        &self,
        display_name: &str,
        relay: RelayChoice,
    ) -> Result<ProfileView, EngineError> {
        let name = check_display_name(display_name)?;
        let url = match relay {
            RelayChoice::Local => self.inner.local_relay_url.clone().ok_or_else(|| {
                EngineError::RelayUrlInvalid("no local relay is configured".into())
            })?,
            RelayChoice::Remote { url, password } => {
                if let Some(password) = password {
                    self.inner.check_relay_url(&url)?;
                    store_relay_password(&mut lock(&self.inner.store), &url, Some(&password))?;
                }
                url
            }
        };
        self.inner.check_relay_url(&url)?;
        let signed = SignedPrekeyPair::generate(&self.inner.identity)?;
        let now = UnixMillis::now();
        {
            let mut store = lock(&self.inner.store);
            if store.profile()?.is_some() {
                return Err(EngineError::AlreadyOnboarded);
            }
            store.insert_signed_prekey(
                signed.id().0,
                &SignedPrekeySecretBytes::new(signed.to_secret_bytes().to_vec()),
                now,
            )?;
            let settings = Settings {
                relays: vec![url],
                ..Settings::default()
            };
            write_settings(&mut store, &settings)?;
            store.init_profile(&name, now)?;
        }
        self.get_profile().await
    }

    /// `get_profile`.
    pub async fn get_profile(&self) -> Result<ProfileView, EngineError> {
        let store = lock(&self.inner.store);
        let record = store.profile()?.ok_or(EngineError::NotOnboarded)?;
        Ok(ProfileView {
            display_name: record.display_name,
            profile: self.inner.profile.to_string(),
            relays: read_settings(&store)?.relays,
        })
    }

    /// `set_display_name`.
    pub async fn set_display_name(&self, display_name: &str) -> Result<ProfileView, EngineError> {
        let name = check_display_name(display_name)?;
        lock(&self.inner.store).set_profile_display_name(&name)?;
        self.get_profile().await
    }

    /// `get_settings`.
    pub async fn get_settings(&self) -> Result<Settings, EngineError> {
        read_settings(&lock(&self.inner.store))
    }

    /// `set_relay_password`: stores `url`'s password in the encrypted store (or removes it with
    /// `None`), for CREATE on that relay. Write-only: nothing returns it; the settings say only
    /// which relays have one.
    pub async fn set_relay_password(
        &self,
        url: &str,
        password: Option<RelayPassword>,
    ) -> Result<Settings, EngineError> {
        self.inner.check_relay_url(url)?;
        let password = password.filter(|p| !p.expose_secret().is_empty());
        let mut store = lock(&self.inner.store);
        store_relay_password(&mut store, url, password.as_ref())?;
        read_settings(&store)
    }

    /// `update_settings`: stores the whole object and returns it as stored.
    pub async fn update_settings(&self, settings: Settings) -> Result<Settings, EngineError> {
        if settings.relays.is_empty() || settings.relays.len() > crate::invite::MAX_INVITE_RELAYS {
            return Err(EngineError::InvalidInput("1 to 4 relays".into()));
        }
        for url in &settings.relays {
            self.inner.check_relay_url(url)?;
        }
        let mut store = lock(&self.inner.store);
        let settings = Settings {
            socks_proxy: read_settings(&store)?.socks_proxy,
            ..settings
        };
        write_settings(&mut store, &settings)?;
        read_settings(&store)
    }

    /// `set_socks_proxy`: routes every relay connection through the SOCKS5 proxy at `address`
    /// (`IP:port`), or directly with `None`. Stored, applied at once: the send pool is closed
    /// and every subscription reconnects through the new route. Works before onboarding.
    pub async fn set_socks_proxy(&self, address: Option<&str>) -> Result<Settings, EngineError> {
        let address = address.map(str::trim).filter(|a| !a.is_empty());
        let proxy = parse_socks_proxy(address)?;
        let settings = {
            let mut store = lock(&self.inner.store);
            let settings = Settings {
                socks_proxy: proxy.map(|p| p.address.to_string()),
                ..read_settings(&store)?
            };
            write_settings(&mut store, &settings)?;
            read_settings(&store)?
        };
        self.inner.connector.set_proxy(proxy);
        self.inner.sender.close_all();
        self.inner.resubscribe_all().await?;
        Ok(settings)
    }
}
