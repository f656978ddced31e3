//! Bad input and abuse: each case gets a typed error or a clean close, never a crash, and a
//! well-behaved client is still served afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use sealpost_relay::Rate;
use sealpost_wire::{ClientFrame, ErrorCode, MessageId, Request, Response, encode_client_frame};
use test_case::test_case;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn oversized_frame_closes_only_that_connection() {
    let mut limits = test_limits();
    limits.max_frame_bytes = 4096;
    limits.max_envelope_bytes = 2048;
    let relay = TestRelay::start(limits, None).await;
    let mut client = Client::connect(relay.addr()).await;
    client
        .send_raw(Message::Binary(vec![0u8; 10_000].into()))
        .await;
    // Either the typed error arrives before the close, or the close wins the race.
    if let Some(frame) = client.recv_frame().await {
        assert_eq!(frame.body, err(ErrorCode::TooLarge));
        assert!(client.recv_frame().await.is_none());
    }
    assert_served(relay.addr()).await;
}

#[tokio::test]
async fn garbage_bytes_get_malformed_and_the_connection_goes_on() {
    let relay = TestRelay::start(test_limits(), None).await;
    let mut client = Client::connect(relay.addr()).await;
    for garbage in [
        vec![0xff, 0x00, 0x13],
        vec![],
        vec![0xa3; 300],
        b"{\"v\":1}".to_vec(),
    ] {
        client.send_raw(Message::Binary(garbage.into())).await;
        let frame = client.recv_frame().await.unwrap();
        assert_eq!(frame.body, err(ErrorCode::Malformed));
        assert_eq!(frame.id, 0);
    }
    let mailbox = client.create().await;
    assert_eq!(client.send(&mailbox, b"fine").await, Response::Ok {});
    assert_served(relay.addr()).await;
}

#[tokio::test]
async fn a_well_formed_head_with_a_bad_body_keeps_its_correlation_id() {
    let relay = TestRelay::start(test_limits(), None).await;
    let mut client = Client::connect(relay.addr()).await;
    // {"v": 4, "id": 9, "body": {"Fly": {}}}
    let bytes = vec![
        0xa3, 0x61, b'v', 0x04, 0x62, b'i', b'd', 0x09, 0x64, b'b', b'o', b'd', b'y', 0xa1, 0x63,
        b'F', b'l', b'y', 0xa0,
    ];
    client.send_raw(Message::Binary(bytes.into())).await;
    let frame = client.recv_frame().await.unwrap();
    assert_eq!((frame.id, frame.body), (9, err(ErrorCode::Malformed)));
}

#[tokio::test]
async fn text_frames_get_malformed_and_a_close() {
    let relay = TestRelay::start(test_limits(), None).await;
    let mut client = Client::connect(relay.addr()).await;
    client.send_raw(Message::Text("SEND hello".into())).await;
    let frame = client.recv_frame().await.unwrap();
    assert_eq!(frame.body, err(ErrorCode::Malformed));
    assert!(client.recv_frame().await.is_none());
    assert_served(relay.addr()).await;
}

#[tokio::test]
async fn unknown_version_is_refused_with_its_correlation_id() {
    let relay = TestRelay::start(test_limits(), None).await;
    let mut client = Client::connect(relay.addr()).await;
    let mailbox = client.create().await;
    let frame = ClientFrame {
        v: sealpost_wire::PROTOCOL_VERSION + 1,
        id: 77,
        body: Client::send_request(&mailbox, b"from the future"),
    };
    client
        .send_raw(Message::Binary(encode_client_frame(&frame).unwrap().into()))
        .await;
    let reply = client.recv_frame().await.unwrap();
    assert_eq!(
        (reply.id, reply.body),
        (77, err(ErrorCode::UnsupportedVersion))
    );
    assert_eq!(client.send(&mailbox, b"current").await, Response::Ok {});
    assert_served(relay.addr()).await;
}

#[tokio::test]
async fn wrong_signatures_are_refused_and_others_served() {
    let relay = TestRelay::start(test_limits(), None).await;
    let mut client = Client::connect(relay.addr()).await;
    let mailbox = client.create().await;
    let Request::Subscribe {
        receive_id,
        mut signature,
    } = client.subscribe_request(&mailbox)
    else {
        panic!()
    };
    signature.0[0] ^= 1;
    let request = Request::Subscribe {
        receive_id,
        signature,
    };
    assert_eq!(client.request(request).await, err(ErrorCode::Auth));
    assert_served(relay.addr()).await;
}

