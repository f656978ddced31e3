//! TLS for `wss://`: a rustls client configuration on the ring provider (no aws-lc), trusting the
//! operating system's roots plus an optional extra CA certificate for self-hosted relays.
//!
//! System roots come from `rustls-native-certs`, not `webpki-roots`: this is a desktop app, so it
//! follows the trust the user's OS keeps up to date (removals of distrusted CAs, enterprise roots a
//! company installs for its own relay) instead of a Mozilla list frozen at build time. A machine
//! with an empty or unreadable store still works with the extra CA, or with loopback `ws://`.

use std::sync::Arc;

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
/// and host-name verification by webpki).
pub(crate) fn client_config(roots: &TlsRoots) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let mut store = RootCertStore::empty();
    if !roots.skip_system_roots {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "could not read part of the system certificate store");
        }
        let (added, ignored) = store.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "loaded system trust anchors");
    }
    if let Some(pem) = &roots.extra_ca_pem {
        for certificate in parse_pem_certificates(pem)? {
            store
                .add(certificate)
                .map_err(|e| TlsSetupError::BadCertificate(e.to_string()))?;
        }
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
            client_config(&roots).err(),
            Some(TlsSetupError::NoCertificateInPem)
        );
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec();
        let roots = TlsRoots {
            skip_system_roots: true,
            extra_ca_pem: Some(garbage),
        };
        assert!(matches!(
            client_config(&roots),
            Err(TlsSetupError::BadCertificate(_))
        ));
    }

    #[test]
    fn no_extra_ca_is_fine() {
        let roots = TlsRoots {
            skip_system_roots: true,
            extra_ca_pem: None,
        };
        assert!(client_config(&roots).is_ok());
    }
}
