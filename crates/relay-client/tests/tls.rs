//! wss:// against the real relay with TLS: a certificate from a test CA (made here with rcgen)
//! is accepted when that CA is given as the extra CA, and refused without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{bounded, key, start_relay};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use sealpost_relay::TlsConfig;
use sealpost_relay_client::{
    ClientError, Connector, ConnectorConfig, RelayUrl, Retry, SendSecret, TlsRoots, TlsSetupError,
};

struct TestPki {
    ca_pem: String,
    leaf_pem: String,
    leaf_key_pem: String,
}

fn make_pki() -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Sealpost test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "relay.test");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
    }
}

fn connector_with(extra_ca_pem: Option<Vec<u8>>) -> Connector {
    Connector::new(ConnectorConfig {
        roots: TlsRoots {
            skip_system_roots: true,
            extra_ca_pem,
        },
        ..ConnectorConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn wss_with_the_extra_ca_connects_and_without_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki();
    let cert = dir.path().join("relay.pem");
    let key_path = dir.path().join("relay.key");
    std::fs::write(&cert, &pki.leaf_pem).unwrap();
    std::fs::write(&key_path, &pki.leaf_key_pem).unwrap();
    let tls = TlsConfig {
        cert,
        key: key_path,
    };
    let relay = start_relay(dir.path(), "127.0.0.1:0".parse().unwrap(), Some(tls)).await;
    let url = RelayUrl::parse(&format!("wss://127.0.0.1:{}", relay.addr().port())).unwrap();
    assert!(url.is_tls());

    let trusted = connector_with(Some(pki.ca_pem.clone().into_bytes()));
    let owner = bounded("wss connect", trusted.connect_owner(&url))
        .await
        .unwrap();
    let secret = SendSecret::new([2; 32]);
    let (receive_id, _) = owner.create(&key(1), &secret, None).await.unwrap();
    let (connection, _pushes) = bounded("wss connect", trusted.connect_subscribe(&url))
        .await
        .unwrap();
    connection.subscribe(receive_id, &key(1)).await.unwrap();

    let untrusted = connector_with(None);
    let error = bounded("refused connect", untrusted.connect_send(&url))
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, ClientError::Certificate(_)), "{error:?}");
    assert_eq!(error.retry(), Retry::Later);

    // A CA that did not issue the relay's certificate does not help either.
    let other = make_pki();
    let wrong = connector_with(Some(other.ca_pem.into_bytes()));
    let error = bounded("wrong CA", wrong.connect_send(&url))
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, ClientError::Certificate(_)), "{error:?}");

    // Plain ws:// to a TLS relay fails cleanly (no panic, typed error).
    let plain = RelayUrl::parse(&format!("ws://127.0.0.1:{}", relay.addr().port())).unwrap();
    let error = bounded("plain to TLS", trusted.connect_send(&plain))
        .await
        .err()
        .expect("refused");
    assert!(error.is_connection_lost(), "{error:?}");
    relay.shutdown().await.unwrap();
}

#[test]
fn a_leaf_certificate_pem_is_accepted_as_extra_anchor_but_garbage_is_not() {
    let pki = make_pki();
    assert!(
        Connector::new(ConnectorConfig {
            roots: TlsRoots {
                skip_system_roots: true,
                extra_ca_pem: Some(pki.ca_pem.into_bytes())
            },
            ..ConnectorConfig::default()
        })
        .is_ok()
    );
    let error = Connector::new(ConnectorConfig {
        roots: TlsRoots {
            skip_system_roots: true,
            extra_ca_pem: Some(b"no pem here".to_vec()),
        },
        ..ConnectorConfig::default()
    })
    .err()
    .expect("refused");
    assert_eq!(error, TlsSetupError::NoCertificateInPem);
}
