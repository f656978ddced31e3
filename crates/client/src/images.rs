//! Images in attachments (`docs/engine.md` § Attachments): the sender re-encodes an image before
//! it is encrypted, which drops its EXIF block (GPS position, camera, time) and every other
//! metadata chunk, and makes a small JPEG thumbnail that rides in the message; the receiver
//! decodes only PNG, JPEG and WebP, with limits on dimensions and memory, so a decompression
//! bomb is refused before its pixels are allocated, and shows only images it re-encoded itself.
//! SVG (or any other format) is never decoded or rendered: it is a plain file.
//!
//! The codecs are the maintained `image` crate's (built with only these three formats).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::content::MAX_THUMBNAIL_BYTES;

/// Widest and tallest image decoded, pixels.
pub const MAX_IMAGE_SIDE: u32 = 12_000;
/// Most memory one decode may allocate, bytes.
pub const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;
/// Longest side of a thumbnail, pixels.
pub const THUMBNAIL_SIDE: u32 = 256;
/// Longest side of a preview shown in the chat, pixels.
pub const PREVIEW_SIDE: u32 = 1280;

/// Why an image was not decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Not a PNG, JPEG or WebP (by its bytes, not by its name or claimed type).
    #[error("not a supported image")]
    Unsupported,
    /// Larger than the decoding limits (dimensions or memory): a decompression bomb, or just
    /// too large to show.
    #[error("the image is too large to decode")]
    TooLarge,
    /// The decoder refused the bytes.
    #[error("the image does not decode: {0}")]
    Decode(String),
    /// Encoding failed.
    #[error("the image could not be encoded: {0}")]
    Encode(String),
}

/// An image format this module decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// WebP.
    WebP,
}

impl ImageKind {
    /// The format of `bytes`, read from their magic numbers; `None` for anything else (SVG
    /// included).
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        match image::guess_format(bytes).ok()? {
            ImageFormat::Png => Some(Self::Png),
            ImageFormat::Jpeg => Some(Self::Jpeg),
            ImageFormat::WebP => Some(Self::WebP),
            _ => None,
        }
    }

    /// Its media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::WebP => "image/webp",
        }
    }

    fn format(self) -> ImageFormat {
        match self {
            Self::Png => ImageFormat::Png,
            Self::Jpeg => ImageFormat::Jpeg,
            Self::WebP => ImageFormat::WebP,
        }
    }
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    limits
}

fn decode_error(error: image::ImageError) -> ImageError {
    match error {
        image::ImageError::Limits(_) => ImageError::TooLarge,
        other => ImageError::Decode(other.to_string()),
    }
}

/// Decodes `bytes` (PNG, JPEG or WebP only) within [`MAX_IMAGE_SIDE`] and [`MAX_DECODE_ALLOC`],
/// upright (its EXIF orientation applied). The dimensions are checked from the header before
/// any pixel buffer exists.
pub fn decode(bytes: &[u8]) -> Result<(ImageKind, DynamicImage), ImageError> {
    let kind = ImageKind::sniff(bytes).ok_or(ImageError::Unsupported)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || decoder.total_bytes() > MAX_DECODE_ALLOC
    {
        return Err(ImageError::TooLarge);
    }
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok((kind, image))
}

fn encode(image: &DynamicImage, kind: ImageKind) -> Result<Vec<u8>, ImageError> {
    let mut out = Cursor::new(Vec::new());
    let result = match kind {
        ImageKind::Jpeg => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
            image.to_rgb8().write_with_encoder(encoder)
        }
        ImageKind::Png => image.write_to(&mut out, ImageFormat::Png),
        ImageKind::WebP => image.to_rgba8().write_to(&mut out, ImageFormat::WebP),
    };
    result.map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

/// `bytes` decoded and encoded again in the same format: no EXIF, XMP or text chunk survives
/// (`docs/threat-model.md`, location and camera metadata), the orientation is applied to the
/// pixels. What the sender uploads for an image.
pub fn strip_metadata(bytes: &[u8]) -> Result<(ImageKind, Vec<u8>), ImageError> {
    let (kind, image) = decode(bytes)?;
    Ok((kind, encode(&image, kind)?))
}

