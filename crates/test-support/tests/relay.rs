//! The in-process test relay keeps what it was started with across a restart: tests that adjust
//! a relay (a password, a push window) and restart it must go on testing that relay.

use sealpost_relay_client::{ClientError, Connector, ConnectorConfig, RelayUrl, SendSecret};
use sealpost_test_support::TestRelay;

#[tokio::test]
async fn a_restarted_relay_keeps_the_config_it_was_started_with() {
    let mut relay =
        TestRelay::start_with(|config| config.password = Some("open sesame".into())).await;
    let addr = relay.addr;
    relay.restart().await;
    assert_eq!(relay.addr, addr, "same address after the restart");
    let connector = Connector::new(ConnectorConfig::default()).unwrap();
    let url = RelayUrl::parse(&relay.url()).unwrap();
    let connection = connector.connect_owner(&url).await.unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let error = connection
        .create(&key, &SendSecret::new([2; 32]), None)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ClientError::PasswordRequired,
        "the password survived the restart"
    );
}
