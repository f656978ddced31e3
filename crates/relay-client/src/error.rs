//! Errors: every relay [`ErrorCode`] and every transport failure as one typed [`ClientError`],
//! with [`ClientError::retry`] saying whether trying again can help.

use std::time::Duration;

use sealpost_wire::ErrorCode;

use crate::url::UrlError;

/// Why building a [`crate::Connector`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsSetupError {
    /// The extra CA PEM held no certificate.
    #[error("the extra CA file holds no PEM certificate")]
    NoCertificateInPem,
    /// The extra CA PEM could not be read as PEM.
    #[error("the extra CA file is not valid PEM: {0}")]
    BadPem(String),
    /// rustls refused a certificate as a trust anchor.
    #[error("the extra CA certificate cannot be used as a trust anchor: {0}")]
    BadCertificate(String),
    /// rustls refused the configuration (protocol versions with the ring provider).
    #[error("TLS configuration failed: {0}")]
    Config(String),
}

/// Whether a failed operation is worth trying again, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A transport failure, a timeout or a relay that is busy or restarting: retry with jittered
    /// backoff (seconds to minutes).
    Soon,
    /// The relay refused for a reason that can clear with time but not by itself soon: the
    /// mailbox is full until its owner drains it, or the certificate did not verify (the
    /// operator may fix it). Retry rarely (minutes to hours) and tell the user.
    Later,
    /// Retrying the same request can never succeed: wrong key or secret, too large, refused by
    /// policy, or a client/relay version mismatch. Give up and surface it.
    Never,
}

/// A failure of a relay operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The URL is unusable or refused by the [`crate::TransportPolicy`].
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The SOCKS5 proxy is unreachable, refused our credentials or broke its protocol. Nothing
    /// falls back to a direct connection.
    #[error("the SOCKS5 proxy failed: {0}")]
    Proxy(String),
    /// TCP connect, DNS or the WebSocket upgrade failed.
    #[error("cannot connect to the relay: {0}")]
    Connect(String),
    /// The relay's TLS certificate did not verify against the system roots and the extra CA.
    #[error("the relay's TLS certificate was refused: {0}")]
    Certificate(String),
    /// Connecting (TCP + TLS + WebSocket + HELLO) took longer than the handshake timeout.
    #[error("the relay did not complete the handshake within {0:?}")]
    HandshakeTimeout(Duration),
    /// The relay sent no reply to a request within the request timeout; the connection is
    /// dropped because its state is unknown. A SEND that timed out may or may not be stored.
    #[error("the relay did not answer within {0:?}")]
    RequestTimeout(Duration),
    /// Nothing (not even a pong) arrived from the relay for the idle timeout.
    #[error("the relay went silent for {0:?}")]
    Idle(Duration),
    /// The socket failed while open (reset, broken pipe, TLS alert).
    #[error("the connection to the relay broke: {0}")]
    Transport(String),
    /// The connection is closed (by either side, or after an earlier error).
    #[error("the connection to the relay is closed{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed {
        /// The relay's close reason or the earlier error, when known.
        reason: Option<String>,
    },
    /// The relay broke the protocol (a frame that does not decode, a text frame, an unexpected
    /// reply). The connection is dropped.
    #[error("the relay broke the protocol: {0}")]
    Protocol(String),
    /// The envelope is larger than the relay's HELLO `max_envelope` (checked before sending) or
    /// the relay answered `TooLarge`.
    #[error("the envelope is too large for this relay")]
    TooLarge,
    /// `Auth`: unknown mailbox, wrong owner signature, or wrong send id/secret (the relay gives
    /// one answer for all so a mailbox's existence is not revealed).
    #[error("the relay refused the mailbox credentials (unknown mailbox or wrong key/secret)")]
    Unauthorized,
    /// `Password`: CREATE needs a relay password, or the one given is wrong.
    #[error("the relay password is missing or wrong")]
    PasswordRequired,
    /// `SenderAuth`: the mailbox is secured and the SEND's connection holds no sender session
    /// for its sender key (or a SENDER-SESSION proved another key).
    #[error("the mailbox is secured and the send was not authorised by its sender key")]
    SenderUnauthorized,
    /// `AlreadySecured`: SECURE on a mailbox that already has a sender key.
    #[error("the mailbox is already secured")]
    AlreadySecured,
    /// `QuotaExceeded`: the mailbox holds as much as its quota allows.
    #[error("the mailbox is full")]
    QuotaFull,
    /// `RateLimited`: too many requests; retry later.
    #[error("the relay rate-limited this client")]
    RateLimited,
    /// `LimitExceeded`: a per-connection limit (e.g. subscriptions per connection).
    #[error("a per-connection relay limit was reached")]
    LimitExceeded,
    /// `ShuttingDown`: the relay is stopping; reconnect later.
    #[error("the relay is shutting down")]
    ShuttingDown,
    /// `Internal`: the relay failed internally (e.g. storage).
    #[error("the relay failed internally")]
    RelayInternal,
    /// `Malformed`: the relay could not decode our frame (a client bug).
    #[error("the relay could not decode our frame")]
    RejectedAsMalformed,
    /// `UnsupportedVersion`: the relay does not speak our protocol version.
    #[error("the relay does not speak this protocol version")]
    UnsupportedVersion,
    /// An error code newer than this client.
    #[error("the relay answered with an unknown error code")]
    UnknownRelayError,
    /// `BlobGone`: no blob with this id and secret on the relay: never created, expired,
    /// deleted by its uploader, or the secret is wrong (one answer for all).
    #[error("the file is no longer on the relay (expired, deleted or never uploaded)")]
    BlobGone,
    /// `ChunkSize`: a chunk is not exactly `BLOB_CHUNK_BYTES` long (also checked before sending).
    #[error("a file chunk has the wrong size")]
    ChunkSize,
    /// `ChunkIndex`: the chunk index is not below the blob's declared chunk count.
    #[error("the chunk index is beyond the file's chunk count")]
    ChunkIndex,
    /// `OutOfOrder`: an upload skipped ahead of the next chunk to store; ask
    /// [`crate::BlobConnection::status`] and resume from there.
    #[error("a chunk was uploaded out of order")]
    OutOfOrder,
    /// `ChunkMissing`: that chunk has not been uploaded yet.
    #[error("that part of the file has not been uploaded yet")]
    ChunkMissing,
    /// `IdInUse`: the upload id is in use with other values, or a download id is taken; draw
    /// new random ids.
    #[error("a blob id is already in use on the relay")]
    IdInUse,
}