/// A JPEG of at most [`THUMBNAIL_SIDE`] pixels a side and [`MAX_THUMBNAIL_BYTES`] bytes.
pub fn thumbnail(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
    let (_, image) = decode(bytes)?;
    let mut side = THUMBNAIL_SIDE;
    loop {
        let small = image.thumbnail(side, side);
        let mut out = Cursor::new(Vec::new());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 60);
        small
            .to_rgb8()
            .write_with_encoder(encoder)
            .map_err(|e| ImageError::Encode(e.to_string()))?;
        let out = out.into_inner();
        if out.len() <= MAX_THUMBNAIL_BYTES {
            return Ok(out);
        }
        if side <= 32 {
            return Err(ImageError::TooLarge);
        }
        side /= 2;
    }
}

/// What the UI shows for a received image (or thumbnail): decoded within the limits, scaled to
/// at most `max_side`, and encoded again as PNG by us, so the webview never parses the peer's
/// bytes.
pub fn preview(bytes: &[u8], max_side: u32) -> Result<Vec<u8>, ImageError> {
    let (_, image) = decode(bytes)?;
    let image = if image.width() > max_side || image.height() > max_side {
        image.thumbnail(max_side, max_side)
    } else {
        image
    };
    encode(&image, ImageKind::Png)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::new_rgb8(width, height);
        encode(&image, ImageKind::Png).unwrap()
    }

    /// A PNG whose header claims `width` x `height` RGBA pixels, with no pixel data: what a
    /// decompression bomb looks like to the decoder before it allocates (a real one adds a few
    /// kilobytes of deflate that expand to gigabytes).
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        // The start of the pixel data: a zlib stream the decoder would inflate for gigabytes.
        writer
            .write_chunk(
                png::chunk::IDAT,
                &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
            )
            .unwrap();
        drop(writer);
        out
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_decoding() {
        // Past the side limit, and within it but past the memory limit (11,000² RGBA = 484 MB).
        for bomb in [png_claiming(100_000, 100_000), png_claiming(11_000, 11_000)] {
            assert_eq!(decode(&bomb).err(), Some(ImageError::TooLarge));
            assert_eq!(
                preview(&bomb, PREVIEW_SIDE).err(),
                Some(ImageError::TooLarge)
            );
            assert_eq!(thumbnail(&bomb).err(), Some(ImageError::TooLarge));
        }
    }

    #[test]
    fn svg_and_other_formats_are_not_decoded() {
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
        assert_eq!(decode(svg).err(), Some(ImageError::Unsupported));
        assert_eq!(ImageKind::sniff(b"GIF89a...."), None);
    }

    #[test]
    fn exif_gps_is_stripped_by_re_encoding() {
        // A JPEG with an APP1 Exif segment carrying a GPS marker right after SOI.
        let image = DynamicImage::new_rgb8(64, 48);
        let clean = encode(&image, ImageKind::Jpeg).unwrap();
        let needle = b"GPSLatitude 48.8583 N 2.2945 E";
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend_from_slice(needle);
        let mut tagged = clean[..2].to_vec();
        tagged.extend_from_slice(&[0xFF, 0xE1]);
        tagged.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
        tagged.extend_from_slice(&exif);
        tagged.extend_from_slice(&clean[2..]);
        assert!(memchr::memmem::find(&tagged, needle).is_some());
        let (kind, stripped) = strip_metadata(&tagged).unwrap();
        assert_eq!(kind, ImageKind::Jpeg);
        assert!(memchr::memmem::find(&stripped, needle).is_none());
        let (_, back) = decode(&stripped).unwrap();
        assert_eq!((back.width(), back.height()), (64, 48));
        let thumb = thumbnail(&tagged).unwrap();
        assert!(memchr::memmem::find(&thumb, needle).is_none());
    }

    #[test]
    fn thumbnails_are_small() {
        let thumb = thumbnail(&png(2000, 1000)).unwrap();
        assert!(thumb.len() <= MAX_THUMBNAIL_BYTES);
        let (kind, image) = decode(&thumb).unwrap();
        assert_eq!(kind, ImageKind::Jpeg);
        assert_eq!((image.width(), image.height()), (256, 128));
    }
}
