//! The client's address behind a load balancer, for the per-IP limits.
//!
//! Behind a TCP load balancer every connection comes from the balancer's address, so per-IP
//! limits would throttle all clients together. A relay configured with `[client_address]` takes
//! the client's address from what its **trusted proxies** say: a PROXY protocol version 2 header
//! (parsed with the `ppp` crate) that the proxy sends first on every connection, or the last
//! entry of the `X-Forwarded-For` header of the WebSocket upgrade request. A connection from any
//! other address is taken at its TCP peer address, and whatever header it sends is not believed
//! (`docs/self-hosting.md` § Behind a load balancer).

use std::net::IpAddr;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Where the relay learns a connection's client address from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAddressSource {
    /// The TCP peer's address: no proxy in front (the default).
    #[default]
    Peer,
    /// A PROXY protocol version 2 header, which each trusted proxy must send first on every
    /// connection (HAProxy `send-proxy-v2`, nginx `proxy_protocol on`, cloud load balancers).
    ProxyProtocolV2,
    /// The last address of the `X-Forwarded-For` header of the WebSocket upgrade request, as
    /// an HTTP reverse proxy appends it.
    XForwardedFor,
}

/// `[client_address]` in the relay's TOML: the source and the proxies it is believed from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientAddressConfig {
    /// Where the client address comes from.
    pub source: ClientAddressSource,
    /// The proxies' addresses (exact IP addresses). Only connections from these are read for a
    /// PROXY header or believed about `X-Forwarded-For`; with an empty list nobody is.
    pub trusted_proxies: Vec<IpAddr>,
}

impl ClientAddressConfig {
    /// How a connection from `peer` learns its client address.
    pub(crate) fn for_peer(&self, peer: IpAddr) -> ClientAddressSource {
        let peer = peer.to_canonical();
        let trusted = self
            .trusted_proxies
            .iter()
            .any(|proxy| proxy.to_canonical() == peer);
        if trusted {
            self.source
        } else {
            ClientAddressSource::Peer
        }
    }
}

/// Why a trusted proxy's PROXY header was refused (the connection is closed).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    /// The socket failed or closed before the header was complete.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
    /// Not a PROXY protocol version 2 header.
    #[error("not a PROXY protocol v2 header: {0}")]
    Invalid(#[from] ppp::v2::ParseError),
    /// Longer than any header a proxy sends here.
    #[error("PROXY header of {0} bytes is too long")]
    TooLong(usize),
}

/// The fixed part of a version 2 header: 12-byte signature, version/command, family/protocol,
/// and the 2-byte big-endian length of the rest.
const FIXED_LENGTH: usize = 16;
/// Most bytes of addresses and TLVs accepted after the fixed part (proxies send at most a few
/// hundred: addresses plus a few TLVs).
const MAX_REST: usize = 4096;

/// Reads one PROXY protocol v2 header, exactly its bytes and nothing after it. `Ok(None)` for a
/// `LOCAL` header (the proxy's own health check) or one without an IP source address.
pub(crate) async fn read_proxy_v2<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<IpAddr>, ProxyHeaderError> {
    let mut header = vec![0u8; FIXED_LENGTH];
    stream.read_exact(&mut header).await?;
    let rest = usize::from(u16::from_be_bytes([header[14], header[15]]));
    if rest > MAX_REST {
        return Err(ProxyHeaderError::TooLong(FIXED_LENGTH + rest));
    }
    header.resize(FIXED_LENGTH + rest, 0);
    stream.read_exact(&mut header[FIXED_LENGTH..]).await?;
    let parsed = ppp::v2::Header::try_from(header.as_slice())?;
    if parsed.command == ppp::v2::Command::Local {
        return Ok(None);
    }
    Ok(match parsed.addresses {
        ppp::v2::Addresses::IPv4(addresses) => Some(IpAddr::V4(addresses.source_address)),
        ppp::v2::Addresses::IPv6(addresses) => Some(IpAddr::V6(addresses.source_address)),
        ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
    })
}

/// The client address of an upgrade request from a trusted HTTP proxy: the last entry of the
/// last `X-Forwarded-For` header (the one the proxy itself appended; entries before it are
/// whatever the client claimed). `None` when absent or not an IP address.
pub(crate) fn forwarded_for(
    headers: &tokio_tungstenite::tungstenite::http::HeaderMap,
) -> Option<IpAddr> {
    let value = headers.get_all("x-forwarded-for").iter().next_back()?;
    let last = value.to_str().ok()?.rsplit(',').next()?.trim();
    last.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_proxies_are_believed() {
        let config = ClientAddressConfig {
            source: ClientAddressSource::XForwardedFor,
            trusted_proxies: vec!["10.0.0.2".parse().unwrap()],
        };
        assert_eq!(
            config.for_peer("10.0.0.2".parse().unwrap()),
            ClientAddressSource::XForwardedFor
        );
        // An IPv4-mapped IPv6 peer is the same proxy.
        assert_eq!(
            config.for_peer("::ffff:10.0.0.2".parse().unwrap()),
            ClientAddressSource::XForwardedFor
        );
        assert_eq!(
            config.for_peer("10.0.0.3".parse().unwrap()),
            ClientAddressSource::Peer
        );
    }

    #[test]
    fn the_last_forwarded_entry_is_the_client() {
        let mut headers = tokio_tungstenite::tungstenite::http::HeaderMap::new();
        headers.append("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        headers.append(
            "x-forwarded-for",
            "198.51.100.7 , 203.0.113.9".parse().unwrap(),
        );
        assert_eq!(forwarded_for(&headers), "203.0.113.9".parse().ok());
        let mut headers = tokio_tungstenite::tungstenite::http::HeaderMap::new();
        headers.append("x-forwarded-for", "not-an-address".parse().unwrap());
        assert_eq!(forwarded_for(&headers), None);
        assert_eq!(
            forwarded_for(&tokio_tungstenite::tungstenite::http::HeaderMap::new()),
            None
        );
    }

    #[tokio::test]
    async fn a_proxy_v2_header_yields_the_source_and_nothing_more_is_read() {
        let header = ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (
                "203.0.113.7:5000".parse::<std::net::SocketAddr>().unwrap(),
                "10.0.0.1:443".parse::<std::net::SocketAddr>().unwrap(),
            ),
        )
        .build()
        .unwrap();
        let mut bytes = header.clone();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let mut reader = bytes.as_slice();
        assert_eq!(
            read_proxy_v2(&mut reader).await.unwrap(),
            "203.0.113.7".parse().ok()
        );
        assert_eq!(reader, b"GET / HTTP/1.1\r\n");
        let mut garbage: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(read_proxy_v2(&mut garbage).await.is_err());
    }
}
