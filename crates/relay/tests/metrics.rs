//! The Prometheus metrics endpoint: off by default, counters move with traffic, and no label
//! carries a mailbox id, an address or anything else per user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sealpost_relay::{Relay, RelayConfig};
use sealpost_wire::{ErrorCode, Response};

#[tokio::test]
async fn metrics_are_off_by_default() {
    let relay = TestRelay::start(test_limits(), None).await;
    assert!(relay.handle.as_ref().unwrap().metrics_addr().is_none());
}

#[tokio::test]
async fn metrics_count_traffic_and_carry_no_per_user_label() {
    let dir = tempfile::tempdir().unwrap();
    let mut limits = test_limits();
    limits.mailbox_max_envelopes = 1;
    let config = RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: dir.path().join("relay.db").into(),
        tls: None,
        password: None,
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        client_address: Default::default(),
        limits,
    };
    let relay = Relay::start(config).await.unwrap();
    let metrics = relay.metrics_addr().unwrap();
    let before = scrape(metrics, "/metrics").await;
    assert!(before.starts_with("HTTP/1.1 200 OK\r\n"), "{before}");
    assert_eq!(
        sample(&before, "sealpost_relay_envelopes_stored_total"),
        0.0
    );

    let mut owner = Client::connect(relay.addr()).await;
    let mailbox = owner.create().await;
    let mut sender = Client::connect(relay.addr()).await;
    assert_eq!(sender.send(&mailbox, b"one").await, Response::Ok {});
    assert_eq!(
        sender.send(&mailbox, b"two").await,
        err(ErrorCode::QuotaExceeded)
    );
    owner.subscribe(&mailbox).await;
    let (_, message_id, _) = owner.next_message().await;
    owner.ack(&mailbox, message_id).await;

    let body = scrape(metrics, "/metrics").await;
    assert_eq!(sample(&body, "sealpost_relay_envelopes_stored_total"), 1.0);
    assert_eq!(
        sample(&body, "sealpost_relay_envelopes_delivered_total"),
        1.0
    );
    assert_eq!(
        sample(&body, "sealpost_relay_frames_total{command=\"Send\"}"),
        2.0
    );
    assert_eq!(
        sample(&body, "sealpost_relay_frames_total{command=\"Ack\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &body,
            "sealpost_relay_refusals_total{reason=\"MailboxFull\"}"
        ),
        1.0
    );
    assert!(sample(&body, "sealpost_relay_connections_total") >= 2.0);
    assert!(sample(&body, "sealpost_relay_connections_open") >= 2.0);
    assert!(sample(&body, "sealpost_relay_commit_operations_count") >= 1.0);
    assert!(sample(&body, "sealpost_relay_commit_seconds_count") >= 1.0);

    // Every label value comes from a fixed list (or is a histogram bucket bound).
    let allowed = [
        "Create",
        "Subscribe",
        "Ack",
        "Delete",
        "Secure",
        "Send",
        "Undecodable",
        "MailboxFull",
        "RateLimited",
        "CreateRateLimited",
        "SubscriptionLimit",
        "ConnectionLimit",
        "ConnectRateLimited",
        "TooLarge",
        "PartialMessageBudget",
        "SlowReader",
    ];
    let body_text = body.split("\r\n\r\n").nth(1).unwrap();
    for line in body_text.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, labels)) = line.split_once('{') else {
            continue;
        };
        let labels = labels.split_once('}').unwrap().0;
        for pair in labels.split(',') {
            let (key, value) = pair.split_once('=').unwrap();
            let value = value.trim_matches('"');
            match key {
                "le" => assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "{line}"),
                "command" | "reason" => assert!(allowed.contains(&value), "{line}"),
                other => panic!("unexpected label {other} in {line}"),
            }
        }
    }
    for per_user in [
        hex(mailbox.receive_id.as_bytes()),
        hex(mailbox.send_id.as_bytes()),
        "127.0.0.1".to_owned(),
    ] {
        assert!(!body.contains(&per_user), "{per_user} in the metrics");
    }
    // Nothing else is served.
    assert!(scrape(metrics, "/").await.starts_with("HTTP/1.1 404"));
    relay.shutdown().await.unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
