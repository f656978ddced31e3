//! wss:// support: a rustls server configuration (ring provider) from PEM files.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use crate::{RelayError, TlsConfig};

/// Builds the TLS acceptor from the certificate chain and key files.
pub(crate) fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, RelayError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert)
        .map_err(|e| RelayError::Tls(format!("{}: {e}", config.cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| RelayError::Tls(format!("{}: {e}", config.cert.display())))?;
    if certs.is_empty() {
        return Err(RelayError::Tls(format!(
            "{}: no certificate",
            config.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .map_err(|e| RelayError::Tls(format!("{}: {e}", config.key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RelayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| RelayError::Tls(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}
