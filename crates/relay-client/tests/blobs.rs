//! The typed blob API ([`BlobConnection`]) against the real embedded relay on 127.0.0.1: a
//! pipelined upload, three recipients, resume from the status after the connection is gone,
//! typed refusals, and delete.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{bounded, connector, start_loopback_relay, ws_url};
use futures_util::{StreamExt, TryStreamExt};
use sealpost_relay_client::{
    BLOB_CHUNK_BYTES, BlobDownload, BlobProgress, BlobUpload, ClientError, Retry, random_download,
};

fn chunk(index: u32) -> Vec<u8> {
    (0..BLOB_CHUNK_BYTES)
        .map(|k| (k as u32).wrapping_mul(31).wrapping_add(index * 7) as u8)
        .collect()
}

#[tokio::test]
async fn upload_once_pipelined_resume_and_download_per_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_loopback_relay(dir.path()).await;
    let url = ws_url(&relay);
    let upload = BlobUpload::random().unwrap();
    let recipients: Vec<BlobDownload> = (0..3).map(|_| random_download().unwrap()).collect();
    let count = 9u32;

    // The first connection uploads chunks 0..5 pipelined (issued in index order), then goes.
    {
        let connection = bounded("connect", connector().connect_blob(&url))
            .await
            .unwrap();
        connection
            .create(&upload, count, &recipients, None)
            .await
            .unwrap();
        let puts = futures_util::stream::iter(0..5u32)
            .map(|index| {
                let connection = connection.clone();
                let upload = upload.clone();
                async move { connection.put_chunk(&upload, index, &chunk(index)).await }
            })
            .buffered(4);
        bounded("puts", puts.try_collect::<Vec<()>>())
            .await
            .unwrap();
        connection.close();
    }

    // A new connection resumes where the status says.
    let connection = bounded("connect", connector().connect_blob(&url))
        .await
        .unwrap();
    connection
        .create(&upload, count, &recipients, None)
        .await
        .unwrap();
    let progress = connection.status(&upload).await.unwrap();
    assert_eq!(
        progress,
        BlobProgress {
            chunk_count: count,
            stored: 5
        }
    );
    assert!(!progress.is_complete());
    let early = connection.get_chunk(&recipients[2], 7).await;
    assert_eq!(early, Err(ClientError::ChunkMissing));
    assert_eq!(ClientError::ChunkMissing.retry(), Retry::Later);
    assert_eq!(
        connection.put_chunk(&upload, 7, &chunk(7)).await,
        Err(ClientError::OutOfOrder)
    );
    for index in progress.stored..count {
        connection
            .put_chunk(&upload, index, &chunk(index))
            .await
            .unwrap();
    }
    assert!(connection.status(&upload).await.unwrap().is_complete());
    assert_eq!(
        connection.put_chunk(&upload, count, &chunk(0)).await,
        Err(ClientError::ChunkIndex)
    );
    assert_eq!(
        connection.put_chunk(&upload, 0, &[1, 2, 3]).await,
        Err(ClientError::ChunkSize)
    );

    // Every recipient, on its own connection, gets every chunk.
    for recipient in &recipients {
        let downloader = bounded("connect", connector().connect_blob(&url))
            .await
            .unwrap();
        for index in (0..count).rev() {
            let bytes = downloader.get_chunk(recipient, index).await.unwrap();
            assert!(bytes == chunk(index), "chunk {index}");
        }
    }
    // A made-up recipient is refused with the typed "gone".
    let stranger = random_download().unwrap();
    assert_eq!(
        connection.get_chunk(&stranger, 0).await,
        Err(ClientError::BlobGone)
    );

    // Delete: gone for everyone, and deleting again is still Ok.
    connection.delete(&upload).await.unwrap();
    connection.delete(&upload).await.unwrap();
    assert_eq!(
        connection.get_chunk(&recipients[0], 0).await,
        Err(ClientError::BlobGone)
    );
    assert_eq!(connection.status(&upload).await, Err(ClientError::BlobGone));
    relay.shutdown().await.unwrap();
}
