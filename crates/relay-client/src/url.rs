//! Relay addresses: [`RelayUrl`] parses `wss://` and `ws://` URLs, and [`TransportPolicy`] says
//! whether plain `ws://` may leave the machine.
//!
//! Syntax and policy are separate steps on purpose: an invite may name a `ws://` relay that
//! parses fine, and the user's settings decide whether the engine may talk to it.
//! [`crate::Connector::connect`] always applies its policy before opening a socket.

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

/// A parsed relay URL: `wss://host[:port][/path]` or `ws://host[:port][/path]`.
///
/// Parsed with the `url` crate (IPv6 literals, IDNA hosts, percent-encoding); this type adds the
/// relay rules: scheme `wss` or `ws`, a host, no credentials, no query, no fragment.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RelayUrl(url::Url);

impl RelayUrl {
    /// Parses a relay URL (syntax only; see [`TransportPolicy::check`] for the ws:// rule).
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let parsed = url::Url::parse(text.trim()).map_err(|e| UrlError::Syntax(e.to_string()))?;
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
        Ok(Self(parsed))
    }

    /// True for `wss://` (TLS), false for plain `ws://`.
    pub fn is_tls(&self) -> bool {
        self.0.scheme() == "wss"
    }

    /// The host as written in the URL (IPv6 literals in brackets).
    pub fn host(&self) -> String {
        self.0.host_str().map(str::to_owned).unwrap_or_default()
    }

    /// The port: the explicit one, else 443 for `wss` and 80 for `ws`.
    pub fn port(&self) -> u16 {
        self.0
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
        match self.0.host() {
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
        matches!(self.0.host(), Some(url::Host::Domain(domain)) if domain.ends_with(".onion"))
    }

    /// The host and port to ask a SOCKS5 proxy for: the name as written (resolved by the proxy,
    /// never locally), or the IP literal without brackets.
    pub(crate) fn socks_target(&self) -> (String, u16) {
        let host = match self.0.host() {
            Some(url::Host::Ipv6(address)) => address.to_string(),
            Some(url::Host::Ipv4(address)) => address.to_string(),
            Some(url::Host::Domain(domain)) => domain.to_owned(),
            None => String::new(),
        };
        (host, self.port())
    }

    /// The full URL text, normalised by the parser (e.g. `wss://relay.example/`).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayUrl({})", self.0.as_str())
    }
}

impl std::str::FromStr for RelayUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Which transports the client may use (`docs/relay-protocol.md` § 2 Transport,
/// `docs/threat-model.md` § A network attacker).
///
/// The default refuses plain `ws://` to anything but loopback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportPolicy {
    /// Allow plain, unencrypted `ws://` to hosts that are not loopback. Off by default; only an
    /// explicit user setting should turn it on (a LAN relay without TLS, for example).
    pub allow_insecure_remote: bool,
}

impl TransportPolicy {
    /// Refuses `ws://` to a non-loopback host unless [`Self::allow_insecure_remote`] is set.
    /// `.onion` relays are refused here (no proxy known); see [`Self::check_routed`].
    pub fn check(&self, url: &RelayUrl) -> Result<(), UrlError> {
        self.check_routed(url, false)
    }