#[tokio::test]
async fn flooding_past_the_connection_rate_limit_is_refused_and_others_served() {
    let mut limits = test_limits();
    limits.rate_per_connection = Rate {
        per_second: 10,
        burst: 20,
    };
    let relay = TestRelay::start(limits, None).await;
    let mut flooder = Client::connect(relay.addr()).await;
    let mailbox = flooder.create().await;
    let mut ids = Vec::new();
    for _ in 0..200 {
        let id = flooder.fresh_id();
        flooder
            .send_frame(id, Client::send_request(&mailbox, b"flood"))
            .await;
        ids.push(id);
    }
    // Replies come out of order (refusals at once, OKs after the commit): match by id.
    let mut limited = 0;
    let mut answered = std::collections::HashSet::new();
    while answered.len() < ids.len() {
        let frame = flooder.recv_frame().await.unwrap();
        assert!(ids.contains(&frame.id) && answered.insert(frame.id));
        if frame.body == err(ErrorCode::RateLimited) {
            limited += 1;
        } else {
            assert_eq!(frame.body, Response::Ok {});
        }
    }
    assert!(limited >= 150, "only {limited} of 200 were rate limited");
    assert_served(relay.addr()).await;
}

#[tokio::test]
async fn creates_are_rate_limited_per_address() {
    let mut limits = test_limits();
    limits.create_rate_per_ip = Rate {
        per_second: 1,
        burst: 3,
    };
    let relay = TestRelay::start(limits, None).await;
    let mut client = Client::connect(relay.addr()).await;
    let kept = client.create().await;
    let _ = client.create().await;
    let _ = client.create().await;
    let mut other = Client::connect(relay.addr()).await;
    let auth = ed25519_dalek::SigningKey::from_bytes(&random32());
    let request = other.create_request(&auth, random32(), None);
    assert_eq!(other.request(request).await, err(ErrorCode::RateLimited));
    // Everything but CREATE still works for the same address.
    assert_eq!(other.send(&kept, b"still works").await, Response::Ok {});
    client.subscribe(&kept).await;
    let (_, _, envelope) = client.next_message().await;
    assert_eq!(envelope, b"still works");
}

