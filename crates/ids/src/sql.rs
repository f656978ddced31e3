//! The client store's columns (feature `rusqlite`): mailbox ids as 32-byte blobs, envelope ids as
//! 16-byte blobs, relay URLs as their text as written. The same bytes the store wrote before these
//! types moved here (`docs/formats.md`); a blob of another length or a URL the parser refuses is a
//! typed error.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::{EnvelopeId, ReceiveId, RelayUrl, SendId};

macro_rules! fixed_blob {
    ($name:ident, $len:literal) => {
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Blob(&self.0)))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let blob = value.as_blob()?;
                <[u8; $len]>::try_from(blob)
                    .map(Self)
                    .map_err(|_| FromSqlError::InvalidBlobSize {
                        expected_size: $len,
                        blob_size: blob.len(),
                    })
            }
        }
    };
}

fixed_blob!(SendId, 32);
fixed_blob!(ReceiveId, 32);
fixed_blob!(EnvelopeId, 16);

impl ToSql for RelayUrl {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(
            self.as_str().as_bytes(),
        )))
    }
}

impl FromSql for RelayUrl {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Self::parse(text).map_err(|error| FromSqlError::Other(Box::new(error)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_hold_the_same_bytes_as_before() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let url = RelayUrl::parse("wss://relay.example").unwrap();
        let (blob, text): (Vec<u8>, String) = db
            .query_row(
                "SELECT ?1, ?2",
                rusqlite::params![SendId([9; 32]), url],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(blob, vec![9; 32]);
        assert_eq!(text, "wss://relay.example");
        let back: ReceiveId = db
            .query_row("SELECT ?1", [vec![4u8; 32]], |row| row.get(0))
            .unwrap();
        assert_eq!(back, ReceiveId([4; 32]));
        let short = db.query_row("SELECT ?1", [vec![4u8; 31]], |row| row.get::<_, SendId>(0));
        assert!(short.is_err());
    }
}
