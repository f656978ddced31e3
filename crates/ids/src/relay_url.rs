//! Relay addresses: [`RelayUrl`] parses `wss://` and `ws://` URLs and keeps them as written.
//!
//! Syntax and policy are separate steps on purpose: an invite may name a `ws://` relay that
//! parses fine, and the user's settings decide whether the engine may talk to it
//! (`sealpost_relay_client::TransportPolicy`, whose refusals are also [`UrlError`] variants).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a string is not a usable relay URL, or may not be used under the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all (the parser's reason is attached).
    #[error("not a valid URL: {0}")]
    Syntax(String),
    /// The scheme is neither `wss` nor `ws`.
    #[error("relay URLs must start with wss:// or ws://, not {0}://")]
    Scheme(String),
    /// The URL names no host.
    #[error("the relay URL has no host")]
    MissingHost,
    /// The URL carries a user name or password; relay passwords go in CREATE, never in the URL.
    #[error("the relay URL must not carry a user name or password")]
    Credentials,
    /// The URL carries a query or a fragment, which relays do not use.
    #[error("the relay URL must not carry a query or fragment")]
    QueryOrFragment,
    /// A `.onion` relay without a SOCKS5 proxy: only Tor can reach it, and its name must not
    /// go to the local resolver.
    #[error("{host} is an onion address: set a SOCKS5 proxy (Tor) to reach it")]
    OnionWithoutProxy {
        /// The host that was named.
        host: String,
    },
    /// Longer than [`RelayUrl::MAX_LEN`] bytes.
    #[error("a relay URL is at most 2048 bytes")]
    TooLong,
    /// Contains whitespace or control characters (the text is stored and compared as written).
    #[error("a relay URL contains no whitespace or control characters")]
    BadCharacter,
    /// Not written as `ws://…` or `wss://…` followed by a host, in lower case, as the store
    /// keeps it.
    #[error("a relay URL starts with ws:// or wss:// and names a host")]
    NotWritten,
    /// Plain `ws://` to a host that is not loopback, and the policy does not allow it.
    #[error(
        "plain ws:// to {host} is refused: only loopback relays may be unencrypted (use wss://, \
         or allow insecure remote relays in the settings)"
    )]
    InsecureRemote {
        /// The host that was named.
        host: String,
    },
}

/// A relay URL: `wss://host[:port][/path]` or `ws://host[:port][/path]`, kept exactly as written.
///
/// Parsed with the `url` crate (IPv6 literals, IDNA hosts, percent-encoding); this type adds the
/// relay rules: scheme `wss` or `ws`, a host, no credentials, no query, no fragment, at most
/// [`Self::MAX_LEN`] bytes, no whitespace or control characters, written in lower-case
/// `ws://` / `wss://`. Whether plain `ws://` may be used is policy, not syntax
/// (`sealpost_relay_client::TransportPolicy`).
///
/// [`Self::as_str`], [`fmt::Display`], equality, hashing and order use the text as written: it
/// is what settings, invites and the client store hold and compare. The relay client connects to
/// the parser's normalised form ([`Self::normalized`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayUrl {
    /// The text as written (the identity of the URL).
    text: String,
    /// The same URL parsed; a function of `text`, so the derives agree with `text` alone.
    parsed: url::Url,
}

impl RelayUrl {
    /// Longest accepted URL in bytes.
    pub const MAX_LEN: usize = 2048;

    /// Parses a relay URL (syntax only; whether `ws://` may be used is the relay client's
    /// transport policy).
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let parsed = url::Url::parse(text).map_err(|e| UrlError::Syntax(e.to_string()))?;
        match parsed.scheme() {
            "wss" | "ws" => {}
            other => return Err(UrlError::Scheme(other.to_owned())),
        }
        if parsed.host().is_none() {
            return Err(UrlError::MissingHost);
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlError::Credentials);
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(UrlError::QueryOrFragment);
        }
        if text.len() > Self::MAX_LEN {
            return Err(UrlError::TooLong);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::BadCharacter);
        }
        let rest = text
            .strip_prefix("wss://")
            .or_else(|| text.strip_prefix("ws://"))
            .ok_or(UrlError::NotWritten)?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(UrlError::NotWritten);
        }
        Ok(Self {
            text: text.to_owned(),
            parsed,
        })
    }

    /// True for `wss://` (TLS), false for plain `ws://`.
    pub fn is_tls(&self) -> bool {
        self.parsed.scheme() == "wss"
    }

    /// The host as written in the URL (IPv6 literals in brackets).
    pub fn host(&self) -> String {
        self.parsed
            .host_str()
            .map(str::to_owned)
            .unwrap_or_default()
    }

    /// The port: the explicit one, else 443 for `wss` and 80 for `ws`.
    pub fn port(&self) -> u16 {
        self.parsed
            .port_or_known_default()
            .unwrap_or(if self.is_tls() { 443 } else { 80 })
    }

    /// True when the host is a literal loopback address (`127.0.0.0/8`, `::1`, or `::1`'s
    /// IPv4-mapped form of `127/8`) or exactly the name `localhost`.
    ///
    /// Only that one name counts: not `localhost.` (a fully qualified name a resolver may send
    /// to the network), not `foo.localhost`, not any other spelling. Anything looser lets a
    /// name the user's resolver controls carry plain `ws://` off the machine. The `url` parser
    /// already lowercases host names, so `LOCALHOST` arrives here as `localhost`.
    pub fn is_loopback(&self) -> bool {
        match self.parsed.host() {
            Some(url::Host::Ipv4(address)) => Ipv4Addr::is_loopback(&address),
            Some(url::Host::Ipv6(address)) => {
                Ipv6Addr::is_loopback(&address)
                    || address.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            Some(url::Host::Domain(domain)) => domain == "localhost",
            None => false,
        }
    }

    /// True for a Tor onion service name (`….onion`).
    pub fn is_onion(&self) -> bool {
        matches!(self.parsed.host(), Some(url::Host::Domain(domain)) if domain.ends_with(".onion"))
    }

    /// The host and port to ask a SOCKS5 proxy for: the name as written (resolved by the proxy,
    /// never locally), or the IP literal without brackets.
    pub fn socks_target(&self) -> (String, u16) {
        let host = match self.parsed.host() {
            Some(url::Host::Ipv6(address)) => address.to_string(),
            Some(url::Host::Ipv4(address)) => address.to_string(),
            Some(url::Host::Domain(domain)) => domain.to_owned(),
            None => String::new(),
        };
        (host, self.port())
    }

    /// The URL text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The full URL text, normalised by the parser (e.g. `wss://relay.example/`): what a
    /// WebSocket connection is opened to.
    pub fn normalized(&self) -> &str {
        self.parsed.as_str()
    }
}

