//! TLS for `wss://`: a rustls client configuration on the ring provider (no aws-lc), trusting the
//! operating system's roots plus an optional extra CA certificate for self-hosted relays.
//!
//! System roots come from `rustls-native-certs`, not `webpki-roots`: this is a desktop app, so it
//! follows the trust the user's OS keeps up to date (removals of distrusted CAs, enterprise roots a
//! company installs for its own relay) instead of a Mozilla list frozen at build time. A machine
//! with an empty or unreadable store still works with the extra CA, or with loopback `ws://`.

use std::sync::{Arc, OnceLock};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::error::TlsSetupError;

/// Where trust anchors come from.
#[derive(Clone, Default)]
pub struct TlsRoots {
    /// Trust the operating system's certificate store. On by default; tests turn it off.
    pub skip_system_roots: bool,
    /// One or more extra CA certificates (PEM) to trust besides the system roots, for relays
    /// with their own CA. `None` for none.
    pub extra_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsRoots")
            .field("skip_system_roots", &self.skip_system_roots)
            .field("extra_ca_pem", &self.extra_ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

/// Parses every certificate in a PEM buffer; refuses a buffer with none.
fn parse_pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsSetupError::BadPem(e.to_string()))?;
    if certificates.is_empty() {
        return Err(TlsSetupError::NoCertificateInPem);
    }
    Ok(certificates)
}

/// Builds the rustls client configuration (TLS 1.2 and 1.3, ring provider, full certificate
/// The rustls client configuration, built on first use: reading the operating system's
/// certificate store costs tens of milliseconds at start-up, and a profile that only talks to
/// loopback `ws://` relays (the local test relay) never needs it (`docs/benchmarks.md`, Desktop
/// app). The extra CA is parsed and checked at once, so a bad file is still refused up front.
pub(crate) struct LazyClientConfig {
    skip_system_roots: bool,
    extra_anchors: Vec<CertificateDer<'static>>,
    built: OnceLock<Arc<ClientConfig>>,
}

impl LazyClientConfig {
    /// Checks the extra CA of `roots` now; loads the system roots on the first [`Self::get`].
    pub(crate) fn new(roots: &TlsRoots) -> Result<Self, TlsSetupError> {
        let extra_anchors = match &roots.extra_ca_pem {
            Some(pem) => parse_pem_certificates(pem)?,
            None => Vec::new(),
        };
        // Refused anchors are refused now, not on the first connection.
        let mut trial = RootCertStore::empty();
        for certificate in &extra_anchors {
            trial
                .add(certificate.clone())
                .map_err(|e| TlsSetupError::BadCertificate(e.to_string()))?;
        }
        Ok(Self {
            skip_system_roots: roots.skip_system_roots,
            extra_anchors,
            built: OnceLock::new(),
        })
    }

    /// The configuration, building it (system roots included) the first time.
    pub(crate) fn get(&self) -> Result<Arc<ClientConfig>, TlsSetupError> {
        if let Some(config) = self.built.get() {
            return Ok(config.clone());
        }
        let config = self.build()?;
        // Two first connections racing build it twice; either result is the same.
        Ok(self.built.get_or_init(|| config).clone())
    }

    /// Whether the configuration has been built (tests).
    #[cfg(test)]
    fn is_built(&self) -> bool {
        self.built.get().is_some()
    }

    /// Builds the rustls client configuration (TLS 1.2 and 1.3, ring provider, full certificate
    /// and host-name verification by webpki).
    fn build(&self) -> Result<Arc<ClientConfig>, TlsSetupError> {
        let mut store = RootCertStore::empty();
        if !self.skip_system_roots {
            let native = rustls_native_certs::load_native_certs();
            for error in &native.errors {
                tracing::warn!(%error, "could not read part of the system certificate store");
            }
            let (added, ignored) = store.add_parsable_certificates(native.certs);
            tracing::debug!(added, ignored, "loaded system trust anchors");
        }
        for certificate in &self.extra_anchors {
            store
                .add(certificate.clone())
                .map_err(|e| TlsSetupError::BadCertificate(e.to_string()))?;
        }
        if store.is_empty() {
            tracing::warn!("no TLS trust anchors: every wss:// connection will be refused");
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Config(e.to_string()))?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_ca_must_hold_a_certificate() {
        let roots = TlsRoots {
            skip_system_roots: true,
            extra_ca_pem: Some(b"hello".to_vec()),
        };
        assert_eq!(
            LazyClientConfig::new(&roots).err(),
            Some(TlsSetupError::NoCertificateInPem)
        );
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec();
        let roots = TlsRoots {
            skip_system_roots: true,
            extra_ca_pem: Some(garbage),
        };
        assert!(matches!(
            LazyClientConfig::new(&roots),
            Err(TlsSetupError::BadCertificate(_))
        ));
    }

    #[test]
    fn no_extra_ca_is_fine() {
        let roots = TlsRoots {
            skip_system_roots: true,
            extra_ca_pem: None,
        };
        let lazy = LazyClientConfig::new(&roots).unwrap();
        assert!(lazy.get().is_ok());
    }

    #[test]
    fn system_roots_are_read_only_when_first_needed() {
        let lazy = LazyClientConfig::new(&TlsRoots::default()).unwrap();
        assert!(
            !lazy.is_built(),
            "nothing is loaded before the first TLS connection"
        );
        let first = lazy.get().unwrap();
        assert!(lazy.is_built());
        assert!(
            Arc::ptr_eq(&first, &lazy.get().unwrap()),
            "built once, then shared"
        );
    }
}
