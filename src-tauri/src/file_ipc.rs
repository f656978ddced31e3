//! Files across IPC as raw bytes (`ui/CONTRACT.md` § Files across IPC): `send_attachment`'s
//! body is the file itself (Tauri's `InvokeBody::Raw`, an `ArrayBuffer` on the UI side), not a
//! JSON array of numbers, which took four times the memory and a parse per byte. What a JSON
//! argument would have carried travels in request headers, each value percent-encoded UTF-8
//! (`encodeURIComponent` in `ui/src/api/commands.ts`), because a header value must be visible
//! ASCII and a file name may be "写真.png" or hold bidirectional controls. Bytes going back
//! (`attachment_preview`) are a raw `tauri::ipc::Response`.
//!
//! [`FileUpload::parse`] is where the request is decoded and checked: a missing header, a value
//! that is not percent-encoded UTF-8, or a JSON body is `invalid_input`. What the values mean
//! (the contact, a safe file name, the media type) is the engine's to judge, as for any command.

use percent_encoding::percent_decode_str;
use sealpost_client::engine::{ErrorKind, OutgoingFile};
use tauri::http::HeaderMap;
use tauri::ipc::{InvokeBody, Request};

use crate::commands::CommandError;

/// The header naming the contact the file goes to (`send_attachment`).
pub const CONTACT_ID_HEADER: &str = "sealpost-contact-id";
/// The header naming the group the file goes to (`send_group_attachment`).
pub const GROUP_ID_HEADER: &str = "sealpost-group-id";
/// The header with the file's name.
pub const FILE_NAME_HEADER: &str = "sealpost-file-name";
/// The header with the file's media type as the UI knows it.
pub const MEDIA_TYPE_HEADER: &str = "sealpost-media-type";

/// Which conversation a file goes to, and so which header names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileTarget {
    /// A contact's chat: [`CONTACT_ID_HEADER`].
    Contact,
    /// A group: [`GROUP_ID_HEADER`].
    Group,
}

impl FileTarget {
    fn header(self) -> &'static str {
        match self {
            Self::Contact => CONTACT_ID_HEADER,
            Self::Group => GROUP_ID_HEADER,
        }
    }
}

/// A `send_attachment` or `send_group_attachment` request, decoded.
pub struct FileUpload {
    /// The contact or group the file goes to.
    pub chat_id: String,
    /// The file: its name, media type and bytes.
    pub file: OutgoingFile,
}

impl FileUpload {
    /// Decodes a `send_attachment` (`target` contact) or `send_group_attachment` invocation.
    pub fn from_request(request: &Request<'_>, target: FileTarget) -> Result<Self, CommandError> {
        Self::parse(request.body(), request.headers(), target)
    }

    /// Decodes the raw `body` and the percent-encoded `headers`. The body is copied once: the
    /// engine takes the bytes to its blocking pool, and Tauri lends the request only.
    pub fn parse(
        body: &InvokeBody,
        headers: &HeaderMap,
        target: FileTarget,
    ) -> Result<Self, CommandError> {
        let InvokeBody::Raw(bytes) = body else {
            return Err(invalid(
                "a file is sent as its bytes in a raw body, not as JSON",
            ));
        };
        Ok(Self {
            chat_id: header(headers, target.header())?,
            file: OutgoingFile {
                file_name: header(headers, FILE_NAME_HEADER)?,
                media_type: header(headers, MEDIA_TYPE_HEADER)?,
                bytes: bytes.clone(),
            },
        })
    }
}

/// The percent-decoded UTF-8 value of the header `name`.
fn header(headers: &HeaderMap, name: &'static str) -> Result<String, CommandError> {
    let value = headers
        .get(name)
        .ok_or_else(|| invalid(format!("the {name} header is missing")))?
        .to_str()
        .map_err(|_| invalid(format!("the {name} header is not visible ASCII")))?;
    percent_decode_str(value)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| invalid(format!("the {name} header is not percent-encoded UTF-8")))
}