    /// [`Self::check`] knowing whether connections go through a SOCKS5 proxy: a `.onion` relay
    /// is allowed only through one, and then also over plain `ws://` (an onion service
    /// connection is encrypted end to end and authenticated by its address).
    pub fn check_routed(&self, url: &RelayUrl, proxied: bool) -> Result<(), UrlError> {
        if url.is_onion() {
            return if proxied {
                Ok(())
            } else {
                Err(UrlError::OnionWithoutProxy { host: url.host() })
            };
        }
        if url.is_tls() || url.is_loopback() || self.allow_insecure_remote {
            Ok(())
        } else {
            Err(UrlError::InsecureRemote { host: url.host() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("wss://relay.example", true, 443 ; "wss default port")]
    #[test_case("wss://relay.example:8443/sealpost", true, 8443 ; "wss explicit port and path")]
    #[test_case("ws://127.0.0.1:7443", false, 7443 ; "ws loopback v4")]
    #[test_case("ws://localhost", false, 80 ; "ws localhost default port")]
    #[test_case("ws://10.0.0.1:80", false, 80 ; "ws lan address parses")]
    fn parses_the_accepted_forms(text: &str, tls: bool, port: u16) {
        let url = RelayUrl::parse(text).unwrap();
        assert_eq!(url.is_tls(), tls);
        assert_eq!(url.port(), port);
    }

    /// Plain `ws://` under the default policy: only a literal loopback address or exactly
    /// `localhost` is accepted.
    #[test_case("ws://127.0.0.1:7443" ; "v4 loopback")]
    #[test_case("ws://127.3.2.1:1" ; "anywhere in 127 slash 8")]
    #[test_case("ws://[::1]:9000/" ; "v6 loopback")]
    #[test_case("ws://[::ffff:127.0.0.1]:9000/" ; "v4 mapped loopback")]
    #[test_case("ws://localhost" ; "localhost")]
    #[test_case("ws://LOCALHOST:80" ; "localhost in capitals is lowercased by the parser")]
    #[test_case("ws://2130706433:80" ; "decimal 127.0.0.1 is parsed to the address")]
    fn plain_ws_is_accepted_to_loopback(text: &str) {
        let url = RelayUrl::parse(text).unwrap();
        assert!(url.is_loopback());
        assert_eq!(TransportPolicy::default().check(&url), Ok(()));
    }

    #[test_case("ws://localhost.:80" ; "trailing dot goes to the resolver")]
    #[test_case("ws://LOCALHOST.:80" ; "trailing dot in capitals")]
    #[test_case("ws://localhost..:80" ; "two trailing dots")]
    #[test_case("ws://foo.localhost:80" ; "subdomain of localhost")]
    #[test_case("ws://localhost.evil.example" ; "name starting with localhost")]
    #[test_case("ws://localhost6:80" ; "localhost6 alias")]
    #[test_case("ws://loopback:80" ; "other alias")]
    #[test_case("ws://10.0.0.1:80" ; "lan address")]
    #[test_case("ws://0.0.0.0:80" ; "unspecified v4")]
    #[test_case("ws://[::]:80" ; "unspecified v6")]
    #[test_case("ws://[::ffff:10.0.0.1]:80" ; "v4 mapped lan")]
    #[test_case("ws://relay.example:80" ; "remote name")]
    fn plain_ws_is_refused_beyond_loopback(text: &str) {
        let url = RelayUrl::parse(text).unwrap();
        assert!(!url.is_loopback());
        assert!(matches!(
            TransportPolicy::default().check(&url),
            Err(UrlError::InsecureRemote { .. })
        ));
    }

    #[test_case("ws://relay2wyxzabc.onion", false, false ; "ws onion without proxy")]
    #[test_case("wss://relay2wyxzabc.onion", false, false ; "wss onion without proxy")]
    #[test_case("ws://relay2wyxzabc.onion", true, true ; "ws onion through the proxy")]
    #[test_case("wss://relay2wyxzabc.onion:8443", true, true ; "wss onion through the proxy")]
    #[test_case("ws://relay.example", true, false ; "plain remote stays refused through the proxy")]
    #[test_case("wss://relay.example", true, true ; "wss remote through the proxy")]
    fn onion_relays_only_through_a_proxy(text: &str, proxied: bool, allowed: bool) {
        let url = RelayUrl::parse(text).unwrap();
        assert_eq!(
            TransportPolicy::default()
                .check_routed(&url, proxied)
                .is_ok(),
            allowed
        );
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
    }

    #[test]
    fn policy_refuses_plain_remote_unless_allowed() {
        let strict = TransportPolicy::default();
        let lax = TransportPolicy {
            allow_insecure_remote: true,
        };
        let remote = RelayUrl::parse("ws://relay.example:80").unwrap();
        assert_eq!(
            strict.check(&remote),
            Err(UrlError::InsecureRemote {
                host: "relay.example".into()
            })
        );
        assert_eq!(lax.check(&remote), Ok(()));
        assert_eq!(
            strict.check(&RelayUrl::parse("ws://127.0.0.1:1").unwrap()),
            Ok(())
        );
        assert_eq!(
            strict.check(&RelayUrl::parse("wss://relay.example").unwrap()),
            Ok(())
        );
        // A name that merely starts with "localhost" is not loopback.
        let tricky = RelayUrl::parse("ws://localhost.evil.example").unwrap();
        assert!(strict.check(&tricky).is_err());
    }
}