#[tokio::test]
async fn a_connection_that_never_finishes_the_handshake_is_dropped() {
    let mut limits = test_limits();
    limits.handshake_timeout_ms = 300;
    let relay = TestRelay::start(limits, None).await;
    let mut silent = tokio::net::TcpStream::connect(relay.addr()).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(relay.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut half, b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_served(relay.addr()).await;
    for stream in [&mut silent, &mut half] {
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(WAIT, stream.read(&mut buffer))
            .await
            .expect("not dropped");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "relay closed the half-open connection"
        );
    }
    assert_served(relay.addr()).await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let mut limits = test_limits();
    limits.idle_timeout_ms = 300;
    let relay = TestRelay::start(limits, None).await;
    let mut idle = Client::connect(relay.addr()).await;
    assert!(idle.recv_frame().await.is_none(), "idle connection closed");
    let mut busy = Client::connect(relay.addr()).await;
    let _ = busy.create().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_at_once() {
    let mut limits = test_limits();
    limits.max_connections = 2;
    let relay = TestRelay::start(limits, None).await;
    let mut first = Client::connect(relay.addr()).await;
    let _second = Client::connect(relay.addr()).await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{}", relay.addr())).await;
    if let Ok((mut ws, _)) = refused {
        use futures_util::StreamExt;
        let next = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
        assert!(
            !matches!(next, Some(Ok(Message::Binary(_)))),
            "third connection was served"
        );
    }
    let mailbox = first.create().await;
    assert_eq!(
        first.send(&mailbox, b"first still served").await,
        Response::Ok {}
    );
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_disconnected_and_others_served() {
    let mut limits = test_limits();
    limits.window = 400;
    limits.write_timeout_ms = 500;
    limits.write_queue_bytes = 1 << 20;
    let relay = TestRelay::start(limits, None).await;
    let mut owner = Client::connect(relay.addr()).await;
    let mailbox = owner.create().await;
    let big = vec![0x5au8; 100_000];
    for _ in 0..300 {
        assert_eq!(owner.send(&mailbox, &big).await, Response::Ok {});
    }
    // Subscribe, then stop reading while 30 MB pile up.
    let request = owner.subscribe_request(&mailbox);
    owner.send_frame(5, request).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_served(relay.addr()).await;
    // Now read: the relay cut the connection off long before all 300 were delivered.
    let mut frames = 0;
    while owner.recv_frame().await.is_some() {
        frames += 1;
    }
    assert!(
        frames < 300,
        "slow reader got all {frames} frames; it was never cut off"
    );
    // The mailbox is intact for the next, well-behaved subscription.
    let mut owner = Client::connect(relay.addr()).await;
    owner.subscribe(&mailbox).await;
    let (_, message_id, envelope) = owner.next_message().await;
    assert_eq!(envelope, big);
    owner.ack(&mailbox, message_id).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn envelopes_past_their_ttl_are_swept(backend: Backend) {
    let mut limits = test_limits();
    limits.envelope_ttl_secs = 1;
    limits.sweep_interval_ms = 100;
    let relay = TestRelay::start_on(backend, limits, None).await;
    let mut owner = Client::connect(relay.addr()).await;
    let mailbox = owner.create().await;
    assert_eq!(owner.send(&mailbox, b"short-lived").await, Response::Ok {});
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut probe = Client::connect(relay.addr()).await;
        probe.subscribe(&mailbox).await;
        probe.ack(&mailbox, MessageId(0)).await;
        if probe.take_pushes().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "envelope never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The mailbox itself lives on.
    assert_eq!(owner.send(&mailbox, b"new").await, Response::Ok {});
    assert_served(relay.addr()).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn mailboxes_unused_by_their_owner_expire(backend: Backend) {
    let mut limits = test_limits();
    limits.mailbox_idle_ttl_secs = 1;
    limits.sweep_interval_ms = 100;
    let relay = TestRelay::start_on(backend, limits, None).await;
    let mut owner = Client::connect(relay.addr()).await;
    let mailbox = owner.create().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while owner.send(&mailbox, b"anyone home?").await == (Response::Ok {}) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "mailbox never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(owner.send(&mailbox, b"gone").await, err(ErrorCode::Auth));
}

/// Opens a connection and sends only the head of a masked binary frame declaring `length`
/// payload bytes, plus a few of them; the connection then stalls.
async fn stall_in_a_large_frame(addr: std::net::SocketAddr, length: u16) -> Client {
    use tokio::io::AsyncWriteExt;
    let mut client = Client::connect(addr).await;
    let mut head = vec![0x82, 0x80 | 126];
    head.extend(length.to_be_bytes());
    head.extend([0x11, 0x22, 0x33, 0x44]);
    head.extend([0u8; 16]);
    match client.ws.get_mut() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.write_all(&head).await.unwrap(),
        _ => unreachable!("tests use ws://"),
    }
    client
}

#[tokio::test]
async fn partial_messages_beyond_the_relay_wide_budget_are_closed_with_1013() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let mut limits = test_limits();
    limits.max_frame_bytes = 64 * 1024;
    limits.max_envelope_bytes = 60 * 1024;
    limits.read_buffer_bytes = 4096;
    // Room for three stalled 60 KiB frames (each charged 60 KiB - 4 KiB), not four.
    limits.partial_messages_budget_bytes = 200 * 1024;
    let relay = TestRelay::start(limits, None).await;
    let mut stalled = Vec::new();
    for _ in 0..10 {
        stalled.push(stall_in_a_large_frame(relay.addr(), 60 * 1024).await);
    }
    // Well-behaved clients with ordinary requests are still served meanwhile.
    assert_served(relay.addr()).await;
    // Seven connections are refused with 1013; three keep their place.
    let mut refused = 0;
    let mut kept = Vec::new();
    for mut client in stalled {
        // Finish the stalled frame (its bytes are no request): a kept connection answers it
        // with Malformed; a refused one had its close frame sent before and reads that first.
        {
            use tokio::io::AsyncWriteExt;
            if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = client.ws.get_mut() {
                let _ = tcp.write_all(&vec![0u8; 60 * 1024 - 16]).await;
            }
        }
        let next = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut client.ws))
            .await
            .unwrap();
        match next {
            Some(Ok(Message::Close(Some(close)))) => {
                assert_eq!(close.code, CloseCode::Again);
                refused += 1;
            }
            Some(Ok(Message::Binary(bytes))) => {
                let frame = sealpost_wire::decode_relay_frame(&bytes).unwrap();
                assert_eq!(frame.body, err(ErrorCode::Malformed));
                kept.push(client);
            }
            other => panic!("expected a close or a reply, got {other:?}"),
        }
    }
    assert_eq!((refused, kept.len()), (7, 3));
    // Once the stalled connections go, their budget is free again: a large SEND goes through.
    drop(kept);
    let mut owner = Client::connect(relay.addr()).await;
    let mailbox = owner.create().await;
    let big = vec![0x42u8; 50 * 1024];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut sender = Client::connect(relay.addr()).await;
        let request = Client::send_request(&mailbox, &big);
        let id = sender.fresh_id();
        sender.send_frame(id, request).await;
        if let Some(frame) = sender.recv_frame().await {
            assert_eq!(frame.body, Response::Ok {});
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "budget never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