impl ClientError {
    /// The error for a relay [`ErrorCode`].
    pub fn from_code(code: ErrorCode) -> Self {
        match code {
            ErrorCode::Malformed => Self::RejectedAsMalformed,
            ErrorCode::UnsupportedVersion => Self::UnsupportedVersion,
            ErrorCode::Auth => Self::Unauthorized,
            ErrorCode::Password => Self::PasswordRequired,
            ErrorCode::SenderAuth => Self::SenderUnauthorized,
            ErrorCode::AlreadySecured => Self::AlreadySecured,
            ErrorCode::TooLarge => Self::TooLarge,
            ErrorCode::QuotaExceeded => Self::QuotaFull,
            ErrorCode::RateLimited => Self::RateLimited,
            ErrorCode::LimitExceeded => Self::LimitExceeded,
            ErrorCode::ShuttingDown => Self::ShuttingDown,
            ErrorCode::Internal => Self::RelayInternal,
            ErrorCode::BlobGone => Self::BlobGone,
            ErrorCode::ChunkSize => Self::ChunkSize,
            ErrorCode::ChunkIndex => Self::ChunkIndex,
            ErrorCode::OutOfOrder => Self::OutOfOrder,
            ErrorCode::ChunkMissing => Self::ChunkMissing,
            ErrorCode::IdInUse => Self::IdInUse,
            ErrorCode::Unknown => Self::UnknownRelayError,
        }
    }

    /// Whether retrying the same operation can help; see [`Retry`].
    pub fn retry(&self) -> Retry {
        match self {
            Self::Connect(_)
            | Self::Proxy(_)
            | Self::HandshakeTimeout(_)
            | Self::RequestTimeout(_)
            | Self::Idle(_)
            | Self::Transport(_)
            | Self::Closed { .. }
            | Self::Protocol(_)
            | Self::RateLimited
            | Self::ShuttingDown
            | Self::RelayInternal
            | Self::UnknownRelayError => Retry::Soon,
            Self::Certificate(_) | Self::QuotaFull | Self::LimitExceeded | Self::ChunkMissing => {
                Retry::Later
            }
            Self::Url(_)
            | Self::TooLarge
            | Self::Unauthorized
            | Self::PasswordRequired
            | Self::SenderUnauthorized
            | Self::AlreadySecured
            | Self::RejectedAsMalformed
            | Self::UnsupportedVersion
            | Self::BlobGone
            | Self::ChunkSize
            | Self::ChunkIndex
            | Self::OutOfOrder
            | Self::IdInUse => Retry::Never,
        }
    }

    /// True when the connection this error came from is unusable and must be replaced.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Self::Connect(_)
                | Self::Proxy(_)
                | Self::Certificate(_)
                | Self::HandshakeTimeout(_)
                | Self::RequestTimeout(_)
                | Self::Idle(_)
                | Self::Transport(_)
                | Self::Closed { .. }
                | Self::Protocol(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_and_permanent_ones_say_never() {
        let codes = [
            ErrorCode::Malformed,
            ErrorCode::UnsupportedVersion,
            ErrorCode::Auth,
            ErrorCode::Password,
            ErrorCode::SenderAuth,
            ErrorCode::AlreadySecured,
            ErrorCode::TooLarge,
            ErrorCode::QuotaExceeded,
            ErrorCode::RateLimited,
            ErrorCode::LimitExceeded,
            ErrorCode::ShuttingDown,
            ErrorCode::Internal,
            ErrorCode::BlobGone,
            ErrorCode::ChunkSize,
            ErrorCode::ChunkIndex,
            ErrorCode::OutOfOrder,
            ErrorCode::ChunkMissing,
            ErrorCode::IdInUse,
            ErrorCode::Unknown,
        ];
        let mut seen = std::collections::HashSet::new();
        for code in codes {
            let error = ClientError::from_code(code);
            assert!(
                seen.insert(format!("{error:?}")),
                "{code:?} maps to a distinct error"
            );
            assert!(!error.is_connection_lost());
        }
        assert_eq!(
            ClientError::from_code(ErrorCode::Auth).retry(),
            Retry::Never
        );
        assert_eq!(
            ClientError::from_code(ErrorCode::TooLarge).retry(),
            Retry::Never
        );
        assert_eq!(
            ClientError::from_code(ErrorCode::QuotaExceeded).retry(),
            Retry::Later
        );
        assert_eq!(
            ClientError::from_code(ErrorCode::RateLimited).retry(),
            Retry::Soon
        );
        assert_eq!(ClientError::Transport("reset".into()).retry(), Retry::Soon);
    }
}