impl fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayUrl({})", self.text)
    }
}

impl std::str::FromStr for RelayUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use test_case::test_case;

    #[test_case("wss://relay.example", true, 443 ; "wss default port")]
    #[test_case("wss://relay.example:8443/sealpost", true, 8443 ; "wss explicit port and path")]
    #[test_case("ws://127.0.0.1:7443", false, 7443 ; "ws loopback v4")]
    #[test_case("ws://[::1]:9000/", false, 9000 ; "ws loopback v6")]
    #[test_case("ws://localhost", false, 80 ; "ws localhost default port")]
    #[test_case("ws://10.0.0.1:80", false, 80 ; "ws lan address parses")]
    fn parses_and_keeps_the_text_as_written(text: &str, tls: bool, port: u16) {
        let url = RelayUrl::parse(text).unwrap();
        assert_eq!(url.as_str(), text);
        assert_eq!(url.to_string(), text);
        assert_eq!(url.is_tls(), tls);
        assert_eq!(url.port(), port);
    }

    #[test]
    fn connects_to_the_normalised_form() {
        let url = RelayUrl::parse("wss://Relay.Example").unwrap();
        assert_eq!(url.as_str(), "wss://Relay.Example");
        assert_eq!(url.normalized(), "wss://relay.example/");
    }

    #[test]
    fn equality_is_on_the_text() {
        let a = RelayUrl::parse("wss://relay.example").unwrap();
        let b = RelayUrl::parse("wss://relay.example/").unwrap();
        assert_ne!(a, b);
        assert_eq!(a, RelayUrl::parse("wss://relay.example").unwrap());
    }

    #[test]
    fn refuses_bad_forms_with_typed_errors() {
        assert!(
            matches!(RelayUrl::parse("https://relay.example"), Err(UrlError::Scheme(s)) if s == "https")
        );
        assert!(matches!(
            RelayUrl::parse("not a url"),
            Err(UrlError::Syntax(_))
        ));
        assert_eq!(
            RelayUrl::parse("wss://user:pw@relay.example"),
            Err(UrlError::Credentials)
        );
        assert_eq!(
            RelayUrl::parse("wss://relay.example/?a=b"),
            Err(UrlError::QueryOrFragment)
        );
        assert_eq!(
            RelayUrl::parse("wss://relay.example/#x"),
            Err(UrlError::QueryOrFragment)
        );
        assert!(RelayUrl::parse("ws://").is_err());
        assert_eq!(
            RelayUrl::parse(" ws://127.0.0.1:7777"),
            Err(UrlError::BadCharacter)
        );
        assert_eq!(
            RelayUrl::parse("ws://127.0.0.1:7777\n"),
            Err(UrlError::BadCharacter)
        );
        assert_eq!(
            RelayUrl::parse("WSS://relay.example"),
            Err(UrlError::NotWritten)
        );
        assert_eq!(RelayUrl::parse("ws:///x"), Err(UrlError::NotWritten));
        let long = format!("wss://relay.example/{}", "a".repeat(RelayUrl::MAX_LEN));
        assert_eq!(RelayUrl::parse(&long), Err(UrlError::TooLong));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,60}") {
            if let Ok(url) = RelayUrl::parse(&text) {
                prop_assert!(url.as_str().starts_with("ws://") || url.as_str().starts_with("wss://"));
                prop_assert_eq!(url.as_str(), text.as_str());
            }
        }
    }
}
