//! Blobs (`docs/relay-protocol.md` § Blobs): upload once, download per recipient with its own id
//! and secret, typed refusals for every abuse, quotas, resume after a reconnect, and expiry. Every
//! test runs on SQLite and on PostgreSQL (`scripts/with-postgres.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use sealpost_wire::{BLOB_CHUNK_BYTES, BlobDownloadAuth, ErrorCode, Request, Response};
use test_case::test_case;

fn state(chunk_count: u32, stored: u32) -> Response {
    Response::BlobState {
        chunk_count,
        stored,
    }
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn one_upload_of_a_multi_chunk_blob_is_downloaded_by_three_recipients_with_their_own_ids(
    backend: Backend,
) {
    let relay = TestRelay::start_on(backend, test_limits(), None).await;
    let blob = TestBlob::random(5, 3);
    let mut uploader = Client::connect(relay.addr()).await;
    assert_eq!(blob.state(&mut uploader).await, err(ErrorCode::BlobGone));
    blob.upload(&mut uploader, 0, 5).await;
    assert_eq!(blob.state(&mut uploader).await, state(5, 5));
    for recipient in 0..3 {
        // Each recipient on its own connection, with only its own id and secret.
        let mut downloader = Client::connect(relay.addr()).await;
        blob.assert_downloads(&mut downloader, recipient).await;
    }
    // Chunks may be fetched in any order, again.
    let mut again = Client::connect(relay.addr()).await;
    let reply = again.request(blob.get_request(1, 4)).await;
    assert!(
        matches!(reply, Response::BlobChunk { index: 4, ref chunk } if *chunk == blob.chunk(4))
    );
    // The uploader deletes it: every recipient then gets the typed "gone".
    assert_eq!(
        uploader.request(blob.delete_request()).await,
        Response::Ok {}
    );
    for recipient in 0..3 {
        assert_eq!(
            again.request(blob.get_request(recipient, 0)).await,
            err(ErrorCode::BlobGone)
        );
    }
    assert_eq!(blob.state(&mut uploader).await, err(ErrorCode::BlobGone));
    assert_served(relay.addr()).await;
}

/// `docs/relay-protocol.md` § 13.3: a recipient that has every chunk releases its grant with a
/// BLOB-GET one past the last chunk; the last release deletes the blob, its chunks and grants.
/// A blob some recipient has not released stays, whole, for the others.
#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn a_blob_is_deleted_once_every_grant_fetched_it_and_a_partly_fetched_one_stays(
    backend: Backend,
) {
    let relay = TestRelay::start_on(backend, test_limits(), None).await;
    let blob = TestBlob::random(3, 2);
    let other = TestBlob::random(2, 1);
    let mut uploader = Client::connect(relay.addr()).await;
    // No release before the upload is complete: nobody can have every chunk yet.
    blob.upload(&mut uploader, 0, 2).await;
    let mut first = Client::connect(relay.addr()).await;
    assert_eq!(
        first.request(blob.get_request(0, 3)).await,
        err(ErrorCode::ChunkIndex)
    );
    let put = blob.put_request(2, blob.chunk(2));
    assert_eq!(uploader.request(put).await, Response::Ok {});
    other.upload(&mut uploader, 0, 2).await;
    assert_eq!(blob_rows(&relay).await, (2, 5, 3));

    // The first recipient fetches everything and releases; only an index one past the last
    // chunk releases.
    blob.assert_downloads(&mut first, 0).await;
    assert_eq!(
        first.request(blob.get_request(0, 4)).await,
        err(ErrorCode::ChunkIndex)
    );
    assert_eq!(first.request(blob.get_request(0, 3)).await, Response::Ok {});
    // Released: that grant fetches nothing more and cannot release twice.
    assert_eq!(
        first.request(blob.get_request(0, 0)).await,
        err(ErrorCode::BlobGone)
    );
    assert_eq!(
        first.request(blob.get_request(0, 3)).await,
        err(ErrorCode::BlobGone)
    );
    // The second recipient has fetched part of it: the blob stays, whole.
    let mut second = Client::connect(relay.addr()).await;
    let reply = second.request(blob.get_request(1, 0)).await;
    assert!(matches!(reply, Response::BlobChunk { index: 0, .. }));
    assert_eq!(
        blob_rows(&relay).await,
        (2, 5, 2),
        "a partly fetched blob stays"
    );
    assert_eq!(blob.state(&mut uploader).await, state(3, 3));

    // The last grant fetched all chunks and released: the blob's rows and chunks are gone; the
    // other blob is untouched.
    blob.assert_downloads(&mut second, 1).await;
    assert_eq!(
        second.request(blob.get_request(1, 3)).await,
        Response::Ok {}
    );
    assert_eq!(blob_rows(&relay).await, (1, 2, 1));
    assert_eq!(blob.state(&mut uploader).await, err(ErrorCode::BlobGone));
    other.assert_downloads(&mut second, 0).await;
    assert_served(relay.addr()).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn wrong_secrets_and_unknown_ids_are_refused_alike_and_disturb_nothing(backend: Backend) {
    let relay = TestRelay::start_on(backend, test_limits(), None).await;
    let blob = TestBlob::random(2, 2);
    let mut uploader = Client::connect(relay.addr()).await;
    blob.upload(&mut uploader, 0, 2).await;
    let mut thief = Client::connect(relay.addr()).await;
    // A right download id with a wrong secret, with the other recipient's secret, and an
    // unknown id: one answer for all.
    let mut wrong = blob.download(0);
    wrong.download_auth = BlobDownloadAuth::new(random32());
    let swapped = Request::BlobGet {
        download_id: blob.download(0).download_id,
        download_auth: blob.download(1).download_auth,
        index: 0,
    };
    let unknown = TestBlob::random(2, 1).get_request(0, 0);
    for request in [
        Request::BlobGet {
            download_id: wrong.download_id,
            download_auth: wrong.download_auth.clone(),
            index: 0,
        },
        swapped,
        unknown,
    ] {
        assert_eq!(thief.request(request).await, err(ErrorCode::BlobGone));
    }
    // The upload side with a wrong secret: no status, no chunk, no delete.
    let mut impostor = TestBlob::random(2, 1);
    impostor.upload_id = blob.upload_id;
    assert_eq!(
        thief.request(impostor.status_request()).await,
        err(ErrorCode::BlobGone)
    );
    let put = impostor.put_request(1, impostor.chunk(1));
    assert_eq!(thief.request(put).await, err(ErrorCode::BlobGone));
    assert_eq!(
        thief.request(impostor.delete_request()).await,
        err(ErrorCode::BlobGone)
    );
    // Nothing was disturbed: both recipients still get every chunk as uploaded.
    assert_eq!(blob.state(&mut uploader).await, state(2, 2));
    blob.assert_downloads(&mut thief, 0).await;
    blob.assert_downloads(&mut thief, 1).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn bad_chunks_indexes_and_sizes_get_typed_errors(backend: Backend) {
    let mut limits = test_limits();
    limits.blob_max_bytes = 4 * BLOB_CHUNK_BYTES as u64;
    limits.blob_max_downloads = 3;
    let relay = TestRelay::start_on(backend, limits, None).await;
    let mut client = Client::connect(relay.addr()).await;
    let blob = TestBlob::random(3, 1);
    assert_eq!(client.request(blob.create_request()).await, Response::Ok {});
    // Oversized and undersized chunks.
    for length in [BLOB_CHUNK_BYTES + 1, BLOB_CHUNK_BYTES - 1, 10] {
        let put = blob.put_request(0, vec![7; length]);
        assert_eq!(client.request(put).await, err(ErrorCode::ChunkSize));
    }
    // Skipping ahead, and beyond the declared count.
    let put = blob.put_request(1, blob.chunk(1));
    assert_eq!(client.request(put).await, err(ErrorCode::OutOfOrder));
    let put = blob.put_request(3, blob.chunk(3));
    assert_eq!(client.request(put).await, err(ErrorCode::ChunkIndex));
    assert_eq!(blob.state(&mut client).await, state(3, 0));
    // In order works; a repeat of a stored index is OK and keeps the first bytes.
    let put = blob.put_request(0, blob.chunk(0));
    assert_eq!(client.request(put).await, Response::Ok {});
    let put = blob.put_request(0, vec![9; BLOB_CHUNK_BYTES]);
    assert_eq!(client.request(put).await, Response::Ok {});
    assert_eq!(blob.state(&mut client).await, state(3, 1));
    let put = blob.put_request(2, blob.chunk(2));
    assert_eq!(client.request(put).await, err(ErrorCode::OutOfOrder));
    // Downloads: a chunk not uploaded yet, and one beyond the count.
    assert_eq!(
        client.request(blob.get_request(0, 1)).await,
        err(ErrorCode::ChunkMissing)
    );
    assert_eq!(
        client.request(blob.get_request(0, 3)).await,
        err(ErrorCode::ChunkIndex)
    );
    let reply = client.request(blob.get_request(0, 0)).await;
    assert!(
        matches!(reply, Response::BlobChunk { index: 0, ref chunk } if *chunk == blob.chunk(0))
    );
    // BLOB-CREATE: too large, empty, too many recipients, and ids in use.
    let too_large = TestBlob::random(5, 1);
    assert_eq!(
        client.request(too_large.create_request()).await,
        err(ErrorCode::TooLarge)
    );
    let empty = TestBlob::random(0, 1);
    assert_eq!(
        client.request(empty.create_request()).await,
        err(ErrorCode::Malformed)
    );
    let nobody = TestBlob::random(1, 0);
    assert_eq!(
        client.request(nobody.create_request()).await,
        err(ErrorCode::Malformed)
    );
    let crowd = TestBlob::random(1, 4);
    assert_eq!(
        client.request(crowd.create_request()).await,
        err(ErrorCode::LimitExceeded)
    );
    // The same BLOB-CREATE again is OK (a retry); the id with another secret or size is not.
    assert_eq!(client.request(blob.create_request()).await, Response::Ok {});
    let mut other = TestBlob::random(3, 1);
    other.upload_id = blob.upload_id;
    assert_eq!(
        client.request(other.create_request()).await,
        err(ErrorCode::IdInUse)
    );
    let mut resized = TestBlob::random(2, 1);
    resized.upload_id = blob.upload_id;
    resized.upload_auth = blob.upload_auth;
    assert_eq!(
        client.request(resized.create_request()).await,
        err(ErrorCode::IdInUse)
    );
    let mut stolen_download = TestBlob::random(1, 1);
    stolen_download.downloads[0].0 = blob.downloads[0].0;
    assert_eq!(
        client.request(stolen_download.create_request()).await,
        err(ErrorCode::IdInUse)
    );
    // None of it disturbed the blob.
    assert_eq!(blob.state(&mut client).await, state(3, 1));
    assert_served(relay.addr()).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn the_blob_quota_per_connection_is_enforced(backend: Backend) {
    let mut limits = test_limits();
    limits.blob_quota_per_connection_bytes = 4 * BLOB_CHUNK_BYTES as u64;
    let relay = TestRelay::start_on(backend, limits, None).await;
    let mut client = Client::connect(relay.addr()).await;
    let first = TestBlob::random(3, 1);
    assert_eq!(
        client.request(first.create_request()).await,
        Response::Ok {}
    );
    let second = TestBlob::random(2, 1);
    assert_eq!(
        client.request(second.create_request()).await,
        err(ErrorCode::QuotaExceeded)
    );
    // A retry of the first is not charged again; what is left still fits.
    assert_eq!(
        client.request(first.create_request()).await,
        Response::Ok {}
    );
    let third = TestBlob::random(1, 1);
    assert_eq!(
        client.request(third.create_request()).await,
        Response::Ok {}
    );
    // Another connection has its own quota.
    let mut other = Client::connect(relay.addr()).await;
    assert_eq!(
        other.request(second.create_request()).await,
        Response::Ok {}
    );
    // Uploads on the full connection go on.
    let put = first.put_request(0, first.chunk(0));
    assert_eq!(client.request(put).await, Response::Ok {});
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn the_blob_quota_per_address_is_enforced_across_connections(backend: Backend) {
    let mut limits = test_limits();
    limits.blob_quota_per_ip_bytes = 6 * BLOB_CHUNK_BYTES as u64;
    let relay = TestRelay::start_on(backend, limits, None).await;
    let mut first = Client::connect(relay.addr()).await;
    assert_eq!(
        first.request(TestBlob::random(4, 1).create_request()).await,
        Response::Ok {}
    );
    let mut second = Client::connect(relay.addr()).await;
    assert_eq!(
        second
            .request(TestBlob::random(3, 1).create_request())
            .await,
        err(ErrorCode::QuotaExceeded)
    );
    assert_eq!(
        second
            .request(TestBlob::random(2, 1).create_request())
            .await,
        Response::Ok {}
    );
    let mut third = Client::connect(relay.addr()).await;
    assert_eq!(
        third.request(TestBlob::random(1, 1).create_request()).await,
        err(ErrorCode::QuotaExceeded)
    );
    // Mailboxes are not affected.
    assert_served(relay.addr()).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn an_upload_cut_off_halfway_resumes_from_the_status_on_a_new_connection(backend: Backend) {
    let relay = TestRelay::start_on(backend, test_limits(), None).await;
    let blob = TestBlob::random(6, 2);
    {
        let mut dying = Client::connect(relay.addr()).await;
        blob.upload(&mut dying, 0, 3).await;
        // A fourth chunk is sent but the uploader dies before reading its reply.
        dying
            .send_frame(99, blob.put_request(3, blob.chunk(3)))
            .await;
    }
    let mut resumed = Client::connect(relay.addr()).await;
    // Creating again after a restart is harmless.
    assert_eq!(
        resumed.request(blob.create_request()).await,
        Response::Ok {}
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let stored = loop {
        // The last put may still be committing; the answer is 3 or 4, never anything else.
        match blob.state(&mut resumed).await {
            Response::BlobState {
                chunk_count: 6,
                stored,
            } if stored == 3 || stored == 4 => break stored,
            other => {
                assert!(tokio::time::Instant::now() < deadline, "{other:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // A recipient can already fetch what is stored, and sees the rest as missing.
    let mut recipient = Client::connect(relay.addr()).await;
    assert_eq!(
        recipient.request(blob.get_request(1, 5)).await,
        err(ErrorCode::ChunkMissing)
    );
    for index in stored..6 {
        let put = blob.put_request(index, blob.chunk(index));
        assert_eq!(resumed.request(put).await, Response::Ok {});
    }
    assert_eq!(blob.state(&mut resumed).await, state(6, 6));
    blob.assert_downloads(&mut recipient, 0).await;
    blob.assert_downloads(&mut recipient, 1).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn pipelined_puts_on_one_connection_are_stored_in_order(backend: Backend) {
    let relay = TestRelay::start_on(backend, test_limits(), None).await;
    let blob = TestBlob::random(12, 1);
    let mut client = Client::connect(relay.addr()).await;
    assert_eq!(client.request(blob.create_request()).await, Response::Ok {});
    for index in 0..12u32 {
        client
            .send_frame(
                1000 + u64::from(index),
                blob.put_request(index, blob.chunk(index)),
            )
            .await;
    }
    for index in 0..12u32 {
        assert_eq!(
            client.reply_to(1000 + u64::from(index)).await,
            Response::Ok {},
            "chunk {index}"
        );
    }
    blob.assert_downloads(&mut client, 0).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn blobs_past_their_ttl_are_swept_whole_or_partial(backend: Backend) {
    // Uploaded under the default TTL; then the relay restarts on the same database with a TTL
    // of one second (stored times are whole hours, so the blobs are due at once).
    let mut first = TestRelay::start_on(backend, test_limits(), None).await;
    let complete = TestBlob::random(2, 1);
    let partial = TestBlob::random(4, 1);
    {
        let mut uploader = Client::connect(first.addr()).await;
        complete.upload(&mut uploader, 0, 2).await;
        // This uploader dies halfway.
        partial.upload(&mut uploader, 0, 2).await;
    }
    first.stop().await;
    let mut limits = test_limits();
    limits.blob_ttl_secs = 1;
    limits.sweep_interval_ms = 100;
    let relay = sealpost_relay::Relay::start(sealpost_relay::RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: first.database.clone(),
        tls: None,
        password: None,
        metrics_listen: None,
        client_address: Default::default(),
        limits,
    })
    .await
    .unwrap();
    let mut probe = Client::connect(relay.addr()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    for blob in [&complete, &partial] {
        loop {
            let status = blob.state(&mut probe).await;
            if status == err(ErrorCode::BlobGone) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "blob never expired: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Expired: the typed "gone" for the recipient, and no resume for the uploader.
        assert_eq!(
            probe.request(blob.get_request(0, 0)).await,
            err(ErrorCode::BlobGone)
        );
        let put = blob.put_request(2, blob.chunk(2));
        assert_eq!(probe.request(put).await, err(ErrorCode::BlobGone));
    }
    if backend == Backend::Sqlite {
        // And no chunk byte is left in any file of the data directory (WAL included).
        let needles: Vec<Vec<u8>> = [&complete, &partial]
            .iter()
            .flat_map(|blob| (0..2).map(|index| blob.chunk(index)[..64].to_vec()))
            .collect();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let dump = dump_files(first.dir.path());
            let lingering = needles
                .iter()
                .filter(|needle| dump.windows(needle.len()).any(|w| w == needle.as_slice()))
                .count();
            if lingering == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{lingering} expired chunks still readable"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_served(relay.addr()).await;
    relay.shutdown().await.unwrap();
}

/// Every file of a data directory, concatenated.
fn dump_files(dir: &std::path::Path) -> Vec<u8> {
    let mut dump = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        if let Ok(bytes) = std::fs::read(entry.unwrap().path()) {
            dump.extend(bytes);
        }
    }
    dump
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn blob_create_needs_the_relay_password_when_one_is_set(backend: Backend) {
    let relay = TestRelay::start_on(backend, test_limits(), Some("hunter2")).await;
    let mut client = Client::connect(relay.addr()).await;
    let blob = TestBlob::random(1, 1);
    assert_eq!(
        client.request(blob.create_request()).await,
        err(ErrorCode::Password)
    );
    let Request::BlobCreate {
        upload_id,
        upload_auth,
        chunk_count,
        downloads,
        ..
    } = blob.create_request()
    else {
        unreachable!()
    };
    let with_password = Request::BlobCreate {
        upload_id,
        upload_auth,
        chunk_count,
        downloads,
        password: Some("hunter2".to_owned()),
    };
    assert_eq!(client.request(with_password).await, Response::Ok {});
}
