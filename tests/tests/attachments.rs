//! Attachments end to end (`docs/engine.md` § Attachments): files and images between two
//! clients over a real relay for the ratchet messages, with the blobs in a shared
//! `MemoryBlobs` store (one per test). Round trips at the chunk boundaries, a tampered or
//! reordered blob refused with nothing kept, an expired blob, uploads and downloads resumed after
//! the engine stopped mid-transfer, EXIF stripped, and no file bytes at rest in the profile.
//! Run as `scripts/with-keyring.sh cargo test -p sealpost-tests --test attachments`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_client::EngineError;
use sealpost_client::engine::{AttachmentStateView, ErrorKind};
use sealpost_client::scan::{Needle, scan_dir_for_needles};
use sealpost_test_support::{
    Client, bytes_of, chunk_dir, download_if_offered, memory_blobs, outgoing, send_file,
    two_clients_on_new_relay, wait_attachment, wait_attachment_state as wait_state, wait_until,
};

/// `len` bytes that no other file in the profile holds: a marker, then a counter pattern.
fn file(len: usize, marker: &[u8]) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let n = marker.len().min(len);
    bytes[..n].copy_from_slice(&marker[..n]);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_round_trip_at_the_chunk_boundaries_and_leave_no_plaintext_at_rest() {
    let (blobs, adjust) = memory_blobs!();
    let (_relay, _root, (alice, bob, alice_bob, bob_alice, _invite, _secrets)) =
        two_clients_on_new_relay(adjust).await;

    let sizes = [0usize, 1, 65_535, 65_536, 65_537, 300_000];
    let mut needles = Vec::new();
    for size in sizes {
        let marker = format!("NEEDLE-{size:07}-attachment-plaintext");
        let bytes = file(size, marker.as_bytes());
        if size >= marker.len() {
            needles.push(Needle::new(
                format!("file of {size}"),
                marker.as_bytes().to_vec(),
            ));
        }
        let name = format!("report-{size}.bin");
        send_file(&alice, &alice_bob, &name, bytes.clone()).await;
        let received = wait_attachment(&bob, &bob_alice, &name).await;
        assert!(!received.outgoing);
        assert_eq!(received.size, size as u64);
        download_if_offered(&bob, &received).await;
        let done = wait_state(&bob, &bob_alice, &name, AttachmentStateView::Complete).await;
        assert_eq!(bytes_of(&bob, &done.id).await, bytes, "{size} bytes");
        let sent = wait_state(&alice, &alice_bob, &name, AttachmentStateView::Complete).await;
        assert!(sent.message_id.is_some());
    }
    // Files of more than 16 KiB went as blobs, uploaded once each.
    assert_eq!(blobs.blob_count(), 4);

    // Saving writes the plaintext, under the file's name, where the user asked.
    let saved_dir = tempfile::tempdir().unwrap();
    let last = wait_attachment(&bob, &bob_alice, "report-300000.bin").await;
    let path = bob
        .engine
        .save_attachment(&last.id, saved_dir.path())
        .await
        .unwrap();
    assert_eq!(path.file_name().unwrap(), "report-300000.bin");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        file(300_000, b"NEEDLE-0300000-attachment-plaintext")
    );

    // At rest, neither profile holds any file's bytes outside SQLCipher.
    for client in [&alice, &bob] {
        let findings = scan_dir_for_needles(client.engine.profile_dirs().profile_dir(), &needles);
        assert!(findings.is_empty(), "plaintext at rest: {findings:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_is_stripped_of_exif_gets_a_thumbnail_and_downloads_by_itself() {
    let (_blobs, adjust) = memory_blobs!();
    let (_relay, _root, (alice, bob, alice_bob, bob_alice, _invite, _secrets)) =
        two_clients_on_new_relay(adjust).await;

    // A noisy 800x600 JPEG (a blob, not inline) with an EXIF block holding a GPS position.
    let pixels = image::RgbImage::from_fn(800, 600, |x, y| {
        image::Rgb([
            (x * 13 % 256) as u8,
            (y * 7 % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    });
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(pixels)
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .unwrap();
    let jpeg = jpeg.into_inner();
    let gps = b"GPSLatitude 48.8583 N 2.2945 E";
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(gps);
    let mut tagged = jpeg[..2].to_vec();
    tagged.extend_from_slice(&[0xFF, 0xE1]);
    tagged.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
    tagged.extend_from_slice(&exif);
    tagged.extend_from_slice(&jpeg[2..]);
    assert!(tagged.len() > 16 * 1024);

    let sent = alice
        .engine
        .send_attachment(&alice_bob, outgoing("holiday.jpg", "image/jpeg", tagged))
        .await
        .unwrap();
    assert!(sent.is_image);
    // Bob never asks: a small image downloads by itself.
    let received = wait_state(
        &bob,
        &bob_alice,
        "holiday.jpg",
        AttachmentStateView::Complete,
    )
    .await;
    assert_eq!(received.media_type, "image/jpeg");
    let bytes = bob.engine.attachment_bytes(&received.id).await.unwrap();
    assert!(
        !bytes.windows(gps.len()).any(|w| w == gps),
        "the GPS block reached the recipient"
    );
    // The preview is a PNG we encoded, at most 1280 px a side.
    let preview = bob.engine.attachment_preview(&received.id).await.unwrap();
    let decoded = image::load_from_memory(&preview).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (800, 600));
    assert_eq!(&preview[1..4], b"PNG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_reordered_blob_is_refused_and_nothing_is_kept() {
    let (blobs, adjust) = memory_blobs!();
    let (_relay, _root, (alice, bob, alice_bob, bob_alice, _invite, _secrets)) =
        two_clients_on_new_relay(adjust).await;

    let bytes = file(200_000, b"tampered");
    alice
        .engine
        .send_attachment(
            &alice_bob,
            outgoing("a.bin", "application/pdf", bytes.clone()),
        )
        .await
        .unwrap();
    let offered = wait_state(&bob, &bob_alice, "a.bin", AttachmentStateView::Offered).await;
    let chunk_dir = chunk_dir(&bob, &offered.id);

    // One flipped bit in the second chunk.
    blobs.flip_bit(1);
    bob.engine.download_attachment(&offered.id).await.unwrap();
    let failed = wait_state(&bob, &bob_alice, "a.bin", AttachmentStateView::Failed).await;
    assert_eq!(failed.error, Some(ErrorKind::AttachmentTampered));
    assert!(!chunk_dir.exists(), "chunks of a refused file were kept");
    assert!(matches!(
        bob.engine.attachment_bytes(&failed.id).await,
        Err(EngineError::AttachmentNotReady)
    ));

    // Restored, but two chunks swapped: each is authentic, at the wrong place.
    blobs.flip_bit(1);
    blobs.swap_chunks(0, 1);
    bob.engine.download_attachment(&offered.id).await.unwrap();
    let failed = wait_state(&bob, &bob_alice, "a.bin", AttachmentStateView::Failed).await;
    assert_eq!(failed.error, Some(ErrorKind::AttachmentTampered));
    assert!(!chunk_dir.exists());

    // Put back in order, it downloads and is intact.
    blobs.swap_chunks(0, 1);
    bob.engine.download_attachment(&offered.id).await.unwrap();
    let done = wait_state(&bob, &bob_alice, "a.bin", AttachmentStateView::Complete).await;
    assert_eq!(bytes_of(&bob, &done.id).await, bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_blob_is_a_typed_error() {
    let (blobs, adjust) = memory_blobs!();
    let (_relay, _root, (alice, bob, alice_bob, bob_alice, _invite, _secrets)) =
        two_clients_on_new_relay(adjust).await;
    alice
        .engine
        .send_attachment(
            &alice_bob,
            outgoing("old.zip", "application/zip", file(100_000, b"x")),
        )
        .await
        .unwrap();
    let offered = wait_state(&bob, &bob_alice, "old.zip", AttachmentStateView::Offered).await;
    blobs.expire_all();
    bob.engine.download_attachment(&offered.id).await.unwrap();
    let failed = wait_state(&bob, &bob_alice, "old.zip", AttachmentStateView::Failed).await;
    assert_eq!(failed.error, Some(ErrorKind::AttachmentExpired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_and_a_download_resume_at_their_next_chunk_after_a_restart() {
    let (blobs, adjust) = memory_blobs!();
    let (_relay, root, (alice, bob, alice_bob, bob_alice, _invite, _secrets)) =
        two_clients_on_new_relay(adjust).await;
    // 20 chunks.
    let bytes = file(20 * 65_536 - 100, b"resume");

    // The relay goes away after 5 chunks; Alice's engine stops mid-upload.
    blobs.stall_after(5);
    alice
        .engine
        .send_attachment(
            &alice_bob,
            outgoing("big.iso", "application/x-iso9660-image", bytes.clone()),
        )
        .await
        .unwrap();
    wait_until("5 chunks uploaded", || async { blobs.uploads() == 5 }).await;
    let (profile, _) = alice.stop().await;
    blobs.stall_after(0);
    let alice = Client::reopen_with(&profile, root.path(), adjust).await;
    let offered = wait_state(&bob, &bob_alice, "big.iso", AttachmentStateView::Offered).await;
    // Every chunk went up exactly once: the upload resumed at chunk 5.
    assert_eq!(blobs.uploads(), 20);
    wait_state(&alice, &alice_bob, "big.iso", AttachmentStateView::Complete).await;

    // Bob's download stops after 8 chunks (where its progress was recorded), then resumes.
    blobs.stall_after(20 + 8);
    bob.engine.download_attachment(&offered.id).await.unwrap();
    wait_until("8 chunks downloaded", || async { blobs.downloads() == 8 }).await;
    let (bob_profile, _) = bob.stop().await;
    blobs.stall_after(0);
    let bob = Client::reopen_with(&bob_profile, root.path(), adjust).await;
    let done = wait_state(&bob, &bob_alice, "big.iso", AttachmentStateView::Complete).await;
    assert_eq!(blobs.downloads(), 20, "the download started over");
    assert_eq!(bytes_of(&bob, &done.id).await, bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_and_an_image_cross_a_real_relay_blob_store() {
    // No blob store of the test's own: the engine's default, the relay's blob commands.
    let (_relay, _root, (alice, bob, alice_bob, bob_alice, _invite, _secrets)) =
        two_clients_on_new_relay(|_| {}).await;

    let bytes = file(3 * 65_536 + 17, b"over-the-relay");
    send_file(&alice, &alice_bob, "data.bin", bytes.clone()).await;
    let pixels = image::RgbImage::from_fn(300, 200, |x, y| {
        image::Rgb([
            (x * 31 % 256) as u8,
            (y * 17 % 256) as u8,
            ((x * y) % 256) as u8,
        ])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(pixels.clone())
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    assert!(png.len() > 16 * 1024, "the image goes as a blob");
    alice
        .engine
        .send_attachment(&alice_bob, outgoing("photo.png", "image/png", png))
        .await
        .unwrap();

    let offered = wait_state(&bob, &bob_alice, "data.bin", AttachmentStateView::Offered).await;
    bob.engine.download_attachment(&offered.id).await.unwrap();
    let done = wait_state(&bob, &bob_alice, "data.bin", AttachmentStateView::Complete).await;
    assert_eq!(bytes_of(&bob, &done.id).await, bytes);
    let image = wait_state(&bob, &bob_alice, "photo.png", AttachmentStateView::Complete).await;
    let received = bob.engine.attachment_bytes(&image.id).await.unwrap();
    let decoded = image::load_from_memory(&received).unwrap().to_rgb8();
    assert_eq!(decoded, pixels, "a PNG is re-encoded losslessly");
}