fn invalid(message: impl Into<String>) -> CommandError {
    CommandError::new(ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tauri::http::HeaderValue;

    /// Headers as the UI's wrapper sends them: every value already through `encodeURIComponent`.
    fn headers(contact: &str, name: &str, media_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (key, value) in [
            (CONTACT_ID_HEADER, contact),
            (FILE_NAME_HEADER, name),
            (MEDIA_TYPE_HEADER, media_type),
        ] {
            headers.insert(key, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn parse(headers: &HeaderMap) -> Result<FileUpload, CommandError> {
        FileUpload::parse(
            &InvokeBody::Raw(vec![0, 1, 2, 255]),
            headers,
            FileTarget::Contact,
        )
    }

    #[test]
    fn a_raw_body_and_plain_headers_make_the_file() {
        let upload = parse(&headers("c0ffee", "report.pdf", "application%2Fpdf")).unwrap();
        assert_eq!(upload.chat_id, "c0ffee");
        assert_eq!(upload.file.file_name, "report.pdf");
        assert_eq!(upload.file.media_type, "application/pdf");
        assert_eq!(upload.file.bytes, [0, 1, 2, 255]);
    }

    /// The encodings are `encodeURIComponent`'s, as `ui/src/api/commands.test.ts` pins them.
    #[test]
    fn a_japanese_file_name_survives_the_headers() {
        let upload = parse(&headers(
            "c1",
            "%E5%86%99%E7%9C%9F%20(1).png",
            "image%2Fpng",
        ))
        .unwrap();
        assert_eq!(upload.file.file_name, "写真 (1).png");
    }

    /// The name arrives as sent, controls included: the engine neutralises them
    /// (`docs/engine.md` § Attachments), so the IPC layer must not hide them from it.
    #[test]
    fn a_name_with_bidi_controls_arrives_exactly_as_sent() {
        let upload = parse(&headers("c1", "%E2%80%AEgnp.exe%E2%80%AC", "text%2Fplain")).unwrap();
        assert_eq!(upload.file.file_name, "\u{202E}gnp.exe\u{202C}");
    }

    #[test]
    fn a_missing_header_is_invalid_input() {
        for name in [CONTACT_ID_HEADER, FILE_NAME_HEADER, MEDIA_TYPE_HEADER] {
            let mut without = headers("c1", "a.txt", "text%2Fplain");
            without.remove(name);
            let error = parse(&without).err().unwrap();
            assert_eq!(error.kind, ErrorKind::InvalidInput);
            assert!(error.message.contains(name), "{}", error.message);
        }
    }

    #[test]
    fn a_value_that_is_not_percent_encoded_utf8_is_invalid_input() {
        // %FF alone is not UTF-8.
        let error = parse(&headers("c1", "a%FF.txt", "text%2Fplain"))
            .err()
            .unwrap();
        assert_eq!(error.kind, ErrorKind::InvalidInput);
        // Raw UTF-8 bytes in a header value (not visible ASCII).
        let mut raw = headers("c1", "a.txt", "text%2Fplain");
        raw.insert(
            FILE_NAME_HEADER,
            HeaderValue::from_bytes("写真.png".as_bytes()).unwrap(),
        );
        assert_eq!(parse(&raw).err().unwrap().kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn a_json_body_is_refused() {
        let body = InvokeBody::Json(serde_json::json!({ "bytes": [1, 2, 3] }));
        let error = FileUpload::parse(
            &body,
            &headers("c1", "a.txt", "text%2Fplain"),
            FileTarget::Contact,
        )
        .err()
        .unwrap();
        assert_eq!(error.kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn a_group_file_is_named_by_the_group_header_only() {
        let mut group = headers("ignored", "a.txt", "text%2Fplain");
        group.remove(CONTACT_ID_HEADER);
        assert!(
            FileUpload::parse(&InvokeBody::Raw(vec![1]), &group, FileTarget::Group).is_err(),
            "no group header"
        );
        group.insert(GROUP_ID_HEADER, HeaderValue::from_static("g1"));
        let upload =
            FileUpload::parse(&InvokeBody::Raw(vec![1]), &group, FileTarget::Group).unwrap();
        assert_eq!(upload.chat_id, "g1");
    }
}
